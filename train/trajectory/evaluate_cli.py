"""``python -m train.evaluate RUN [RUN ...] --data DIR``: trained runs scored on any dataset.

A run's own test split holds a tenth of its dataset, so two runs' accuracies differ by
several points from sampling alone; scoring every run on one large held-out dataset (made
with ``python -m generator`` from a seed no run trained on) compares them on the same
clips. The weights are the run's ``best.pt`` (``--checkpoint last`` for the last epoch),
fed as in training: the run's input statistics and scene box, which the checkpoint
carries (a checkpoint from before that is completed from the run's training data).

Each run's scores go to ``RUN/evaluations/NAME.json`` (NAME: the dataset folder's name,
the split and, for ``--checkpoint last``, ``last``), which names its per-clip file, and one
line per run is printed. A record of another dataset of the same folder name is refused,
not replaced. The dataset must have the run's classes, in its order, its camera count,
clip length and frame size, and its targets' horizon and fps; a run folder's
``config.yaml`` must be its checkpoint's run. Exit status: 0 done, 1 a checkpoint or a
sample read is missing or damaged or gives non-finite outputs, a record cannot be written,
or an allocation or a data-loading worker failed, 2 bad input (a run whose extractor cannot be
built here too, or a start under ``torchrun``: it scores in one process).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from train.torchrun import refusal_under_torchrun
from train.trajectory.cli import KNOBS
from train.trajectory.config import MAX_BATCH_SIZE
from trajkit.cli import (
    MAX_WORKERS,
    OneLineParser,
    caused_by_interrupt,
    describe_validation_error,
    exit_on_interrupt,
    failed_io,
    load_modules,
    one_line,
    out_of_memory,
    path_arg,
    quiet_on_closed_output,
    short_repr,
    whole_number,
)
from trajkit.files import read_json, sha256_bytes, write_atomic, write_json_atomic
from trajkit.lock import LockedError, locked_folder
from trajkit.worker_deaths import worker_death, worker_lost
from trajkit.yamlfile import read_yaml_mapping

SPLITS = ("all", "train", "val", "test")
ALL_SAMPLES = (0.0, 0.0, 1.0)  # split fractions that deal every sample to "test"


class EvaluationError(ValueError):
    """A run and a dataset that cannot be evaluated together; one line."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=path_arg, metavar="RUN", help="run folders")
    p.add_argument("--data", type=path_arg, required=True, help="dataset folder to score on")
    p.add_argument(
        "--split",
        choices=SPLITS,
        help="which samples of --data: all (default for another dataset) or a split as the "
        "run would deal it (default test, when --data is the run's own dataset)",
    )
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--batch-size", type=whole_number(1, MAX_BATCH_SIZE), default=32)
    p.add_argument(
        "--workers", type=whole_number(0, MAX_WORKERS), default=1, help="loading processes"
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--quiet", action="store_true", help="no line per run")
    return p


def finite_floats(*shape: int) -> AfterValidator:
    """A tensor of finite floats of ``shape``: another was a traceback deep in the scoring."""

    def check(value: Any) -> Any:
        import torch

        if not torch.is_tensor(value):
            raise ValueError(f"not a tensor but a {type(value).__name__}")
        if tuple(value.shape) != shape or not value.is_floating_point():
            raise ValueError(f"{value.dtype} of shape {tuple(value.shape)}, not floats of {shape}")
        if not bool(value.isfinite().all()):
            raise ValueError("holds NaN or infinity")
        return value

    return AfterValidator(check)


class StoredInputs(BaseModel):
    """A checkpoint's ``inputs``, as ``loop.training_inputs`` writes them; ``seed`` and
    ``generator_config`` are missing from checkpoints of before they were stored."""

    model_config = ConfigDict(strict=True)
    mean: Annotated[Any, finite_floats(3)]
    std: Annotated[Any, finite_floats(3)]
    scene_bounds: Annotated[Any, finite_floats(3, 2)]
    classes: list[str]
    video_shape: Annotated[list[PositiveInt], Field(min_length=5, max_length=5)]
    seed: int | None = None
    generator_config: dict | None = None


def stored_inputs(state: dict, cfg, path: Path) -> dict:
    """What the run's model was fed (``loop.training_inputs``), from its checkpoint at
    ``path``; a checkpoint from before they were stored is completed from the run's
    training data."""
    from train.checkpoint import CheckpointError

    if "inputs" in state:
        try:
            StoredInputs.model_validate(state["inputs"])
        except ValidationError as e:
            raise CheckpointError(
                f"{path} is not a training checkpoint (inputs: {describe_validation_error(e)})"
            ) from None
        return state["inputs"]
    from generator.dataformat.dataset import DatasetError, read_metadata
    from train.trajectory.loop import datasets, training_inputs
    from train.trajectory.preflight import PreflightError, check_render

    try:
        meta = check_render(cfg) if cfg.render is not None else read_metadata(Path(cfg.data))
        return training_inputs(datasets(cfg, meta)[0], meta)
    except (PreflightError, DatasetError) as e:
        raise EvaluationError(
            f"{cfg.out_dir}: the checkpoint predates stored input statistics and the run's "
            f"training data cannot be read ({e})"
        ) from None


def check_run_config(run: Path, cfg, path: Path) -> None:
    """The run folder's ``config.yaml`` and its checkpoint at ``path`` agree on what the run
    learns (every setting a ``--resume`` may not change): another run's checkpoint copied
    in (the folder's config saying i3d, the checkpoint transformer) was scored as the
    folder's. A folder without a ``config.yaml`` (a checkpoint copied alone) is scored as
    its checkpoint says."""
    from train.run_folder import CONFIG
    from train.trajectory.config import RUNTIME_FIELDS, TrainConfig

    where = run / CONFIG
    if not os.path.lexists(where):
        return
    try:
        folder = TrainConfig.model_validate(read_yaml_mapping(where, EvaluationError))
    except ValidationError as e:
        raise EvaluationError(f"{where} does not load ({describe_validation_error(e)})") from None
    ours, theirs = folder.model_dump(mode="json"), cfg.model_dump(mode="json")
    differ = [k for k in ours if k not in RUNTIME_FIELDS and ours[k] != theirs[k]]
    if differ:
        both = ", ".join(
            f"{k} {short_repr(ours[k])} and {short_repr(theirs[k])}" for k in differ[:3]
        )
        raise EvaluationError(
            f"{where} and {path} are of different runs ({both}): the folder and its "
            "checkpoint disagree"
        )


def check_compatible(extractor: str, trained: dict, data_meta: dict, data: Path) -> None:
    """The model's head and input sizes match the dataset's classes, cameras, frames and
    frame size (a model of global pooling scored other sizes without a word), and its
    targets mean what they meant in training (``check_targets``)."""
    if list(data_meta["classes"]) != list(trained["classes"]):
        raise EvaluationError(
            f"{data} has classes {data_meta['classes']}; {extractor} was trained on "
            f"{trained['classes']} (the same names in the same order are needed)"
        )
    have, want = data_meta["video_shape"], trained["video_shape"]
    for what, axis in (("cameras", 0), ("frames", 1)):
        if int(have[axis]) != int(want[axis]):
            raise EvaluationError(
                f"{data} has {int(have[axis])} {what} a clip; {extractor} was trained on "
                f"{int(want[axis])}"
            )
    size, trained_size = [int(n) for n in have[-2:]], [int(n) for n in want[-2:]]
    if size != trained_size:
        raise EvaluationError(
            f"{data} has frames of {size[0]}x{size[1]} pixels; {extractor} was trained on "
            f"{trained_size[0]}x{trained_size[1]}"
        )
    check_targets(extractor, trained, data_meta, data)


def check_targets(extractor: str, trained: dict, data_meta: dict, data: Path) -> None:
    """The future position is the one the model learnt to predict: ``horizon`` frames after
    the clip at ``fps`` (a run of horizon 5 was scored on clips of horizon 10 without a
    word). How the clips look may differ (distractors, occluders, noise, lighting, blur,
    camera motion, a wider scene box: predictions go back to world units by the run's own
    scale): how a model copes with harder clips is a fair question. A value either side
    does not record is not compared."""
    config = trained.get("generator_config") or {}
    for what, want, have in (
        ("horizon", config.get("horizon"), data_meta.get("horizon")),
        ("fps", config.get("fps"), data_meta.get("fps")),
    ):
        known = want is not None and have is not None
        if known and not (isinstance(want, int | float) and want == have):  # a tensor: damage
            raise EvaluationError(
                f"{data} has {what} {have}; {extractor} was trained on {what} "
                f"{short_repr(want)} (its future position is another target)"
            )


def record_stem(data: Path, split: str, checkpoint: str) -> str:
    """A record's name without ``.json``: ``DATA.SPLIT`` for best.pt (the name that readers,
    ``benchmarks/bench_train.py`` among them, look up), ``DATA.SPLIT.last`` for last.pt, so
    scoring one checkpoint does not replace the other's record."""
    name = data.resolve().name  # "--data ." is the folder's own name
    return f"{name}.{split}" if checkpoint == "best" else f"{name}.{split}.{checkpoint}"


def replaced_record(path: Path, identity: str, data: Path) -> dict | None:
    """The record at ``path`` that scoring ``data`` replaces (None if there is none). A
    record of another dataset of the same folder name is refused: it was overwritten, and a
    researcher's saved scores vanished. One written before records named their dataset's
    identity is known by its ``data`` path."""
    if not path.exists():
        return None
    try:
        if not path.is_file():  # a FIFO would block the read
            raise ValueError(f"{path} is not a regular file")
        old = read_json(path)
        if not isinstance(old, dict):
            raise ValueError(f"{path} does not hold a JSON object")
    except ValueError as e:
        raise EvaluationError(f"{e}; it is not a record of ours: move it away") from None
    if not {"extractor", "checkpoint", "data"} <= old.keys():
        raise EvaluationError(f"{path} is not a record of ours: move it away")
    if "dataset" in old:
        same = old["dataset"] == identity
    else:  # a record from before identities: its path ("a\0b" names no folder)
        same = "\0" not in str(old["data"]) and Path(str(old["data"])).resolve() == data.resolve()
    if not same:
        raise EvaluationError(
            f"{path} holds the scores on another dataset named {data.resolve().name} "
            f"({short_repr(old.get('data'))}, {short_repr(old.get('samples'))} clips scored); "
            f"move it away to score {data}"
        )
    return old


@contextmanager
def evaluations_locked(run: Path) -> Iterator[Path]:
    """``run/evaluations``, made if missing, with its lock held from before the scoring to
    the record: a second evaluation of the run at once is refused at its start (it was
    refused only when writing, after all its scoring). A folder made here that holds
    nothing but the lock when we leave (the scoring failed) is removed again."""
    from train.run_folder import LOCK

    evaluations = run / "evaluations"
    if os.path.lexists(evaluations) and not evaluations.is_dir():  # a dangling link too
        raise EvaluationError(f"{evaluations} is not a folder; move it away to score {run}")
    held = ExitStack()
    try:
        held.enter_context(locked_folder(evaluations, LOCK))
    except LockedError as e:
        raise EvaluationError(str(e)) from None
    with held:
        yield evaluations


def write_record(evaluations: Path, stem: str, record: dict, rows, data: Path) -> None:
    """``stem.json`` and the per-clip file it names, under the folder's lock
    (``evaluations_locked``). The clips file is named by its rows' hash and written first,
    the record last, then the clips file of the record replaced is removed: a stop in
    between never leaves a record describing another run's or checkpoint's clips."""
    from train.trajectory.clips import clips_csv

    old = replaced_record(evaluations / f"{stem}.json", record["dataset"], data)
    text = clips_csv(rows)
    record["clips"] = f"{stem}.{sha256_bytes(text)[:12]}.clips.csv"
    write_atomic(evaluations / record["clips"], text)
    write_json_atomic(evaluations / f"{stem}.json", record)
    stale = str((old or {}).get("clips") or "")
    if stale != record["clips"] and re.fullmatch(
        rf"{re.escape(stem)}\.[0-9a-f]{{12}}\.clips\.csv", stale
    ):
        (evaluations / stale).unlink(missing_ok=True)  # only this record's own, by its name


def shares_training_samples(samples_match: bool, split: str, rendered: bool) -> bool:
    """In every split for a run trained on rendered samples, in ``all`` and ``train`` for
    one trained on a folder (splits stay put when a dataset is extended)."""
    return samples_match and (rendered or split in ("all", "train"))


def evaluate_run(run: Path, args: argparse.Namespace, data_meta: dict, ctx) -> tuple[dict, dict]:
    """Score one run's weights on ``args.data``, ``run/evaluations`` locked
    (``evaluations_locked``); returns the record and the per-clip columns it also writes
    (``train.trajectory.clips``)."""
    import numpy as np
    import torch

    from extractors import ExtractorConfigError, UnknownExtractorError
    from generator.dataformat.dataset import TrajectoryDataset
    from generator.dataformat.loader import make_loader
    from generator.dataformat.metadata import dataset_identity
    from train.checkpoint import CheckpointError, load_checkpoint
    from train.run_folder import BEST, LAST
    from train.trajectory.clips import COLUMNS, as_columns
    from train.trajectory.config import TrainConfig
    from train.trajectory.evaluate import FutureScale, evaluate
    from train.trajectory.inputs import InputPipeline
    from train.trajectory.preflight import same_samples

    evaluations = run / "evaluations"  # locked by the caller (evaluations_locked)
    path = run / (BEST if args.checkpoint == "best" else LAST)
    state = load_checkpoint(path)
    try:
        cfg = TrainConfig.model_validate(state["config"])
    except ValueError as e:  # pydantic's ValidationError is one
        raise EvaluationError(f"{path}: its config does not load ({e})") from None
    check_run_config(run, cfg, path)
    trained = stored_inputs(state, cfg, path)
    check_compatible(cfg.extractor, trained, data_meta, args.data)
    # The run's own dataset (or a copy, or an extension of it), wherever it is now.
    samples = same_samples(trained, data_meta)
    own = cfg.render is None and samples
    split = args.split or ("test" if own else "all")
    stem, identity = record_stem(args.data, split, args.checkpoint), dataset_identity(data_meta)
    replaced_record(evaluations / f"{stem}.json", identity, args.data)  # before the scoring
    overlap = shares_training_samples(samples, split, cfg.render is not None)
    if overlap and not args.quiet:
        print(
            f"note: {args.data} has the seed and generator config {cfg.extractor} trained on, "
            "so it holds training samples: this is not a held-out score",
            file=sys.stderr,
        )
    dealt = {"fractions": ALL_SAMPLES} if split == "all" else {}  # else the run's own deal
    ds = TrajectoryDataset(
        args.data,
        "test" if split == "all" else split,
        **dealt,
        split_seed=cfg.split_seed,
        frame_stride=cfg.frame_stride,
        normalize=False,
        stats=(trained["mean"], trained["std"]),
    )
    if not len(ds):
        raise EvaluationError(
            f"{args.data} has no samples in the {split} split as {run} deals it "
            f"({data_meta['total_samples']} in all); --split all scores every one"
        )
    try:
        model = cfg.build_model(len(ds.cameras), len(trained["classes"]))
    except (UnknownExtractorError, ExtractorConfigError) as e:  # a plugin gone, a field renamed
        raise EvaluationError(
            f"{run}: its extractor {cfg.extractor!r} cannot be built here ({e})"
        ) from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:  # missing, unexpected or misshapen tensors
        detail = str(e).strip().splitlines()[0]
        raise EvaluationError(
            f"{path}: its weights do not fit {cfg.extractor} ({detail})"
        ) from None
    pipeline = InputPipeline(
        normalize=ds.normalize_batch,
        subtract_background=cfg.subtract_background,
        position_channels=cfg.position_channels,
        downsample=cfg.downsample,
    )
    clips: list[torch.Tensor] = []
    scores = evaluate(
        model.to(ctx.device),
        make_loader(ds, args.batch_size, num_workers=args.workers, persistent_workers=False),
        FutureScale(trained["scene_bounds"]),
        ctx,
        len(trained["classes"]),
        cfg.future_weight,
        cfg.smooth_l1_beta,
        None,
        pipeline,
        cfg.trajectory_weight,
        clips,
    )
    if scores["nonfinite_clips"]:
        raise CheckpointError(
            f"{path} gives non-finite outputs (NaN or infinity) on {scores['nonfinite_clips']} "
            f"of {scores['samples']} clips of {args.data}: it has no score, nothing is recorded"
        )
    extent = float(data_meta.get("scene_extent") or 0.0) or None
    record = {
        "extractor": cfg.extractor,
        "run": str(run),
        "checkpoint": args.checkpoint,
        "epoch": state["epoch"],
        "data": str(args.data),
        "dataset": identity,
        "split": split,
        "classes": list(trained["classes"]),
        "shares_training_samples": overlap,
        **scores,
        "future_rmse_fraction": scores["future_rmse"] / extent if extent else None,
    }
    rows = torch.cat(clips).numpy() if clips else np.zeros((0, len(COLUMNS)))
    write_record(evaluations, stem, record, rows, args.data)
    return record, as_columns(rows)


def paired_lines(scored: list[tuple[dict, dict]]) -> list[str]:
    """One line per pair of runs scored here, best first: the lead and McNemar's test."""
    from train.trajectory.clips import paired

    scored = sorted(scored, key=lambda rc: -rc[0]["accuracy"])
    order = [record for record, _ in scored]
    lines = []
    for i, j in itertools.combinations(range(len(order)), 2):
        try:
            score = paired(scored[i][1], scored[j][1])
        except ValueError as e:  # one run scored on its own test split, the other on all
            splits = order[i]["split"], order[j]["split"]
            which = " and ".join(splits) if len(set(splits)) > 1 else f"two deals of {splits[0]}"
            lines.append(
                f"{order[i]['run']} and {order[j]['run']}: not compared ({e}: {which}); "
                "--split all scores both on every clip"
            )
            continue
        lines.append(
            f"{order[i]['extractor']} ({order[i]['run']}) over {order[j]['extractor']} "
            f"({order[j]['run']}): {100 * score.lead:+.1f} pts on {score.clips} clips, right "
            f"only in one {score.a_only} against {score.b_only}, McNemar p {score.p:.3g}"
        )
    return lines


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (refused := refusal_under_torchrun("python -m train.evaluate")) is not None:
        return refused
    load_modules("torch", "extractors.registry", "generator.dataformat.dataset")
    return exit_on_interrupt(
        lambda: score_runs(args),
        "python -m train.evaluate: the runs scored before it keep their records",
    )


def score_runs(args: argparse.Namespace) -> int:
    """Score every run in turn; exit 0, 1 (damaged checkpoint or dataset, unwritable record,
    out of memory, a data-loading worker killed), 2 (bad input)."""
    from generator.dataformat.dataset import DatasetError
    from train.checkpoint import CheckpointError
    from train.distributed import DeviceError, DistContext, pick_device
    from train.trajectory.preflight import PreflightError, check_dataset

    prog = "python -m train.evaluate"
    try:
        data_meta = check_dataset(args.data)
        ctx = DistContext(0, 1, 0, pick_device(args.device))  # one process scores it all
        scored = []
        for run in args.runs:
            if not run.is_dir():
                problem = "is not a folder" if run.exists() else "does not exist"
                raise EvaluationError(f"run folder {run} {problem}")
            with evaluations_locked(run):
                record, clips = evaluate_run(run, args, data_meta, ctx)
            scored.append((record, clips))
            if not args.quiet:
                print(
                    f"{record['extractor']} ({run}, epoch {record['epoch']}): accuracy "
                    f"{record['accuracy']:.3f} on {record['samples']} samples "
                    f"({record['split']}), future RMSE {record['future_rmse']:.3f}",
                    flush=True,
                )
        if len(scored) > 1 and not args.quiet:
            print("\n".join(paired_lines(scored)))
    except (CheckpointError, DatasetError) as e:
        print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
        return 1
    except OSError as e:  # the record cannot be written, a data-loading worker's pipe broke
        print(f"{prog}: error: {worker_lost(e, KNOBS) or failed_io(e)}", file=sys.stderr)
        return 1
    except (EvaluationError, PreflightError, DeviceError) as e:
        print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError, EOFError) as e:
        if caused_by_interrupt(e):
            raise
        if (failure := worker_death(e, KNOBS) or out_of_memory(e)) is None:
            raise
        print(f"{prog}: error: {failure}", file=sys.stderr)
        return 1
    return 0
