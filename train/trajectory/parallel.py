"""``python -m train.parallel --extractors i3d slowfast transformer magvit --data DIR --epochs E --out runs/``.

Or ``--render [CONFIG]`` instead of ``--data``: every run trains on samples rendered on the fly.

Every extractor trains in its own ``python -m train`` process at the same time.
On the CPU the cores are split between the runs (torch threads per run); with
GPUs each run gets one GPU (``CUDA_VISIBLE_DEVICES``) and the rest wait in a
queue. A failed run does not stop the others; Ctrl-C (or SIGTERM, or SIGHUP) stops all
of them, each keeping its ``last.pt`` for ``--resume``. ``--top K --epochs E2
--resume`` continues the K best runs of an earlier round. After every finished
run ``summary.json``, ``summary.md`` and ``comparison.png`` are rewritten.
``launch.json`` records every run a launch named, before any starts.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from generator.dataformat.layout import METADATA
from train.launcher import (
    INTERRUPTED,
    LAUNCH_RECORD,
    LOG,
    LocalLauncher,
    share_machine,
    unusable_run_path,
)
from train.run_folder import CONFIG, LAST, RESULTS, holds_checkpoint
from train.slurm import (
    SlurmError,
    add_launcher_flags,
    resume_advice,
    run_processes,
    settle_launcher_flags,
    submit,
)
from train.summary import RunStatus, data_of, rank_key, run_results, write_summary
from train.trajectory.cli import add_render_flags, resolve_config, results_epochs, run_finished
from train.trajectory.cli import build_parser as trainer_parser
from trajkit.cli import (
    MAX_EPOCHS,
    MAX_WORKERS,
    OneLineParser,
    default_workers,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    load_modules,
    number_arg,
    one_line,
    path_text,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.files import read_json, write_json_atomic
from trajkit.presets import config_file
from trajkit.seeds import MAX_SEED
from trajkit.yamlfile import read_yaml_mapping

PROG = "python -m train.parallel"
RECIPE = ("preset", "config", "batch_size", "lr", "seed")
"""Flags of what a run learns. A resumed run keeps its own: a change is refused, as
``python -m train --resume`` refuses it. A run with no checkpoint yet starts over with the
launch's, from ``launch.json``, under any given again."""
SOURCE = ("data", "render", "render_seed", "epoch_samples", "eval_samples")
"""Flags of where a run's samples come from: a dataset folder, or a render stream and its
settings. Those given are every run's; without ``--data`` or ``--render`` a run keeps its own."""


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--extractors", nargs="+", help="default: all registered (or the runs in --out)")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=path_text, help="dataset folder (default with --resume: each run's own)"
    )
    add_render_flags(p, source)
    p.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), required=True)
    p.add_argument("--out", type=folder_arg, default=Path("runs"), help="runs go to OUT/NAME")
    p.add_argument("--preset", choices=("tiny", "base"), help="default: tiny")
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
    add_launcher_flags(p)
    p.add_argument("--batch-size", type=number_arg(int, 0, True))
    p.add_argument("--lr", type=number_arg(float, 0.0, True))
    p.add_argument("--workers", type=whole_number(0, MAX_WORKERS), help="data workers per run")
    p.add_argument("--seed", type=whole_number(0, MAX_SEED))
    return p


def existing_runs(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob(f"*/{CONFIG}"))


def read_launch(out: Path) -> dict[str, dict]:
    """The runs earlier launches into ``out`` named, each with its dataset and recipe flags
    ({} before any); a damaged ``launch.json`` is a ValueError naming it."""
    path = out / LAUNCH_RECORD
    if not os.path.lexists(path):
        return {}
    if not path.is_file():  # a FIFO would block the read
        raise ValueError(f"{path} is not a regular file")
    record = read_json(path)
    runs = record.get("runs") if isinstance(record, dict) else None
    if not isinstance(runs, dict) or not all(
        isinstance(settings, dict)
        and all(isinstance(v, str | int | float | None) for v in settings.values())
        for settings in runs.values()
    ):
        raise ValueError(f"{path} is damaged (not a mapping of runs to their settings)")
    return runs


