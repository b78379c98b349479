"""A labelled image dataset drawn procedurally, for offline runs, tests and the benchmark.

Ten classes = five shapes (disc, square, triangle, cross, ring) x two fillings (flat, stripes).
Everything else is random nuisance that a good representation should ignore: foreground and
background colours, position, size, stripe angle and frequency, pixel noise. Image ``i`` of a
split depends only on ``(seed, split, i)``, so the data are the same on every machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

SHAPES = ("disc", "square", "triangle", "cross", "ring")
FILLINGS = ("flat", "stripes")
CLASSES = tuple(f"{shape}-{fill}" for shape in SHAPES for fill in FILLINGS)
SPLIT_STREAMS = {"train": 0, "test": 1, "unlabeled": 2}


def _shape_mask(shape: str, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, r: float):
    dx, dy = xx - cx, yy - cy
    if shape == "disc":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    if shape == "triangle":
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if shape == "cross":
        arm = r * 0.3
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    if shape == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    raise ValueError(f"unknown shape {shape}")


def render_image(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image of class ``label``."""
    shape, filling = SHAPES[label // 2], FILLINGS[label % 2]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    background = rng.uniform(0, 1, 3)
    foreground = (background + rng.uniform(0.35, 0.65, 3)) % 1.0  # keep some contrast
    r = rng.uniform(0.28, 0.42) * size
    cx, cy = rng.uniform(r, size - r, 2)
    inside = _shape_mask(shape, xx, yy, cx, cy, r)
    colour = np.broadcast_to(foreground, (size, size, 3)).copy()
    if filling == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(0.12, 0.2) * size
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        dark = (np.floor(phase) % 2 == 0)[..., None]
        colour = np.where(dark, colour * 0.25, colour)
    img = np.where(inside[..., None], colour, background)
    img = img + rng.normal(0, 0.04, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


class SyntheticShapes(Dataset):
    """``(PIL image, label)`` pairs; labels cycle through the classes so any prefix is balanced."""

    classes = CLASSES

    def __init__(
        self, size: int, split: str = "train", image_size: int = 32, seed: int = 0, transform=None
    ) -> None:  # noqa: ANN001
        if split not in SPLIT_STREAMS:
            raise ValueError(f"split must be one of {sorted(SPLIT_STREAMS)}, got {split!r}")
        self.size, self.split, self.image_size, self.seed = size, split, image_size, seed
        self.transform = transform
        self.targets = [i % len(CLASSES) for i in range(size)]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):  # noqa: ANN204
        if not 0 <= index < self.size:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, SPLIT_STREAMS[self.split], index])
        label = self.targets[index]
        image = Image.fromarray(render_image(label, rng, self.image_size))
        return (self.transform(image) if self.transform else image), label
