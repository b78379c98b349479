"""Checks before a run starts, each failing with one line: extractor, dataset, splits, disk space.

Cheap checks first, so a typo in ``--extractor`` does not wait for the dataset
scan. Checkpoint space: ``last.pt`` and ``best.pt`` each hold the weights and
AdamW's two moments (3 x 4 bytes a parameter), and an atomic write needs room
for a second copy while it renames; a margin covers logs and TensorBoard.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from train.trajectory.config import TrainConfig

DISK_MARGIN_BYTES = 64 * 2**20
MIN_SAMPLES = 20  # the splits' minimum, for a run on a dataset folder
SHUFFLE_BYTES = 48
"""Memory a rendered epoch's training sample takes at the epoch's start: DistributedSampler
shuffles the whole epoch at once (torch.randperm's int64, the Python list made of it, its
rank's slice); measured 48 bytes a sample at 2e7 samples."""


class PreflightError(ValueError):
    """A check that failed before training; the message is one line."""


def check_extractor(name: str) -> None:
    """An unknown name fails with the known ones listed (and a close match suggested)."""
    from extractors import UnknownExtractorError, get_extractor

    try:
        get_extractor(name)
    except UnknownExtractorError as e:
        raise PreflightError(str(e)) from None


def count_parameters(cfg: TrainConfig, num_cameras: int, num_classes: int) -> int:
    """Parameters of the run's model, built on the meta device (no memory, no arithmetic)."""
    with torch.device("meta"):
        model = cfg.build_model(num_cameras, num_classes)
    return sum(p.numel() for p in model.parameters())


def check_dataset(root: Path) -> dict:
    """Quick validation (metadata, counts, labels, balance); returns the metadata. Training's
    minimum size is ``preflight``'s: ``train.evaluate`` scores smaller sets whole."""
    from generator.dataformat.dataset import DatasetError, read_metadata
    from generator.dataformat.validate import validate

    if root.exists() and not root.is_dir():
        raise PreflightError(f"dataset folder {root} is not a folder")
    if not root.is_dir():
        raise PreflightError(
            f"dataset folder {root} does not exist (make one with python -m generator)"
        )
    try:
        meta = read_metadata(root)
    except DatasetError as e:
        raise PreflightError(str(e)) from None
    report = validate(root, quick=True, workers=2)
    if report.failed:
        failures = [line.strip() for line in report.lines if not line.startswith(("ok", "skip"))]
        first = "; ".join(failures[:2])
        raise PreflightError(
            f"dataset {root} failed validation: {first} (run python -m generator validate {root})"
        )
    return meta


def check_splits(root: Path, meta: dict, split_seed: int) -> None:
    """Every split of the run's deal holds a sample. An empty one passed: an empty
    validation split scored every epoch 0 loss, so epoch 1 stayed "best" for ever. A deal
    of few samples can leave one empty (20 samples, 4 classes: val on split seeds 0 and 8);
    20 samples of each class fill every split."""
    from generator.dataformat.dataset import SPLITS, DatasetError, split_indices
    from generator.dataformat.sources import open_source

    try:
        labels = open_source(root, meta).index.class_labels
    except DatasetError as e:
        raise PreflightError(str(e)) from None
    sizes = {name: len(indices) for name, indices in split_indices(labels, seed=split_seed).items()}
    empty = [name for name in SPLITS if not sizes[name]]
    if empty:
        dealt = ", ".join(f"{sizes[name]} {name}" for name in SPLITS)
        raise PreflightError(
            f"dataset {root}: split_seed {split_seed} deals its {len(labels)} samples as "
            f"{dealt}, leaving {' and '.join(empty)} empty; generate more samples (20 of each "
            "class fill every split) or give another split_seed in --config"
        )


def same_samples(trained: dict, data_meta: dict) -> bool:
    """Sample ``i`` depends only on (seed, config): a dataset or a render stream of the run's
    training seed and config holds the run's samples, whatever its size or path."""
    seed = trained.get("seed")
    same_seed = seed is not None and seed == data_meta.get("seed")
    return same_seed and trained.get("generator_config") == data_meta.get("config")


def other_samples(cfg: TrainConfig, trained: dict, meta: dict) -> str:
    """Why a resume is refused: its --data or --render gives other samples than the run's."""
    if cfg.render is not None:  # the seed cannot change on resume: the config did
        return (
            f"--resume: {cfg.render} renders other samples than this run trained on (another "
            "generator config); give --render the run's generator config (a copy elsewhere "
            "is fine)"
        )
    return (
        f"--resume: {cfg.data} holds other samples than this run trained on (seed "
        f"{meta.get('seed')!r}, the run's {trained.get('seed')!r}, or another generator "
        "config); give --data the run's dataset (a copy or a moved one is fine)"
    )


def checkpoint_bytes(parameters: int) -> int:
    return 2 * 2 * 3 * 4 * parameters + DISK_MARGIN_BYTES


def existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def check_disk(out: Path, parameters: int) -> None:
    """Room for the run's checkpoints; those already in ``out`` (a resumed run's) are
    replaced in place, so their bytes count as room: after a full disk stopped a run,
    freeing a little must be enough to resume it."""
    present = sum(p.stat().st_size for p in (out / "last.pt", out / "best.pt") if p.is_file())
    need = max(checkpoint_bytes(parameters) - present, DISK_MARGIN_BYTES)
    free = shutil.disk_usage(existing_ancestor(out)).free
    if free < need:
        raise PreflightError(
            f"{out}: {free / 2**20:.0f} MiB free, checkpoints need about {need / 2**20:.0f} MiB; "
            "free some space or choose another --out"
        )


def check_render(cfg: TrainConfig) -> dict:
    """The generator config of a ``--render`` run loads; returns its stream's metadata."""
    from generator.config import ConfigError, load_config
    from generator.pipeline.stream import stream_metadata
    from trajkit.presets import config_file

    try:
        gen = load_config(config_file("generator", cfg.render, PreflightError))
    except ConfigError as e:
        raise PreflightError(f"--render: {e}") from None
    return stream_metadata(gen, cfg.render_seed)


def physical_memory() -> int | None:
    """The machine's memory in bytes (None where the system does not say)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def check_shuffle_memory(epoch_samples: int) -> None:
    """An epoch too large to shuffle in memory is refused naming --epoch-samples: it failed
    at the first epoch as 'out of memory ... lower the batch size'."""
    need, have = SHUFFLE_BYTES * epoch_samples, physical_memory()
    if have is not None and need > have:
        raise PreflightError(
            f"--epoch-samples {epoch_samples:,}: shuffling an epoch takes about "
            f"{need / 2**30:.0f} GiB, more than this machine's {have / 2**30:.0f} GiB of memory; "
            "give fewer samples an epoch and more epochs"
        )


def preflight(cfg: TrainConfig, trained: dict | None = None) -> dict:
    """All checks; returns the dataset metadata. ``trained``: a resumed run's
    ``loop.training_inputs``, from its checkpoint."""
    check_extractor(cfg.extractor)
    if cfg.render is not None:
        check_shuffle_memory(cfg.epoch_samples)
        meta = check_render(cfg)
    else:
        meta = check_dataset(Path(cfg.data))
        if meta["total_samples"] < MIN_SAMPLES:
            raise PreflightError(
                f"dataset {cfg.data} holds {meta['total_samples']} samples; the splits need "
                f"at least {MIN_SAMPLES}"
            )
        check_splits(Path(cfg.data), meta, cfg.split_seed)
    if trained is not None and not same_samples(trained, meta):
        raise PreflightError(other_samples(cfg, trained, meta))
    check_disk(
        cfg.out_dir,
        count_parameters(cfg, int(meta["video_shape"][0]), len(meta["classes"])),
    )
    return meta
