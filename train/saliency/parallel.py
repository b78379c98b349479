"""``python -m train.saliency.parallel --configs A.yaml B.yaml --out runs/saliency [--epochs E] [--resume]``.

Trains several saliency variants at once (by default the baseline and the
entropy-regularised one), each in its own ``python -m train.saliency`` process,
with the shared launcher (``train.launcher``): one run per GPU and the rest
queued, or all at once on the CPU; one failed run does not stop the others;
Ctrl-C stops all, each keeping its ``last.pt`` for ``--resume``.
``--launcher slurm`` writes (and submits) one ``torchrun`` sbatch script per run.
``summary.md`` / ``summary.json`` rank the variants by validation information gain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.launcher import INTERRUPTED, LocalLauncher, share_machine, unusable_run_path
from train.run_folder import CONFIG, LAST
from train.saliency.config import (
    ConfigError,
    DataConfig,
    SaliencyConfig,
    load_config,
    resume_conflict,
    with_overrides,
)
from train.saliency.layouts import open_source
from train.saliency.records import LayoutError
from train.saliency.splits import split_indices
from train.saliency.summary import write_summary
from train.slurm import (
    SlurmError,
    add_launcher_flags,
    resume_advice,
    run_processes,
    settle_launcher_flags,
    submit,
)
from trajkit.cli import (
    MAX_EPOCHS,
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    folder_arg,
    one_line,
    path_arg,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.presets import config_file, preset_dir

PROG = "python -m train.saliency.parallel"
CONFIGS = preset_dir("saliency")
MODULE = "train.saliency"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument(
        "--configs",
        nargs="+",
        type=path_arg,
        default=[CONFIGS / "baseline.yaml", CONFIGS / "entropy_reg.yaml"],
        help="one config (file or shipped name) per variant (default: baseline and entropy_reg)",
    )
    p.add_argument(
        "--out", type=folder_arg, default=Path("runs/saliency"), help="runs go to OUT/NAME"
    )
    p.add_argument("--data", type=path_arg, help="dataset folder for every run (over data.path)")
    p.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), help="over train.epochs")
    p.add_argument("--resume", action="store_true", help="continue each run from its last.pt")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_launcher_flags(p)
    return p


def run_args(args, config: Path, name: str) -> list[str]:
    """Paths go as ``--flag=PATH``: the child read ``--out -x/NAME`` as two options."""
    cmd = [f"--config={config.absolute()}", f"--out={args.out / name}", "--quiet"]
    if args.data is not None:
        cmd.append(f"--data={args.data.absolute()}")
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    cmd += ["--device", args.device]
    return cmd + (["--resume"] if args.resume else [])


def plan(args) -> dict[str, list[str]]:
    """Check what every run would refuse (config, data, device, run folder) before starting
    any: one line then, not a failed run per variant; name -> arguments."""
    settle_launcher_flags(args)
    configs: dict[str, tuple[Path, SaliencyConfig]] = {}
    for given in args.configs:
        config = config_file("saliency", given, ConfigError)
        cfg = load_config(config)
        folder = cfg.name.casefold()  # one folder where case is ignored (macOS, Windows)
        if folder in configs:
            first, other = configs[folder]
            if other.name == cfg.name:
                raise ValueError(f"{first} and {config} both name their run {cfg.name!r}")
            raise ValueError(
                f"{first} names its run {other.name!r} and {config} {cfg.name!r}: "
                "one folder where case is ignored (macOS, Windows)"
            )
        configs[folder] = config, cfg
        if args.launcher == "local":  # the cluster's paths need not exist here
            check_data(args.data if args.data is not None else cfg.data.path, cfg.data)
    names = {cfg.name: config for config, cfg in configs.values()}
    if args.launcher == "local" and args.device == "cuda":
        from train.distributed import pick_device  # torch

        pick_device(args.device)  # without a GPU, the DeviceError each run would raise
    if blocked := [why for n in names if (why := unusable_run_path(args.out, n))]:
        raise ValueError(blocked[0])
    if not args.resume:
        taken = [n for n in names if (args.out / n / "last.pt").exists()]
        if taken:
            raise ValueError(
                f"{args.out} already holds runs of {', '.join(taken)}: add --resume or choose another --out"
            )
    else:
        check_resumes(args, [cfg for _, cfg in configs.values()])
    return {name: run_args(args, config, name) for name, config in names.items()}


def check_resumes(args, cfgs: list[SaliencyConfig]) -> None:
    """A run resumed with a changed config, or by another process count than its job's,
    would refuse on its own, after the others started (on a cluster, every job): refused
    here instead, the config built as the run builds it (``run_args``' overrides)."""
    from train.checkpoint import CheckpointError, load_checkpoint  # torch
    from train.distributed import process_count_change

    data = args.data.absolute() if args.data is not None else None
    for cfg in cfgs:
        saved, last = args.out / cfg.name / CONFIG, args.out / cfg.name / LAST
        if not last.exists():
            continue
        if saved.exists():
            if why := resume_conflict(saved, with_overrides(cfg, data, args.epochs)):
                raise ValueError(why)
        try:
            state = load_checkpoint(last)
        except CheckpointError:
            continue  # a damaged last.pt is that run's own failure (exit 1), not the round's
        if why := process_count_change(state, last, run_processes(args), resume_advice):
            raise ValueError(why)


def check_data(path: Path, data: DataConfig) -> None:
    """The dataset opens and its splits leave stimuli to train and validate on, as each run
    checks first (it also drops stimuli without fixations, which only loading them shows)."""
    src = open_source(path)
    parts = split_indices(src.refs, data.val_fraction, data.test_fraction, data.split_seed)
    if not parts["train"] or not parts["val"]:
        raise ValueError(
            f"{path}: its {len(src)} stimuli leave the train or val split empty "
            f"({len(parts['train'])} / {len(parts['val'])}); add data or raise val_fraction"
        )


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_on_interrupt(lambda: launch(args), INTERRUPTED)  # as train.parallel's


def launch(args: argparse.Namespace) -> int:
    try:
        jobs = plan(args)
    except (ConfigError, LayoutError, ValueError) as e:
        print(one_line(f"{PROG}: error: {e}"), file=sys.stderr)
        return 2

    if args.launcher == "slurm":
        try:
            statuses = submit(
                jobs,
                args.out,
                args.gpus_per_run,
                args.cpus_per_run,
                args.time,
                module=MODULE,
            )
        except SlurmError as e:
            print(one_line(f"{PROG}: error: {e}"), file=sys.stderr)
            return 2
        return 0 if all(s.status != "failed" for s in statuses) else 1

    gpus, threads = share_machine(args.device, len(jobs))
    launcher = LocalLauncher(args.out, jobs, gpus, threads, module=MODULE, summarise=write_summary)
    return launcher.run_to_end(
        PROG, f"{PROG}: stopped all runs; continue with the same command plus --resume"
    )


run = entry_point(main)  # python -m train.saliency.parallel and its console script

if __name__ == "__main__":
    run()
