"""Stimuli of any size onto one square grid, with fixations and maps kept aligned.

``resize`` stretches to the grid; ``letterbox`` keeps the aspect ratio, scales the
longer side to the grid and pads the rest (centred), with a mask of the valid pixels
so the model's density and the metrics ignore the padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from train.saliency.density import fixation_density
from train.saliency.records import SaliencySource, Sample


@dataclass
class GridSample:
    """One stimulus on the grid: ``fixations`` are integer (x, y) grid cells."""

    image: np.ndarray  # (3, S, S) uint8 (kept small in memory; scaled to [0, 1] in collate)
    mask: np.ndarray  # (S, S) bool, True on the stimulus
    fixations: np.ndarray  # (N, 2) int64
    fixation_map: np.ndarray  # (S, S) float64, sums to 1 inside the mask
    category: str


def placement(size: tuple[int, int], grid: int, mode: str) -> tuple[int, int, int, int]:
    """(height, width, top, left) of the stimulus on the grid."""
    h, w = size
    if mode == "resize":
        return grid, grid, 0, 0
    scale = grid / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return nh, nw, (grid - nh) // 2, (grid - nw) // 2


def map_fixations(
    fix: np.ndarray, size: tuple[int, int], place: tuple[int, int, int, int]
) -> np.ndarray:
    """Pixel (x, y) to the grid cell whose footprint contains it."""
    h, w = size
    nh, nw, top, left = place
    gx = np.clip(np.floor(fix[:, 0] * nw / w), 0, nw - 1) + left
    gy = np.clip(np.floor(fix[:, 1] * nh / h), 0, nh - 1) + top
    return np.stack([gx, gy], axis=1).astype(np.int64)


def _paste(arr: np.ndarray, grid: int, place, resample) -> np.ndarray:
    nh, nw, top, left = place
    mode = "RGB" if arr.ndim == 3 else "F"
    img = Image.fromarray(arr if arr.ndim == 3 else arr.astype(np.float32), mode=mode)
    small = np.asarray(img.resize((nw, nh), resample=resample))
    out = np.zeros((grid, grid, *small.shape[2:]), dtype=small.dtype)
    out[top : top + nh, left : left + nw] = small
    return out


def to_grid(sample: Sample, grid: int, mode: str) -> GridSample:
    """Place one stimulus, its fixations and its map (shipped, else derived) on the grid."""
    place = placement(sample.size, grid, mode)
    nh, nw, top, left = place
    image = _paste(sample.image, grid, place, Image.BILINEAR)
    mask = np.zeros((grid, grid), dtype=bool)
    mask[top : top + nh, left : left + nw] = True
    fix = map_fixations(sample.fixations, sample.size, place)
    if sample.fixation_map is not None:
        fmap = _paste(sample.fixation_map, grid, place, Image.BILINEAR).astype(np.float64)
        fmap = np.clip(fmap, 0, None) * mask
        fmap = fmap / fmap.sum() if fmap.sum() > 0 else mask / mask.sum()
    else:
        fmap = np.zeros((grid, grid))
        fmap[top : top + nh, left : left + nw] = fixation_density(fix - [left, top], (nh, nw))
    return GridSample(image.transpose(2, 0, 1).copy(), mask, fix, fmap, sample.category)


class GridDataset(torch.utils.data.Dataset):
    """Stimuli ``indices`` of a source, placed on the grid once and kept in memory.

    Stimuli without fixations are dropped (they carry no likelihood); ``skipped`` counts them.
    """

    def __init__(
        self,
        source: SaliencySource,
        indices: list[int],
        grid: int,
        mode: str,
        *,
        desc: str = "load",
        quiet: bool = True,
    ):
        self.items: list[GridSample] = []
        self.skipped = 0
        for i in tqdm(indices, desc=desc, disable=quiet, leave=False):
            s = source.load(i)
            if len(s.fixations) == 0:
                self.skipped += 1
                continue
            self.items.append(to_grid(s, grid, mode))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> GridSample:
        return self.items[i]


def collate(items: list[GridSample]) -> dict[str, torch.Tensor]:
    """Stack a batch; fixations are padded to the longest list with ``fix_valid`` marking real ones."""
    n = max(len(g.fixations) for g in items)
    fix = torch.zeros(len(items), n, 2, dtype=torch.long)
    valid = torch.zeros(len(items), n, dtype=torch.bool)
    for b, g in enumerate(items):
        fix[b, : len(g.fixations)] = torch.from_numpy(g.fixations)
        valid[b, : len(g.fixations)] = True
    return {
        "image": torch.from_numpy(np.stack([g.image for g in items])).float() / 255.0,
        "mask": torch.from_numpy(np.stack([g.mask for g in items])),
        "fixations": fix,
        "fix_valid": valid,
        "fixation_map": torch.from_numpy(np.stack([g.fixation_map for g in items])),
    }
