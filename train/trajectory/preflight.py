"""Checks before a run starts, each failing with one line: extractor, dataset, splits, the
model, disk space, memory.

Cheap checks first, so a typo in ``--extractor`` does not wait for the dataset
scan. Checkpoint space: ``last.pt`` and ``best.pt`` each hold the weights and
AdamW's two moments (3 x 4 bytes a parameter), and an atomic write needs room
for a second copy while it renames; a margin covers logs and TensorBoard.
"""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

import torch

from train.trajectory.config import TrainConfig
from train.trajectory.inputs import InputPipeline
from trajkit.cli import first_line, out_of_memory

DISK_MARGIN_BYTES = 64 * 2**20
MIN_SAMPLES = 20  # the splits' minimum, for a run on a dataset folder
CGROUP_ROOT = Path("/sys/fs/cgroup")
SHUFFLE_BYTES = 48
"""Memory a rendered epoch's training sample takes at the epoch's start: DistributedSampler
shuffles the whole epoch at once (torch.randperm's int64, the Python list made of it, its
rank's slice); measured 48 bytes a sample at 2e7 samples."""


SMALLEST_CLIP = (8, 16, 16)
"""Frames, height and width of the smallest clip every extractor must take
(``extractors.registry``'s contract): what ``check_model`` runs, where the run's are larger."""


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


def check_model(cfg: TrainConfig, meta: dict) -> None:
    """The run's extractor against its contract (``extractors.registry.check_contract``), on
    one sample of the run's cameras at its preset and options, its clips cut to the smallest
    the contract allows (``SMALLEST_CLIP``); then the run's whole model on that sample. A
    plugin that breaks the contract (a factory or forward that raises, an output other than
    ``(clips, embed_dim)``) or a model that fails is one line, before the run folder is
    written: it was a traceback at the first step. At the run's own clip size MAGVIT's base
    preset took 80 s on a 2-core CPU; cut, a built-in takes 0.02-0.1 s at its tiny preset
    and 0.7-3.5 s at base (the extractor is built twice: alone, then in the model)."""
    from extractors import ExtractorContractError, check_contract, get_extractor

    cameras, frames, _, height, width = (int(n) for n in meta["video_shape"])
    sample = torch.zeros(1, cameras, 3, len(range(0, frames, cfg.frame_stride)), height, width)
    try:
        video = InputPipeline(
            subtract_background=cfg.subtract_background,
            position_channels=cfg.position_channels,
            downsample=cfg.downsample,
        )(sample)
    except ValueError as e:  # frames smaller than the downsample factor
        raise PreflightError(f"downsample {cfg.downsample}: {e}") from None
    t, h, w = SMALLEST_CLIP
    video = video[..., :t, :h, :w].contiguous()
    try:
        check_contract(cfg.extractor, cfg.preset, tuple(video.flatten(0, 1).shape),
                       **cfg.extractor_options)  # fmt: skip
    except ExtractorContractError as e:
        raise PreflightError(str(e)) from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine took seconds longer
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            cfg.build_model(cameras, len(meta["classes"])).eval()(video)
    except Exception as e:
        if out_of_memory(e) is not None:
            raise
        raise PreflightError(
            f"extractor {cfg.extractor!r} ({get_extractor(cfg.extractor).module}): the run's "
            f"model fails on one sample ({first_line(f'{type(e).__name__}: {e}')})"
        ) from None
    finally:
        torch.set_num_threads(threads)


def check_dataset(root: Path) -> dict:
    """Quick validation (metadata, counts, labels, balance); returns the metadata. Training's
    minimum size is ``preflight``'s: ``train.evaluate`` scores smaller sets whole. A folder
    that is not there is a bad ``--data`` (``PreflightError``); damage found in one is a
    ``DatasetError``, as when a read during training finds it (exit 1 either way)."""
    from generator.dataformat.dataset import DatasetError, read_metadata
    from generator.dataformat.validate import validate

    if root.exists() and not root.is_dir():
        raise PreflightError(f"dataset folder {root} is not a folder")
    if not root.is_dir():
        raise PreflightError(
            f"dataset folder {root} does not exist (make one with python -m generator)"
        )
    meta = read_metadata(root)
    report = validate(root, quick=True, workers=2)
    if report.failed:
        failures = [line.strip() for line in report.lines if not line.startswith(("ok", "skip"))]
        first = "; ".join(failures[:2])
        raise DatasetError(
            f"dataset {root} failed validation: {first} (run python -m generator validate {root})"
        )
    return meta


def check_splits(root: Path, meta: dict, split_seed: int) -> None:
    """Every split of the run's deal holds a sample. An empty one passed: an empty
    validation split scored every epoch 0 loss, so epoch 1 stayed "best" for ever. A deal
    of few samples can leave one empty (20 samples, 4 classes: val on split seeds 0 and 8);
    20 samples of each class fill every split."""
    from generator.dataformat.dataset import SPLITS, split_indices
    from generator.dataformat.sources import open_source

    labels = open_source(root, meta).index.class_labels  # damage: a DatasetError, as above
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


def cgroup_memory_limit(
    root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")
) -> tuple[int, Path] | None:
    """The tightest memory limit on this process's control group and the groups it lies in
    (cgroup v2's ``memory.max``, v1's ``memory.limit_in_bytes``), with the file that sets
    it; None if none is set. A container's limit and Slurm's ``--mem`` are such limits. A
    group not found under ``root`` (a container shows its own as the root) is looked for
    in the groups above it."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, group = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2's one hierarchy
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        parts = Path(group).relative_to("/").parts if group.startswith("/") else ()
        for depth in range(len(parts), -1, -1):
            path = base.joinpath(*parts[:depth], name)
            try:
                limits.append((int(path.read_text().strip()), path))
            except (OSError, ValueError):  # no such group here, or "max" (none)
                continue
    return min(limits, default=None)


def memory_limits() -> dict[str, int]:
    """What bounds this process's memory, in bytes, by the words a refusal names it with: the
    machine's memory, the process's address-space and data limits (``ulimit -v``, ``-d``)
    and its control group's limit, each where set."""
    limits = {}
    if (machine := physical_memory()) is not None:
        limits["this machine's memory"] = machine
    for name, flag in (("RLIMIT_AS", "-v"), ("RLIMIT_DATA", "-d")):
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY:
            limits[f"this process's limit {name} (ulimit {flag})"] = soft
    if (group := cgroup_memory_limit()) is not None:
        limits[f"the memory limit of this process's control group ({group[1]})"] = group[0]
    return limits


def check_shuffle_memory(epoch_samples: int) -> None:
    """An epoch too large to shuffle in memory is refused naming --epoch-samples: it failed
    at the first epoch as 'out of memory ... lower the batch size'. Against the tightest
    bound: under a ulimit, a container or Slurm's --mem, the machine's memory was too much."""
    limits = memory_limits()
    if not limits:
        return
    what = min(limits, key=limits.__getitem__)
    need, have = SHUFFLE_BYTES * epoch_samples, limits[what]
    if need > have:
        raise PreflightError(
            f"--epoch-samples {epoch_samples:,}: shuffling an epoch takes about {gib(need)}, "
            f"more than the {gib(have)} of {what}; give fewer samples an epoch and more epochs"
        )


def gib(size: int) -> str:
    return f"{size / 2**30:.3g} GiB"


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
    check_model(cfg, meta)
    check_disk(
        cfg.out_dir,
        count_parameters(cfg, int(meta["video_shape"][0]), len(meta["classes"])),
    )
    return meta
