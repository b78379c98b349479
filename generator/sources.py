"""Sample access for both layouts of format v1: per-sample files ("pt") or tar shards ("shards").

``open_source(root, meta)`` is the one way in; ``read(index)`` returns the
video (torch uint8, shape from metadata) and its label.

Why a map-style index and not a streaming ``IterableDataset`` over shards:
every training split, shuffle and camera subset here is chosen by sample
index (``split_indices``), and DataLoader workers must each see a disjoint
part of a split. The checkpoint manifests already record each sample's shard,
byte offset and compressed length, so one sample costs one seek and one
~1.3 MB read and decompression; memory per worker is one sample, never a
shard, and the shuffle is exact rather than a buffer's approximation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from generator.store import Layout


class DatasetError(ValueError):
    """A dataset folder or file that cannot be read; the message names it."""


def _manifest_entries(layout: Layout) -> dict[int, dict]:
    entries: dict[int, dict] = {}
    for path in layout.manifests():
        try:
            for e in json.loads(path.read_text())["samples"]:
                entries[int(e["index"])] = e
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{path} is damaged: {e}") from None
    return entries


class PtSource:
    """``videos/<stem>.pt`` and ``labels/<stem>.json``, one pair per sample."""

    format = "pt"

    def __init__(self, root: Path, meta: dict) -> None:
        self.layout = Layout(root, meta["stem_width"])
        self.shape = tuple(meta["video_shape"])

    def read_video(self, index: int, mmap: bool = True) -> torch.Tensor:
        from generator.dataset import load_video

        return load_video(self.layout.video(index), self.shape, mmap=mmap)

    def read_label(self, index: int) -> dict:
        from generator.dataset import load_label

        return load_label(self.layout.label(index))

    def read(self, index: int) -> tuple[torch.Tensor, dict]:
        return self.read_video(index), self.read_label(index)


class ShardSource:
    """``shards/shard_<start>.tar.zst``; a sample is found by its manifest entry (shard, offset, length)."""

    format = "shards"

    def __init__(self, root: Path, meta: dict) -> None:
        self.layout = Layout(root, meta["stem_width"])
        self.shape = tuple(meta["video_shape"])
        entries = _manifest_entries(self.layout)
        n = meta["total_samples"]
        missing = [i for i in range(n) if i not in entries]
        if missing:
            raise DatasetError(
                f"{root}: {len(missing)} samples are in no checkpoint manifest (first {missing[0]})"
            )
        # Compact arrays rather than n dicts: a DataLoader worker forks with this index.
        names = sorted({entries[i]["shard"] for i in range(n)})
        number = {name: k for k, name in enumerate(names)}
        self.shard_names = names
        self.shard_of = np.array([number[entries[i]["shard"]] for i in range(n)], dtype=np.int32)
        self.offset = np.array([entries[i]["offset"] for i in range(n)], dtype=np.int64)
        self.length = np.array([entries[i]["length"] for i in range(n)], dtype=np.int64)

    def read_members(self, index: int) -> tuple[bytes, bytes]:
        """The ``.npy`` and ``.json`` bytes of sample ``index``, from one frame of its shard."""
        from generator.shards import read_sample

        path = self.layout.shards / self.shard_names[self.shard_of[index]]
        try:
            return read_sample(
                path, self.layout.stem(index), int(self.offset[index]), int(self.length[index])
            )
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing") from None
        except Exception as e:  # zstd, tar and numpy raise many types for damaged bytes
            raise DatasetError(
                f"{path} is damaged at sample {index}: {type(e).__name__}: {str(e)[:200]}"
            ) from None

    def read(self, index: int) -> tuple[torch.Tensor, dict]:
        from generator.shards import decode_video

        video_file, label_file = self.read_members(index)
        path = self.layout.shards / self.shard_names[self.shard_of[index]]
        try:
            video = decode_video(video_file)
            label = json.loads(label_file)
        except ValueError as e:
            raise DatasetError(f"{path} is damaged at sample {index}: {e}") from None
        if video.dtype != np.uint8 or tuple(video.shape) != self.shape:
            raise DatasetError(
                f"{path}: sample {index} has {video.dtype} {tuple(video.shape)}, expected uint8 {self.shape}"
            )
        return torch.from_numpy(video), label

    def read_video(self, index: int, mmap: bool = True) -> torch.Tensor:
        return self.read(index)[0]

    def read_label(self, index: int) -> dict:
        return self.read(index)[1]


def open_source(root: str | Path, meta: dict) -> PtSource | ShardSource:
    fmt = meta.get("format", "pt")  # datasets from before formats existed are "pt"
    if fmt == "pt":
        return PtSource(Path(root), meta)
    if fmt == "shards":
        return ShardSource(Path(root), meta)
    raise DatasetError(
        f"{Path(root) / 'metadata.json'} has format {fmt!r}; this reader knows pt, shards"
    )
