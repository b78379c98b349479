"""``python -m train.parallel --extractors i3d slowfast transformer magvit --data DIR --epochs E --out runs/``.

Every extractor trains in its own ``python -m train`` process at the same time.
On the CPU the cores are split between the runs (torch threads per run); with
GPUs each run gets one GPU (``CUDA_VISIBLE_DEVICES``) and the rest wait in a
queue. A failed run does not stop the others; Ctrl-C (or SIGTERM) stops all of
them, each keeping its ``last.pt`` for ``--resume``. ``--top K --epochs E2
--resume`` continues the K best runs of an earlier round. After every finished
run ``summary.json``, ``summary.md`` and ``comparison.png`` are rewritten.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from generator.store import METADATA
from train.slurm import SlurmError, submit, time_limit
from train.summary import SUMMARY_MD, RunStatus, rank_key, summary_rows, write_summary
from trajkit.cli import (
    OneLineParser,
    folder_arg,
    number_arg,
    one_line,
    path_text,
    restore_signals,
    stop_on_signals,
)

STOP_GRACE_SECONDS = 60.0
POLL_SECONDS = 0.5


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="python -m train.parallel", description=__doc__.splitlines()[0])
    p.add_argument("--extractors", nargs="+", help="default: all registered (or the runs in --out)")
    p.add_argument(
        "--data", type=path_text, help="dataset folder (default with --resume: each run's own)"
    )
    p.add_argument("--epochs", type=number_arg(int, 0, True), required=True)
    p.add_argument("--out", type=folder_arg, default=Path("runs"), help="runs go to OUT/NAME")
    p.add_argument("--preset", choices=("tiny", "base"), default="tiny")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--top", type=number_arg(int, 0, True), help="continue only the K best runs in --out"
    )
    p.add_argument("--resume", action="store_true", help="continue each run from its last.pt")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local")
    p.add_argument("--gpus-per-run", type=number_arg(int, 0, False), default=1, help="slurm only")
    p.add_argument("--cpus-per-run", type=number_arg(int, 0, True), default=8, help="slurm only")
    p.add_argument("--time", type=time_limit, default="04:00:00", help="slurm time limit per job")
    p.add_argument("--batch-size", type=number_arg(int, 0, True))
    p.add_argument("--lr", type=number_arg(float, 0.0, True))
    p.add_argument("--workers", type=number_arg(int, 0, False), help="data workers per run")
    p.add_argument("--seed", type=number_arg(int, 0, False))
    return p


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_count(device: str) -> int:
    if device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count()


def existing_runs(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob("*/config.yaml"))


def choose_top(out: Path, k: int, among: list[str] | None) -> list[str]:
    """The K best finished runs in ``out`` by validation accuracy (then future RMSE)."""
    names = among or existing_runs(out)
    rows = [
        r for r in summary_rows(out, [RunStatus(n) for n in names]) if r["val_accuracy"] is not None
    ]
    if not rows:
        raise ValueError(f"--top: no finished run with results.json in {out}; run a round first")
    return [r["extractor"] for r in sorted(rows, key=rank_key)[:k]]


def run_data(out: Path, name: str) -> str | None:
    try:
        return yaml.safe_load((out / name / "config.yaml").read_text()).get("data")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def train_args(args, name: str, data: str, threads: int | None, workers: int) -> list[str]:
    cmd = ["--extractor", name, "--data", data, "--epochs", str(args.epochs)]
    cmd += ["--out", str(args.out / name), "--workers", str(workers), "--device", args.device]
    if threads:
        cmd += ["--threads", str(threads)]
    if args.resume:
        cmd.append("--resume")
    else:  # a resumed run keeps its preset and recipe
        cmd += ["--preset", args.preset]
        for flag in ("batch_size", "lr", "seed"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return cmd


class LocalLauncher:
    """Child processes ``python -m MODULE ARGS``, one per run; one per GPU at a time, or all at
    once on the CPU. ``summarise(out, statuses)`` rewrites the comparison after each run ends
    (default: the extractor table of :mod:`train.summary`)."""

    def __init__(
        self,
        out: Path,
        jobs: dict[str, list[str]],
        gpus: int,
        threads: int | None,
        *,
        module: str = "train",
        summarise: Callable[[Path, list[RunStatus]], list[dict]] | None = None,
    ) -> None:
        self.out, self.jobs, self.gpus, self.threads = out, jobs, gpus, threads
        self.module = module
        self._write_summary = summarise or (
            lambda out, statuses: write_summary(out, with_earlier_runs(out, statuses))
        )
        self.statuses = {n: RunStatus(n) for n in jobs}
        self.procs: dict[str, tuple[subprocess.Popen, float, int | None]] = {}
        self.free_gpus = list(range(gpus))

    def _start(self, name: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        gpu = self.free_gpus.pop(0) if self.gpus else None
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        elif self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        (self.out / name).mkdir(parents=True, exist_ok=True)
        log = open(self.out / name / "train.log", "a")  # noqa: SIM115  closed when the run ends
        proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.jobs[name]],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops the runs itself
        )
        log.close()
        self.procs[name] = (proc, time.monotonic(), gpu)
        self.statuses[name].status = "running"
        print(
            f"started {name} (pid {proc.pid}" + (f", GPU {gpu})" if gpu is not None else ")"),
            flush=True,
        )

    def _reap(self) -> list[str]:
        finished = []
        for name, (proc, start, gpu) in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            st = self.statuses[name]
            st.returncode, st.wall_seconds = code, time.monotonic() - start
            st.status = "done" if code == 0 else ("interrupted" if code == 130 else "failed")
            if code != 0:
                reason = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
                last = last_line(self.out / name / "train.log")
                st.error = f"{reason}: {last}" if last else reason
            if gpu is not None:
                self.free_gpus.append(gpu)
            del self.procs[name]
            finished.append(name)
            print(f"{name}: {st.status}" + (f" ({st.error})" if st.error else ""), flush=True)
        return finished

    def run(self) -> list[RunStatus]:
        queue = list(self.jobs)
        try:
            while queue or self.procs:
                while queue and (not self.gpus or self.free_gpus):
                    self._start(queue.pop(0))
                if self._reap():
                    self.summarise()
                time.sleep(POLL_SECONDS)
        except BaseException:  # Ctrl-C, SIGTERM, or a bug here: no run is left behind
            self.stop_all()
            raise
        return list(self.statuses.values())

    def run_to_end(self, stopped_hint: str) -> int:
        """Run every job, print the summary; exit status 0, 1 if a run failed, 130 on Ctrl-C."""
        where = (
            f"{self.gpus} GPU(s), one per run"
            if self.gpus
            else f"CPU, {self.threads} thread(s) per run"
        )
        print(
            f"training {', '.join(self.jobs)} on {where}; logs in {self.out}/NAME/train.log",
            flush=True,
        )
        previous = stop_on_signals()
        try:
            self.run()
        except KeyboardInterrupt:
            print(stopped_hint, file=sys.stderr)
            return 130
        finally:
            restore_signals(previous)
        rows = self.summarise()
        print((self.out / SUMMARY_MD).read_text())
        return 1 if any(r["status"] == "failed" for r in rows) else 0

    def stop_all(self) -> None:
        """SIGINT to every run (each saves nothing half-done: last.pt stays whole), then wait."""
        for proc, _, _ in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc, _, _ in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._reap()
        for st in self.statuses.values():
            if st.status == "queued":
                st.status = "interrupted"
        self.summarise()

    def summarise(self) -> list[dict]:
        return self._write_summary(self.out, list(self.statuses.values()))


def last_line(path: Path) -> str | None:
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    return lines[-1][-300:] if lines else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = "python -m train.parallel"
    from extractors import list_extractors

    known = list_extractors()
    try:
        if args.top:
            if not args.resume:
                raise ValueError("--top continues earlier runs: add --resume")
            names = choose_top(args.out, args.top, args.extractors)
        else:
            names = args.extractors or (existing_runs(args.out) if args.resume else known)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"unknown extractor(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        if len(set(names)) != len(names):
            raise ValueError("--extractors lists a name twice")
        data = {n: args.data or run_data(args.out, n) for n in names}
        if missing := [n for n, d in data.items() if d is None]:
            raise ValueError(f"--data is needed for {', '.join(missing)}")
        if args.launcher == "local":  # the cluster's paths need not exist here
            for d in sorted(set(data.values())):
                if not (Path(d) / METADATA).is_file():
                    raise ValueError(f"{d} is not a dataset folder (no {METADATA})")
        if not args.resume:
            taken = [n for n in names if (args.out / n / "last.pt").exists()]
            if taken:
                raise ValueError(
                    f"{args.out} already holds runs of {', '.join(taken)}: add --resume or choose another --out"
                )
    except ValueError as e:
        print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
        return 2

    if args.launcher == "slurm":
        jobs = {n: train_args(args, n, data[n], None, args.workers or 4) for n in names}
        try:
            statuses = submit(jobs, args.out, args.gpus_per_run, args.cpus_per_run, args.time)
        except SlurmError as e:
            print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
            return 2
        return 0 if all(s.status != "failed" for s in statuses) else 1

    gpus = gpu_count(args.device)
    threads = None if gpus else max(1, available_cores() // len(names))
    workers = (
        args.workers
        if args.workers is not None
        else (2 if gpus else 0 if len(names) >= available_cores() else 1)
    )
    jobs = {n: train_args(args, n, data[n], threads, workers) for n in names}
    return LocalLauncher(args.out, jobs, gpus, threads).run_to_end(
        f"{prog}: stopped all runs; continue with: python -m train.parallel --resume "
        f"--epochs {args.epochs} --out {args.out}"
    )


def with_earlier_runs(out: Path, statuses: list[RunStatus]) -> list[RunStatus]:
    """This round's runs plus finished runs of earlier rounds (a --top round keeps the others listed)."""
    names = {s.name for s in statuses}
    earlier = [RunStatus(n, status="done") for n in existing_runs(out) if n not in names]
    return statuses + [s for s in earlier if (out / s.name / "results.json").exists()]


if __name__ == "__main__":
    sys.exit(main())
