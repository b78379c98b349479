"""``python -m train --extractor NAME --data DIR --epochs E --out runs/NAME``: one training run.

Exit status: 0 done, 1 the run stopped on a non-finite loss, a full disk, an
allocation or a data-loading worker that failed, or a checkpoint or the dataset is
damaged (found by the preflight or by a read), 2 bad input,
130 interrupted (``last.pt`` holds the last finished epoch; ``--resume``).
Under ``torchrun`` it trains with DistributedDataParallel; rank 0 writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train.launcher import end_with_launcher
from train.run_folder import LAST, holds_checkpoint, nothing_to_do, what_is_kept
from train.summary import run_results
from train.torchrun import env_rank, env_world_size
from train.trajectory.config import MAX_BATCH_SIZE, STREAM_SAMPLES, TrainConfig
from trajkit.cli import (
    MAX_EPOCHS,
    MAX_THREADS,
    MAX_WORKERS,
    OneLineParser,
    caused_by_interrupt,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    load_modules,
    number_arg,
    one_line,
    out_of_memory,
    path_arg,
    path_text,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.seeds import MAX_SEED
from trajkit.worker_deaths import WorkerKnobs, worker_death, worker_lost

KNOBS = WorkerKnobs("lower --workers or --batch-size", "run with --workers 0")

FLAGS = (
    "extractor", "preset", "data", "render", "render_seed", "epoch_samples", "eval_samples",
    "epochs", "batch_size", "lr", "workers", "threads", "device", "seed", "compile", "quiet",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train", description=__doc__.splitlines()[0])
    p.add_argument("--extractor", help="registered extractor (python -m extractors list)")
    p.add_argument("--data", type=path_text, help="dataset folder made by python -m generator")
    add_render_flags(p, p)
    p.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), help="total epochs")
    p.add_argument("--out", type=folder_arg, required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--preset", choices=("tiny", "base"), help="extractor and recipe preset")
    p.add_argument("--config", type=path_arg, help="YAML with TrainConfig fields (over the preset)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if present")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--batch-size", type=whole_number(1, MAX_BATCH_SIZE), help="clips a step, per process"
    )
    p.add_argument("--lr", type=number_arg(float, 0.0, True), help="peak learning rate")
    p.add_argument("--workers", type=whole_number(0, MAX_WORKERS), help="data-loading processes")
    p.add_argument("--threads", type=whole_number(1, MAX_THREADS), help="torch CPU threads")
    p.add_argument("--seed", type=whole_number(0, MAX_SEED))
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument(
        "--quiet", action="store_true", default=None, help="no progress bar or epoch lines"
    )
    return p


def add_render_flags(p: argparse.ArgumentParser, render_into: Any) -> None:
    """``--render`` (into ``render_into``: ``train.parallel`` makes it exclusive of ``--data``)
    and its settings, one definition for ``train`` and ``train.parallel``."""
    render_into.add_argument(
        "--render",
        nargs="?",
        const="default",
        metavar="CONFIG",
        type=path_text,
        help="instead of --data: train on fresh samples rendered on the fly, of a generator "
        "YAML or a shipped generator config's name (default: default)",
    )
    p.add_argument(
        "--render-seed", type=whole_number(0, MAX_SEED), help="with --render (default 0)"
    )
    p.add_argument(
        "--epoch-samples",
        type=whole_number(1, STREAM_SAMPLES),
        help="with --render: fresh training samples per epoch (default 1600)",
    )
    p.add_argument(
        "--eval-samples",
        type=whole_number(1, STREAM_SAMPLES),
        help="with --render: validation samples, and as many for test (default 200)",
    )


def resolve_config(
    args: argparse.Namespace,
    processes: int | None = None,
    advice: Callable[[int], str] | None = None,
):
    """The config of this invocation and the checkpoint to resume from (or None).
    ``processes`` and ``advice``: a launcher's, for the jobs it will start
    (``train.distributed.process_count_change``)."""
    from train.checkpoint import load_checkpoint
    from train.distributed import process_count_change
    from train.trajectory.config import (
        TrainConfigError,
        merged_values,
        refuse_file_changes,
        resumed_config,
        validated_config,
    )

    explicit = {k: getattr(args, k) for k in FLAGS}
    explicit["out"] = str(args.out)
    last = args.out / LAST
    if args.resume and holds_checkpoint(last):
        state = load_checkpoint(last)
        if args.config is not None:
            refuse_file_changes(state["config"], args.config)
        # --quiet is this command's, not the run's: a run started with it could not be
        # resumed with progress and its final line, as no flag turns it off
        cfg = resumed_config(state["config"], {**explicit, "quiet": bool(explicit["quiet"])})
        if problem := process_count_change(state, last, processes, advice):
            raise TrainConfigError(problem)
        if cfg.epochs < state["epoch"]:  # results.json would say fewer epochs than it holds
            raise TrainConfigError(
                f"--epochs {cfg.epochs} is fewer than the {state['epoch']} epochs {last} "
                "already finished"
            )
        return cfg, state
    if holds_checkpoint(last):
        raise TrainConfigError(
            f"{args.out} already holds a run (last.pt): pass --resume to continue it, "
            "or choose another --out"
        )
    merged = merged_values(explicit, args.config)  # a --config file may give any of them
    missing = [f"--{k}" for k in ("extractor", "epochs") if merged.get(k) is None]
    if merged.get("data") is None and merged.get("render") is None:
        missing.append("--data (or --render)")
    if missing:
        raise TrainConfigError(f"a new run needs {', '.join(missing)}")
    if args.resume and explicit.get("quiet") is None:
        print(one_line(f"{args.out}: no last.pt yet, starting from epoch 1"), file=sys.stderr)
    return validated_config(merged), None


def results_epochs(run: Path) -> int | None:
    """The epochs a run's results.json is of (None without one, or damaged)."""
    try:
        return run_results(run).get("epochs")
    except ValueError:
        return None


