"""Reading format v1: metadata, single samples, and ``TrajectoryDataset`` for training."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from generator.dataformat.layout import (
    CONVERTING,
    FORMAT_VERSION,
    FORMATS,
    LOCK,
    METADATA,
    STATS_FILE,
    Layout,
)
from generator.dataformat.sources import (
    DatasetError,
    Metadata,
    kind_of,
    open_source,
    parse_json,
    read_file,
    schema_error,
)
from trajkit.cli import short_repr
from trajkit.lock import LockedError, no_writer

# A metadata.json is a few kB (its camera rig and config); one far larger is not one, and a huge
# sparse file would be read whole.
MAX_METADATA_BYTES = 16 << 20

__all__ = ["DatasetError", "TrajectoryDataset", "load_sample", "read_metadata", "split_indices"]


def read_metadata(root: str | Path) -> dict:
    """``metadata.json`` of ``root``, checked against its schema (``DatasetError`` names what is wrong)."""
    root = Path(root)
    path = root / METADATA
    try:  # unlike is_dir(), tells a missing folder from a file, a FIFO or a link loop
        mode = os.stat(root).st_mode
    except FileNotFoundError:
        raise DatasetError(f"dataset folder {root} does not exist") from None
    except OSError as e:
        raise DatasetError(f"dataset folder {root} cannot be read ({e.strerror})") from None
    if not stat.S_ISDIR(mode):
        raise DatasetError(f"{root} is {kind_of(mode)}, not a dataset folder")
    if not os.path.lexists(path):
        raise DatasetError(f"{path} is missing: {_why_unfinished(root)}")
    meta = parse_json(path, read_file(path, root, limit=MAX_METADATA_BYTES))
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{path} has format_version {short_repr(version)}; this reader knows {FORMAT_VERSION}"
        )
    fmt = meta.get("format", "pt")
    if fmt not in FORMATS:
        raise DatasetError(
            f"{path} has format {short_repr(fmt)}; this reader knows {', '.join(FORMATS)}"
        )
    try:
        Metadata.model_validate(meta)
    except ValidationError as e:
        raise schema_error(path, e) from None
    return meta


def _why_unfinished(root: Path) -> str:
    """What a folder without metadata.json is, and what finishes it: a writer at work, a
    convert that stopped (only convert can finish it), or a generation that stopped."""
    try:
        with no_writer(root / LOCK):
            pass
    except LockedError as e:
        return str(e)
    if os.path.lexists(root / CONVERTING):
        return (
            "the folder is an unfinished convert (run the same python -m generator convert "
            "again, or remove the folder)"
        )
    return "the dataset is incomplete (finish it with python -m generator --resume)"


def load_sample(root: str | Path, index: int) -> tuple[np.ndarray, dict, dict]:
    """Video (numpy uint8), label and metadata of sample ``index``; an ``index`` the dataset
    does not hold is an ``IndexError`` (the caller's mistake, not damage)."""
    meta = read_metadata(root)
    if not 0 <= index < meta["total_samples"]:
        raise IndexError(
            f"--index {index} is out of range: {root} holds {meta['total_samples']} samples"
        )
    video, label = open_source(root, meta).read(index)
    return video.numpy(), label, meta


# ------------------------------------------------------------------ splits

SPLITS = ("train", "val", "test")
SPLIT_BLOCK = 20  # split fractions are realised exactly in every block of 20 samples of a class
STATS_SAMPLES = 64


def split_indices(
    classes: list[int], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[int]]:
    """Stratified, seeded splits that stay put when the dataset is extended.

    The k-th sample of each class falls in block k // 20 of that class; each
    block is dealt to train/val/test by its own seeded permutation. Appending
    samples only adds blocks, so no sample ever changes split.
    """
    counts = [round(f * SPLIT_BLOCK) for f in fractions]
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(counts) != SPLIT_BLOCK:
        raise ValueError(
            f"split fractions must be three non-negative multiples of 1/{SPLIT_BLOCK} summing to 1"
        )
    deal = np.repeat(np.arange(3), counts)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    seen: dict[int, int] = {}
    for index, cls in enumerate(classes):
        k = seen.get(cls, 0)
        seen[cls] = k + 1
        order = np.random.default_rng([seed, cls, k // SPLIT_BLOCK]).permutation(deal)
        out[SPLITS[order[k % SPLIT_BLOCK]]].append(index)
    return out


def channel_stats(source, picks: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (float64) of the videos of samples ``picks`` of any source."""
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    count = 0
    for i in picks:
        v = source.read_video(i).to(torch.float64) / 255.0
        total += v.sum(dim=(0, 1, 3, 4))
        total_sq += (v * v).sum(dim=(0, 1, 3, 4))
        count += v.numel() // 3
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
    return mean, std


# ------------------------------------------------------------------ the dataset


class TrajectoryDataset(torch.utils.data.Dataset):
    """Format-v1 samples for training, from either layout ("pt" files or "shards").

    An item is a dict: ``video`` float32 (cameras, 3, frames, H, W), normalised
    per channel; ``label`` int64; ``future_position`` float32 (3,) in world
    units; ``positions`` float32 (frames, 3), the ball's world position in each
    frame given (what an auxiliary loss can supervise); ``index``. With
    ``normalize=False`` the video stays uint8 (same layout) and ``normalize_batch``
    finishes the job on the consumer's device. ``cameras`` picks a subset of
    cameras, ``frame_stride`` subsamples time. ``augment`` jitters brightness,
    contrast and saturation of the whole clip (one draw for all frames and
    cameras); nothing that moves pixels, so every labelled position stays where
    it is drawn. Every read checks the files' type, size and SHA-256 against the
    manifests, a ``.pt`` video's too (about 1.3 ms a sample, the only way to see a flipped
    bit inside a tensor); ``verify`` also hashes the videos of zstd shards, whose frames
    carry their own checksum. ``stats`` (per-channel mean, std) replaces
    the dataset's own training statistics: a trained model's, to evaluate it on other data.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        split_seed: int = 0,
        cameras: list[int] | None = None,
        frame_stride: int = 1,
        augment: bool = False,
        limit: int | None = None,
        normalize: bool = True,
        verify: bool = False,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.root = Path(root)
        self.meta = read_metadata(self.root)
        self.layout = Layout(self.root, self.meta["stem_width"])
        self.source = open_source(self.root, self.meta, verify)
        self.split = split
        self.splits = split_indices(self.source.index.class_labels, fractions, split_seed)
        self.indices = self.splits[split][:limit] if limit else self.splits[split]
        stats = stats if stats is not None else self._normalization()
        self._set_view(cameras, frame_stride, augment, normalize, stats)

    def _set_view(
        self,
        cameras: list[int] | None,
        frame_stride: int,
        augment: bool,
        normalize: bool,
        stats: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        """What an item looks like: cameras, time stride, jitter, normalisation (any source)."""
        self.shape = tuple(self.meta["video_shape"])
        n_cams = self.shape[0]
        self.cameras = list(range(n_cams)) if cameras is None else list(cameras)
        if not self.cameras or any(not 0 <= c < n_cams for c in self.cameras):
            raise ValueError(
                f"cameras must be a non-empty subset of 0..{n_cams - 1}, got {cameras}"
            )
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be at least 1, got {frame_stride}")
        self.frame_stride = frame_stride
        self._camera_index = (
            None if self.cameras == list(range(n_cams)) else torch.tensor(self.cameras)
        )
        self.mean, self.std = stats
        self.normalize = normalize
        self._scale = (1.0 / (255.0 * self.std)).view(3, 1, 1, 1)
        self._offset = (-self.mean / self.std).view(3, 1, 1, 1)
        self.jitter = None
        if augment:
            from torchvision.transforms import v2

            self.jitter = v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25)

    @property
    def num_frames(self) -> int:
        return len(range(0, self.shape[1], self.frame_stride))

    @property
    def item_shape(self) -> tuple[int, ...]:
        """An item's ``video``: (cameras, 3, frames, H, W); ``make_loader`` sizes its slots by it."""
        return (len(self.cameras), 3, self.num_frames, *self.shape[-2:])

    @property
    def item_dtype(self) -> torch.dtype:
        return torch.float32 if self.normalize else torch.uint8

    @property
    def scene_bounds(self) -> torch.Tensor:
        """(3, 2) world box [lo, hi] per axis, to normalise future positions."""
        b = self.meta["scene_bounds"]
        return torch.tensor([b["x"], b["y"], b["z"]], dtype=torch.float32)

    def _normalization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the first training samples of this deal, cached beside
        the data under the indices they came from: another split seed or fractions deal
        another training split, whose statistics must not come from its val or test samples
        (the cache once stood for any deal of a dataset's size)."""
        path = self.root / STATS_FILE
        picks = self.splits["train"][:STATS_SAMPLES]
        if not picks:
            raise DatasetError(
                f"{self.root}: this deal leaves no training samples to take normalisation "
                "statistics from; give stats=(mean, std), a trained model's"
            )
        try:
            stats = parse_json(path, read_file(path, self.root))
            if stats.get("samples_used") == picks:
                return torch.tensor(stats["mean"]), torch.tensor(stats["std"])
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # missing or damaged (DatasetError is a ValueError): computed again
        mean, std = channel_stats(self.source, picks)
        try:
            from trajkit.files import write_json_atomic

            write_json_atomic(
                path, {"samples_used": picks, "mean": mean.tolist(), "std": std.tolist()}
            )
        except OSError:
            pass  # a read-only dataset: recompute next time
        return mean.float(), std.float()

    def normalize_batch(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 (..., 3, T, H, W) from ``normalize=False`` to the normalised float32 items give.

        Moving uint8 and normalising on the consumer's device carries a quarter of the
        bytes through the DataLoader: several times the samples/s on a small CPU.
        """
        scale, offset = self._scale.to(video.device), self._offset.to(video.device)
        return torch.addcmul(offset, video.to(torch.float32), scale)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        index = self.indices[i]
        video, label = self.source.read(index)
        if self._camera_index is not None:  # a copy, so only for a true subset
            video = video.index_select(0, self._camera_index)
        video = video[:, :: self.frame_stride]  # (V, T, 3, H, W) uint8, a view
        positions = label["positions"][: self.shape[1] : self.frame_stride]
        if self.jitter is not None:
            video = self.jitter(video)
        if self.normalize:
            # Convert and reorder to (V, 3, T, H, W) in one copy, then normalise in place:
            # (x / 255 - mean) / std = x * scale + offset. Three passes instead of five.
            x = torch.empty(
                video.shape[0], 3, video.shape[1], *video.shape[3:], dtype=torch.float32
            )
            x.copy_(video.permute(0, 2, 1, 3, 4))
            torch.addcmul(self._offset, x, self._scale, out=x)
        else:
            x = video.permute(0, 2, 1, 3, 4)  # uint8 view; the collate's stack makes the one copy
        return {
            "video": x,
            "label": torch.tensor(label["class_label"], dtype=torch.int64),
            "future_position": torch.tensor(label["future_position"], dtype=torch.float32),
            "positions": torch.tensor(positions, dtype=torch.float32),
            "index": index,
        }
