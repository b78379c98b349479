"""Runs launched side by side on this machine: one child process per run, the cores split
between them on the CPU, one GPU each with GPUs; a stop (Ctrl-C, SIGTERM) reaches every child
and each run's status and last error line are kept for the comparison report.

The trajectory and saliency launchers (``train.trajectory.parallel``,
``train.saliency.parallel``) all start their runs through ``LocalLauncher``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from train.run_folder import RunFolderBusy, writing_to
from train.summary import SUMMARY_MD, RunStatus
from trajkit.cli import (
    caused_by_interrupt,
    default_workers,
    failed_io,
    one_line,
    restore_signals,
    stop_on_signals,
)

STOP_GRACE_SECONDS = 60.0
# A launcher stopped outside its runs' lifetime (before they start, or as they end).
INTERRUPTED = (
    "runs already started keep their last.pt; continue with the same command plus --resume"
)
POLL_SECONDS = 0.5
LOG = "train.log"  # a run's output, in its folder


def share_machine(device: str, runs: int) -> tuple[int, int | None]:
    """The GPUs to hand out one per run, or without any, the torch threads of each of ``runs``
    CPU runs (the cores split evenly)."""
    gpus = gpu_count(device)
    return gpus, None if gpus else max(1, default_workers() // runs)


def gpu_count(device: str) -> int:
    if device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count()


class LocalLauncher:
    """Child processes ``python -m MODULE ARGS``, one per run; one per GPU at a time, or all at
    once on the CPU. ``summarise(out, statuses)`` rewrites the comparison after each run ends."""

    def __init__(
        self,
        out: Path,
        jobs: dict[str, list[str]],
        gpus: int,
        threads: int | None,
        *,
        module: str,
        summarise: Callable[[Path, list[RunStatus]], list[dict]],
    ) -> None:
        self.out, self.jobs, self.gpus, self.threads = out, jobs, gpus, threads
        self.module = module
        self._write_summary = summarise
        self.statuses = {n: RunStatus(n) for n in jobs}
        self.procs: dict[str, tuple[subprocess.Popen, float, int | None]] = {}
        self.free_gpus = list(range(gpus))
        self._summary_error: str | None = None

    def _start(self, name: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        gpu = self.free_gpus.pop(0) if self.gpus else None
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        elif self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        (self.out / name).mkdir(parents=True, exist_ok=True)
        log = open(self.out / name / LOG, "a")  # noqa: SIM115  closed when the run ends
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
                last = last_line(self.out / name / LOG)
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

    def run_to_end(self, prog: str, stopped_hint: str) -> int:
        """Run every job, print the summary; exit status 0, 1 if a run failed or the last
        summary could not be written, 2 if another launcher holds ``out`` (both would rewrite
        its summary) or a run's log is no regular file, 130 on Ctrl-C."""
        if odd := [p for n in self.jobs if (p := self.out / n / LOG).exists() and not p.is_file()]:
            # a FIFO blocked the open for ever; checked before any run starts
            print(one_line(f"{prog}: error: {odd[0]} is not a regular file"), file=sys.stderr)
            return 2
        try:
            with writing_to(self.out):
                return self._run_to_end(stopped_hint)
        except RunFolderBusy as e:
            print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
            return 2
        except OSError as e:  # a run's log could not be opened; the runs were stopped
            line = failed_io(e)
            print(
                f"{prog}: error: {line}; {stopped_hint.removeprefix(f'{prog}: ')}", file=sys.stderr
            )
            return 1

    def _run_to_end(self, stopped_hint: str) -> int:
        where = (
            f"{self.gpus} GPU(s), one per run"
            if self.gpus
            else f"CPU, {self.threads} thread(s) per run"
        )
        print(
            f"training {', '.join(self.jobs)} on {where}; logs in {self.out}/NAME/{LOG}",
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
        if rows is None:
            return 1
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

    def summarise(self) -> list[dict] | None:
        """Rewrite the comparison; None when it cannot be written (a full disk, or a bug in the
        report), said once per reason: the runs go on, each keeps its own folder. Only a stop
        (Ctrl-C, SIGTERM) ends them."""
        try:
            return self._write_summary(self.out, list(self.statuses.values()))
        except Exception as e:
            if caused_by_interrupt(e):  # a library's own error around a Ctrl-C
                raise KeyboardInterrupt from e
            line = failed_io(e) if isinstance(e, OSError) else one_line(f"{type(e).__name__}: {e}")
            if line != self._summary_error:
                print(f"cannot write the summary in {self.out}: {line}", file=sys.stderr)
                self._summary_error = line
            return None


def last_line(path: Path) -> str | None:
    """The last line of a run's log (None without one, or if it is no regular file: a FIFO
    put there while the run ran would block the read)."""
    if not path.is_file():
        return None
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    return lines[-1][-300:] if lines else None
