"""``python -m train.jepa.evaluate``: frozen target-encoder features, measured three ways
(linear probe, weighted k-NN, RankMe: ``train.jepa.evaluation``).

Writes a results JSON and prints one line of text. Torch loads inside ``main``, with a stop
noted, not raised (``load_modules``): Ctrl-C in the first seconds is one line, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from train.jepa.config import ConfigError, DatasetSpec, parse_config
from train.torchrun import refusal_under_torchrun
from trajkit.cli import (
    MAX_WORKERS,
    OneLineParser,
    caused_by_interrupt,
    entry_point,
    exit_on_interrupt,
    first_line,
    load_modules,
    number_arg,
    one_line,
    out_of_memory,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.files import write_json_atomic
from trajkit.worker_deaths import WorkerKnobs, worker_death


def _dataset_name(kinds: list[str]) -> Callable[[str], str]:
    """An argparse type for a dataset kind, or a run's dataset name as the trainer logs it: the
    second ``synthetic`` of a run is ``synthetic_2`` (``data_pipeline.dataset_names``)."""

    def parse(text: str) -> str:
        kind, named, n = text.partition("_")
        if kind in kinds and (not named or (n.isdigit() and n[0] != "0" and int(n) >= 2)):
            return text
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(kinds)}; the second dataset of "
            "a kind in a run is KIND_2, and so on)"
        )

    parse.__name__ = "dataset"
    return parse


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    """Exit 0 done, 1 a damaged or foreign checkpoint, 2 bad input (or a start under
    torchrun: each process computed it all), 130 stopped."""
    if (refused := refusal_under_torchrun("python -m train.jepa.evaluate")) is not None:
        return refused
    load_modules("train.jepa.evaluation")  # torch, and the dataset names for --dataset
    from train.jepa.datasets import IMAGE_SETS

    parser = OneLineParser(prog="python -m train.jepa.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="last.pt of a train.jepa run")
    parser.add_argument("--dataset", required=True, type=_dataset_name(list(IMAGE_SETS)))
    parser.add_argument(
        "--data-path",
        help="the folder holding the datasets, as train's; wins over a root the run recorded",
    )
    parser.add_argument("--out", help="results JSON (default: beside the checkpoint)")
    parser.add_argument("--random-init", action="store_true", help="same network, untrained")
    parser.add_argument("--k", type=whole_number(1), default=20)
    parser.add_argument("--temperature", type=number_arg(float, 0, strict=True), default=0.07)
    parser.add_argument(
        "--probe-iters", type=whole_number(1), default=500, help="L-BFGS iterations"
    )
    parser.add_argument("--batch-size", type=whole_number(1), default=256)
    parser.add_argument("--num-workers", type=whole_number(0, MAX_WORKERS), default=0)
    args = parser.parse_args(argv)
    return exit_on_interrupt(lambda: _evaluate(args), "nothing was written; run it again")


def _evaluate(args: argparse.Namespace) -> int:
    from train.checkpoint import CheckpointError
    from train.jepa.checkpoints import load_run_checkpoint
    from train.jepa.datasets import DatasetMissing
    from train.jepa.evaluation import evaluate, load_encoder, summary_line

    ckpt = Path(args.checkpoint)
    suffix = "_random_init" if args.random_init else ""
    try:
        try:  # a path to no file is a wrong argument; no regular file (exit 1) is load_run_checkpoint's
            ckpt.stat()
        except FileNotFoundError:
            raise ConfigError(f"checkpoint {ckpt} not found") from None
        except OSError as err:  # a symbolic link loop, a file where a folder should be
            raise ConfigError(f"checkpoint {ckpt}: {err.strerror}") from None
        state = load_run_checkpoint(ckpt, ("target_encoder", "config"))
        # beside the checkpoint, named once it is known to be a file ("/" has no name)
        out = Path(args.out) if args.out else ckpt.with_name(f"eval_{args.dataset}{suffix}.json")
        if out.exists() and not out.is_file():  # found now, not after the features
            raise ConfigError(f"--out {out} is not a regular file")
        try:
            cfg = parse_config(state["config"])
        except ConfigError as err:
            raise CheckpointError(f"{ckpt} holds an unusable config: {err}") from None
        del state
        spec = _dataset_spec(cfg, args.dataset)
        if args.data_path is not None:  # the data moved: the run's recorded root is stale
            spec = spec.model_copy(update={"root": None})
        encoder = load_encoder(None if args.random_init else ckpt, cfg, cfg.run.seed)
        result = evaluate(
            encoder,
            cfg,
            spec,
            args.data_path or cfg.data.data_path,
            args.k,
            args.temperature,
            args.probe_iters,
            args.batch_size,
            args.num_workers,
        )
    except CheckpointError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    except (ConfigError, DatasetMissing, ValueError) as err:
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError, EOFError, ConnectionError) as err:
        if caused_by_interrupt(err):
            raise
        knobs = WorkerKnobs("lower --num-workers or --batch-size", "run with --num-workers 0")
        failure = worker_death(err, knobs) or out_of_memory(err)
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return 1
    result.update(
        checkpoint=str(ckpt),
        random_init=args.random_init,
        dataset_spec=spec.model_dump(mode="json"),
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, result)
    except OSError as err:
        print(f"error: cannot write {out}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(summary_line(result))
    return 0


def _dataset_spec(cfg, name: str) -> DatasetSpec:  # noqa: ANN001
    """The run's dataset of that name, else the kind's defaults (a set the run did not train on)."""
    from train.jepa.data_pipeline import dataset_names

    named = dict(zip(dataset_names(cfg), cfg.data.datasets, strict=True))
    if name in named:
        return named[name]
    if "_" in name:
        raise ConfigError(
            f"--dataset {name}: the run has no such dataset (its datasets: {', '.join(named)})"
        )
    return DatasetSpec.model_validate({"kind": name})


run = entry_point(main)  # python -m train.jepa.evaluate and its console script

if __name__ == "__main__":
    run()