def record_launch(out: Path, runs: dict[str, dict]) -> None:
    """This launch's runs into ``launch.json`` beside the earlier ones, atomically, before any
    run starts: one stopped before it wrote its config.yaml was named nowhere, and --resume
    dropped it from the round and the summary without a word."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / LAUNCH_RECORD, {"runs": {**read_launch(out), **runs}})


def resumed_runs(out: Path, recorded: dict[str, dict]) -> list[str]:
    """The runs a --resume without --extractors continues: those launch.json names, and
    every folder with a config.yaml or a train.log (an --out from before launch.json); none
    is one line saying what is there (a typo in --out crashed on dividing the cores by zero
    runs)."""
    logged = (p.parent.name for p in out.glob(f"*/{LOG}"))
    names = sorted({*recorded, *existing_runs(out), *logged})
    if not names:
        found = (
            "does not exist" if not out.exists() else f"holds no {LAUNCH_RECORD} and no run folder"
        )
        raise ValueError(
            f"--resume: {out} {found}, so no run to continue; give --extractors and --data "
            "(or --render) to start them"
        )
    return names


def choose_top(out: Path, k: int, among: list[str] | None) -> list[str]:
    """The K best finished runs in ``out`` by validation accuracy (then future RMSE), all of
    one data. A damaged results.json is an error naming it, not a run left out: the best run
    might be the one."""
    results = {n: run_results(out / n) for n in among or existing_runs(out)}
    finished = [n for n, r in results.items() if r.get("val_accuracy") is not None]
    if not finished:
        raise ValueError(f"--top: no finished run with {RESULTS} in {out}; run a round first")
    data = {data_of(results[n]) for n in finished}
    if len(data) > 1:  # a run on easier data would rank first
        raise ValueError(
            f"--top: the finished runs in {out} trained on {len(data)} different data, which "
            "ranks none against another; name the runs of one with --extractors"
        )
    return sorted(finished, key=lambda n: rank_key(results[n]))[:k]


def run_source(args: argparse.Namespace, name: str, recorded: dict) -> dict:
    """A run's ``SOURCE`` flags: ``--data`` or ``--render`` given replace the run's own; else
    its config.yaml's (or launch.json's, for a run stopped before it wrote one) under any
    render settings given. Empty when none says: a new run's --config may."""
    given = {k: getattr(args, k) for k in SOURCE if getattr(args, k) is not None}
    if "data" in given or "render" in given:
        return given
    launched = {k: v for k, v in recorded.get(name, {}).items() if k in SOURCE and v is not None}
    return {**(saved_source(args.out / name / CONFIG) or launched), **given}


def saved_source(path: Path) -> dict:
    """The ``SOURCE`` fields of a run's config.yaml ({} without one); a damaged config (a
    FIFO, binary, not a mapping, a dataset that is no path) is a ValueError naming it."""
    if not path.exists():
        return {}
    saved = read_yaml_mapping(path)
    for key in ("data", "render"):
        if saved.get(key) is not None and not isinstance(saved[key], str):
            raise ValueError(f"config {path}: {key} must be a path, got {saved[key]!r}")
    return {k: saved[k] for k in SOURCE if saved.get(k) is not None}


def run_recipe(args: argparse.Namespace, name: str, recorded: dict) -> dict:
    """A run's recipe flags: those given (a resumed run refuses any that would change it);
    for a run with no checkpoint to resume (it starts over) the launch's under them."""
    given = {k: getattr(args, k) for k in RECIPE if getattr(args, k) is not None}
    if args.resume and holds_checkpoint(args.out / name / LAST):
        return given
    launched = {k: v for k, v in recorded.get(name, {}).items() if k in RECIPE and v is not None}
    return {**launched, **given}


def as_flags(values: dict, names: tuple[str, ...]) -> list[str]:
    """``--flag=VALUE`` for each of ``names`` in ``values``: ``--data -x`` was read as two
    options."""
    return [f"--{k.replace('_', '-')}={values[k]}" for k in names if k in values]