def run_finished(cfg: TrainConfig, state: dict | None) -> bool:
    """Whether ``last.pt`` and results.json both hold every epoch the run asks for: a resume
    then has nothing to do. Without results.json (a stop right after the last ``last.pt``)
    or with a damaged one, the resume tests the best epoch again and writes it."""
    return state is not None and state["epoch"] == cfg.epochs == results_epochs(cfg.out_dir)


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    end_with_launcher()  # under train.parallel: stopped, and saying so, if it is killed
    args = build_parser().parse_args(argv)
    load_modules("torch", "extractors.registry")
    return exit_on_interrupt(lambda: run(args), lambda: stop_message(args.out))


def stop_message(out: Path) -> str:
    """What a stop leaves. torchrun stops every process when one fails (a damaged dataset
    found by its preflight), by the signal a stop asked for sends, so under it the line
    says so: "run the same command again" alone sent users back into the same failure."""
    kept = what_is_kept(out)
    if env_world_size() > 1:
        return f"{kept}; torchrun stops all processes when one fails: fix any error printed above"
    return kept


def run(args: argparse.Namespace) -> int:
    from extractors import ExtractorConfigError
    from generator.dataformat.dataset import DatasetError
    from train.checkpoint import CheckpointError
    from train.distributed import DeviceError, peer_stopped, setup, teardown
    from train.run_folder import RunFolderBusy, writing_to
    from train.trajectory.config import TrainConfigError
    from train.trajectory.evaluate import shown
    from train.trajectory.loop import NonFiniteLossError, Run
    from train.trajectory.preflight import PreflightError, preflight

    prog = "python -m train"
    ctx = None
    try:
        with writing_to(args.out):
            cfg, state = resolve_config(args)
            if run_finished(cfg, state):  # tested and results.json written: left as it is
                if env_rank() == 0:
                    print(
                        one_line(nothing_to_do(args.out, cfg.epochs, cfg.epochs)), file=sys.stderr
                    )
                return 0
            meta = preflight(cfg, state.get("inputs") if state else None)
            ctx = setup(cfg.device)
            run = Run(cfg, ctx, meta, resume=state)
            results = run.fit()
    except (CheckpointError, DatasetError) as e:  # DatasetError: preflight's or a read's
        print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
        return 1
    except (
        TrainConfigError,
        PreflightError,
        DeviceError,
        ExtractorConfigError,
        RunFolderBusy,
    ) as e:
        print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(one_line(f"{prog}: {e}"), file=sys.stderr)
        return 1
    except OSError as e:  # a full disk or quota, a folder gone read-only
        failure = worker_lost(e, KNOBS) or failed_io(e)
        print(f"{prog}: error: {failure}; {what_is_kept(args.out)}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError, EOFError) as e:
        if caused_by_interrupt(e):
            raise
        if (failure := worker_death(e, KNOBS) or out_of_memory(e) or peer_stopped(e)) is None:
            raise
        print(f"{prog}: error: {failure}; {what_is_kept(args.out)}", file=sys.stderr)
        return 1
    finally:
        if ctx is not None:
            teardown(ctx)
    if results and not cfg.quiet:
        print(
            f"{cfg.extractor}: val accuracy {shown(results['val_accuracy'])}, "
            f"val future RMSE {shown(results['val_future_rmse'])}, "
            f"test accuracy {shown(results['test_accuracy'])}, "
            f"test future RMSE {shown(results['test_future_rmse'])} (RMSE in world units), "
            f"{shown(results['train_samples_per_second'], '.1f')} samples/s -> {cfg.out}"
        )
    return 0
