"""Disk-space preflight: will the remaining samples fit on the output's filesystem?

The estimate comes from the format itself: the size of one serialised video
(its bytes plus a bound on torch.save's overhead), a label (measured from a real
one), each rounded up to the filesystem block, plus manifests and a safety
margin. For shards, the uncompressed tar record of a sample is the bound (zstd
only shrinks these videos, by ~18%). No torch is imported: the parent process
of a run never needs it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.config import GeneratorConfig
from generator.dataformat.layout import label_bytes

MARGIN = 0.05  # relative slack on top of the estimate
FIXED_RESERVE = 16 * 2**20  # metadata, manifests' headers, temporary files in flight
BLOCK = 4096

# torch.save's zip headers, pickle and alignment around a uint8 tensor's bytes: 1,577 bytes
# with torch 2.14 whatever the shape; bounded here so the parent need not import torch
# (a second or two of start-up) just to size a file.
TORCH_SAVE_OVERHEAD = 4096


def _round_block(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


@dataclass(frozen=True)
class Estimate:
    samples: int
    bytes_per_sample: int
    needed: int
    free: int | None
    where: Path
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.free is not None and self.free >= self.needed

    def describe(self) -> str:
        need = f"{self.samples} samples need about {_human(self.needed)} ({_human(self.bytes_per_sample)} each)"
        if self.free is None:
            return f"{need}, but the free space of {self.where} could not be read: {self.error}"
        verdict = "enough" if self.ok else "NOT enough"
        return f"{need}; {_human(self.free)} free on {self.where}: {verdict}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def video_file_bytes(cfg: GeneratorConfig) -> int:
    """The most a sample's ``.pt`` video file holds: its tensor and torch.save's overhead."""
    return int(np.prod(cfg.video_shape)) + TORCH_SAVE_OVERHEAD


def bytes_per_sample(cfg: GeneratorConfig, fmt: str = "pt") -> int:
    """On-disk bytes of one sample: video file + label + manifest entry, block-rounded (pt),
    or the sample's uncompressed tar record + manifest entry (shards)."""
    zeros = np.zeros(cfg.video_shape, dtype=np.uint8)
    if fmt == "shards":
        from generator.dataformat.shards import npy_header

        video = _round_tar(len(npy_header(zeros)) + zeros.nbytes)
    else:
        video = _round_block(video_file_bytes(cfg))
    # A label's size barely varies; measure a representative one with full-precision floats.
    horizon = cfg.frames + cfg.horizon
    fake = {
        "positions": np.full((horizon, 3), -1.2345678901234567).tolist(),
        "trajectory_params": {f"p{i}": [-1.2345678901234567] * 3 for i in range(8)},
        "appearance": {f"a{i}": [-1.2345678901234567] * 3 for i in range(9)},
        "pad": "x" * 512,
    }
    label = len(label_bytes(fake))
    manifest_entry = 300
    if fmt == "shards":
        return video + _round_tar(label) + manifest_entry + 64  # + the zstd frame's own header
    return video + _round_block(label) + manifest_entry


def _round_tar(n: int) -> int:
    """A tar member: a 512-byte header and data padded to 512 bytes."""
    return 512 + -(-n // 512) * 512


def existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def estimate(
    cfg: GeneratorConfig, samples: int, out: str | os.PathLike, fmt: str = "pt"
) -> Estimate:
    per = bytes_per_sample(cfg, fmt)
    needed = int(samples * per * (1 + MARGIN)) + FIXED_RESERVE if samples > 0 else 0
    where = existing_ancestor(Path(out))
    try:
        free: int | None = shutil.disk_usage(where).free
        error = None
    except OSError as e:
        free, error = None, e.strerror or str(e)
    return Estimate(
        samples=samples, bytes_per_sample=per, needed=needed, free=free, where=where, error=error
    )