def train_args(
    args, name: str, source: dict, recipe: dict, threads: int | None, workers: int
) -> list[str]:
    """The run's ``python -m train`` flags."""
    cmd = ["--extractor", name, *as_flags(source, SOURCE), "--epochs", str(args.epochs)]
    cmd += [f"--out={args.out / name}", "--workers", str(workers), "--device", args.device]
    if threads:
        cmd += ["--threads", str(threads)]
    if args.resume:
        cmd.append("--resume")
    return cmd + as_flags(recipe, RECIPE)


class DamagedData(ValueError):
    """A run's dataset found damaged before any run starts (a ``DatasetError``, named here
    without importing torch)."""


def check_runs(args: argparse.Namespace, jobs: dict[str, list[str]], local: bool) -> list[str]:
    """What each run's own ``python -m train`` refuses before it trains, for every run before
    any starts: one line and exit 2 (1 for damage in a dataset, as ``train`` says it), where
    each run failed on its own. Its flags, its config or resume everywhere, its process
    count the job's (a --config file must be readable here); its dataset, splits
    and disk only on this machine, as a Slurm job's are the cluster's. Returns the runs that
    already finished their --epochs: started again, one failing its checks was reported
    "failed" beside its intact results."""
    from generator.dataformat.sources import DatasetError  # torch: loaded once stoppable
    from train.checkpoint import CheckpointError
    from train.trajectory.preflight import preflight

    parser = trainer_parser()
    parser.prog = PROG
    finished = []
    for name, job in jobs.items():
        flags = parser.parse_args([*job, "--quiet"])  # quiet: no "starting from epoch 1"
        try:
            # flags and config values, on a cluster too
            cfg, state = resolve_config(flags, run_processes(args), resume_advice)
            if not local:  # the dataset and disk are the cluster's: not checked here
                continue
            if run_finished(cfg, state):
                finished.append(name)
                continue
            preflight(cfg, state.get("inputs") if state else None)
        except CheckpointError:
            continue  # a damaged last.pt is that run's own failure (exit 1), not the round's
        except DatasetError as e:  # exit 1, as each run's own train would say it
            raise DamagedData(f"{name}: {e}") from None
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return finished


def resume_command(args: argparse.Namespace, names: list[str]) -> str:
    """The command that continues this round: the runs by name, the samples' source when
    given for all (without, each run's own), and how they run."""
    cmd = ["python", "-m", "train.parallel", "--resume", "--extractors", *names]
    cmd += as_flags(vars(args), tuple(k for k in SOURCE if getattr(args, k) is not None))
    cmd += ["--epochs", str(args.epochs), f"--out={args.out}"]
    if args.device != "auto":
        cmd += ["--device", args.device]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    return shlex.join(cmd)


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_modules("extractors.registry")  # torch and the built-ins, for the known extractors
    # A stop while the runs run is the launcher's; this covers the checks before and after.
    return exit_on_interrupt(lambda: launch(args), INTERRUPTED)


