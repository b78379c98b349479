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

import argparse
import sys
from pathlib import Path

from generator.dataformat.layout import METADATA
from train.launcher import INTERRUPTED, LocalLauncher, share_machine
from train.run_folder import CONFIG, RESULTS
from train.slurm import SlurmError, submit, time_limit
from train.summary import RunStatus, rank_key, run_results, write_summary
from trajkit.cli import (
    OneLineParser,
    default_workers,
    exit_on_interrupt,
    folder_arg,
    load_modules,
    number_arg,
    one_line,
    path_text,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.presets import config_file
from trajkit.seeds import MAX_SEED
from trajkit.yamlfile import read_yaml_mapping


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="python -m train.parallel", description=__doc__.splitlines()[0])
    p.add_argument("--extractors", nargs="+", help="default: all registered (or the runs in --out)")
    p.add_argument(
        "--data", type=path_text, help="dataset folder (default with --resume: each run's own)"
    )
    p.add_argument("--epochs", type=number_arg(int, 0, True), required=True)
    p.add_argument("--out", type=folder_arg, default=Path("runs"), help="runs go to OUT/NAME")
    p.add_argument("--preset", choices=("tiny", "base"), default="tiny")
    p.add_argument(
        "--config",
        type=path_text,
        help="YAML of TrainConfig fields over the preset, for every run "
        "(a file or a shipped name: colour)",
    )
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
    p.add_argument("--seed", type=whole_number(0, MAX_SEED))
    return p


def existing_runs(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob(f"*/{CONFIG}"))


def choose_top(out: Path, k: int, among: list[str] | None) -> list[str]:
    """The K best finished runs in ``out`` by validation accuracy (then future RMSE). A damaged
    results.json is an error naming it, not a run left out: the best run might be the one."""
    results = {n: run_results(out / n) for n in among or existing_runs(out)}
    finished = [n for n, r in results.items() if r.get("val_accuracy") is not None]
    if not finished:
        raise ValueError(f"--top: no finished run with {RESULTS} in {out}; run a round first")
    return sorted(finished, key=lambda n: rank_key(results[n]))[:k]


def run_data(out: Path, name: str) -> str | None:
    """The dataset a run trained on, from its config.yaml (None without one); a damaged
    config (a FIFO, binary, not a mapping) is a ValueError naming it."""
    path = out / name / CONFIG
    if not path.exists():
        return None
    data = read_yaml_mapping(path).get("data")
    if data is not None and not isinstance(data, str):
        raise ValueError(f"config {path}: data must be a dataset folder, got {data!r}")
    return data


def train_args(args, name: str, data: str, threads: int | None, workers: int) -> list[str]:
    cmd = ["--extractor", name, "--data", data, "--epochs", str(args.epochs)]
    cmd += ["--out", str(args.out / name), "--workers", str(workers), "--device", args.device]
    if threads:
        cmd += ["--threads", str(threads)]
    if args.resume:
        cmd.append("--resume")
    else:  # a resumed run keeps its preset and recipe
        cmd += ["--preset", args.preset]
        for flag in ("config", "batch_size", "lr", "seed"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return cmd


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_modules("extractors")  # torch, for the list of known extractors
    # A stop while the runs run is the launcher's; this covers the checks before and after.
    return exit_on_interrupt(lambda: launch(args), INTERRUPTED)


def launch(args: argparse.Namespace) -> int:
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
            if args.config:  # a file, or a shipped recipe's name (colour)
                args.config = str(config_file("train", args.config, ValueError))
                if not Path(args.config).is_file():
                    raise ValueError(f"--config {args.config} is not a file")
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

    gpus, threads = share_machine(args.device, len(names))
    workers = (
        args.workers
        if args.workers is not None
        else (2 if gpus else 0 if len(names) >= default_workers() else 1)
    )
    jobs = {n: train_args(args, n, data[n], threads, workers) for n in names}
    launcher = LocalLauncher(
        args.out,
        jobs,
        gpus,
        threads,
        module="train",
        summarise=lambda out, statuses: write_summary(out, with_earlier_runs(out, statuses)),
    )
    return launcher.run_to_end(
        prog,
        f"{prog}: stopped all runs; continue with: python -m train.parallel --resume "
        f"--epochs {args.epochs} --out {args.out}",
    )


def with_earlier_runs(out: Path, statuses: list[RunStatus]) -> list[RunStatus]:
    """This round's runs plus finished runs of earlier rounds (a --top round keeps the others listed)."""
    names = {s.name for s in statuses}
    earlier = [RunStatus(n, status="done") for n in existing_runs(out) if n not in names]
    return statuses + [s for s in earlier if (out / s.name / "results.json").exists()]