def launch(args: argparse.Namespace) -> int:
    from extractors import list_extractors

    local = args.launcher == "local"
    try:
        settle_launcher_flags(args)
        recorded = read_launch(args.out)
        names = run_names(args, list_extractors(), recorded)
        if blocked := [why for n in names if (why := unusable_run_path(args.out, n))]:
            raise ValueError(blocked[0])
        sources = {n: run_source(args, n, recorded) for n in names}
        if local:
            for d in sorted({s["data"] for s in sources.values() if "data" in s}):
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
        if local and args.device == "cuda":
            from train.distributed import pick_device  # torch

            pick_device(args.device)  # without a GPU, the DeviceError each run would raise
        recipes = {n: run_recipe(args, n, recorded) for n in names}
        workers = 4 if args.workers is None else args.workers  # a cluster job's default
        jobs = {n: train_args(args, n, sources[n], recipes[n], None, workers) for n in names}
        finished = check_runs(args, jobs, local)
    except DamagedData as e:  # damage in the data, not a usage error: exit 1, as in train
        print(one_line(f"{PROG}: error: {e}"), file=sys.stderr)
        return 1
    except ValueError as e:
        print(one_line(f"{PROG}: error: {e}"), file=sys.stderr)
        return 2
    except OSError as e:  # a run's files or dataset out of reach
        print(f"{PROG}: error: {failed_io(e)}", file=sys.stderr)
        return 2
    except SystemExit as e:  # a flag the trainer's own parser refused, said in one line
        return e.code
    launched = {n: {**unsourced(recorded.get(n, {})), **sources[n], **recipes[n]} for n in names}

    if not local:
        try:
            statuses = submit(
                jobs,
                args.out,
                args.gpus_per_run,
                args.cpus_per_run,
                args.time,
                before_write=lambda: record_launch(args.out, launched),
            )
        except SlurmError as e:
            print(one_line(f"{PROG}: error: {e}"), file=sys.stderr)
            return 2
        except OSError as e:  # launch.json could not be written
            print(f"{PROG}: error: {failed_io(e)}", file=sys.stderr)
            return 2
        return 0 if all(s.status != "failed" for s in statuses) else 1

    for name in finished:
        print(f"{name}: finished already (--epochs {args.epochs}), not started again", flush=True)
    names = [n for n in names if n not in finished]
    gpus, threads = share_machine(args.device, max(1, len(names)))
    workers = run_workers(args, gpus, len(names))
    jobs = {n: train_args(args, n, sources[n], recipes[n], threads, workers) for n in names}
    launcher = LocalLauncher(
        args.out,
        jobs,
        gpus,
        threads,
        module="train",
        summarise=lambda out, statuses: write_summary(out, with_earlier_runs(out, statuses)),
    )
    return launcher.run_to_end(
        PROG,
        f"{PROG}: stopped all runs; continue with: {resume_command(args, names)}",
        before_start=lambda: record_launch(args.out, launched),
    )


def unsourced(settings: dict) -> dict:
    """A run's recorded settings but its source: one launch's --render replaces an earlier
    one's --data, not joins it."""
    return {k: v for k, v in settings.items() if k not in SOURCE}


def run_names(args: argparse.Namespace, known: list[str], recorded: dict[str, dict]) -> list[str]:
    """This round's runs: the K best with --top, those named, or on --resume every run of
    ``out``, else every registered extractor."""
    if args.top:
        if not args.resume:
            raise ValueError("--top continues earlier runs: add --resume")
        names = choose_top(args.out, args.top, args.extractors)
    elif args.extractors:
        names = args.extractors
    else:
        names = resumed_runs(args.out, recorded) if args.resume else known
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"unknown extractor(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError("--extractors lists a name twice")
    return names


def run_workers(args: argparse.Namespace, gpus: int, runs: int) -> int:
    """Data workers per run: as given, else 2 with a GPU, and on the CPU 1 unless the runs
    already take every core."""
    if args.workers is not None:
        return args.workers
    return 2 if gpus else 0 if runs >= default_workers() else 1


def with_earlier_runs(out: Path, statuses: list[RunStatus]) -> list[RunStatus]:
    """This round's runs plus earlier rounds' runs with results (a --top round keeps the
    others listed): "done" when those results are of the epochs the run's config.yaml asks
    for, else "unfinished" (resumed to more epochs and stopped, its results.json was listed
    "done" with the numbers of fewer)."""
    names = {s.name for s in statuses}
    earlier = [n for n in existing_runs(out) if n not in names and (out / n / RESULTS).exists()]
    return statuses + [
        RunStatus(n, status="done" if finished_run(out / n) else "unfinished") for n in earlier
    ]


def finished_run(run: Path) -> bool:
    """Whether results.json is of the epochs config.yaml asks for; a damaged file (which the
    report warns of) or a config without epochs says yes, as before."""
    try:
        asked = read_yaml_mapping(run / CONFIG).get("epochs")
    except ValueError:
        return True
    return asked is None or results_epochs(run) in (asked, None)
