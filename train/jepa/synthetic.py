"""A labelled image dataset drawn procedurally, for offline runs, tests and the benchmark.

Ten classes of two-tone textures filling the image (stripes at four angles, checks, dots,
rings, a grid, zigzags, blobs). Everything else is random nuisance that a good representation
should ignore: both grey levels and their tints, phase, period, small angle jitter, pixel
noise. The class is the pattern's geometry, which repeats over the image: exactly what a JEPA
predictor must encode to predict one block from another, so the set is a quick test of whether
pretraining learned anything. Image ``i`` of a
split depends only on ``(seed, split, i)``, so the data are the same on every machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

TEXTURES = (
    "stripes-0",  # horizontal
    "stripes-45",
    "stripes-90",  # vertical
    "stripes-135",
    "checks",
    "dots",
    "rings",
    "grid",
    "zigzag",
    "blobs",
)
CLASSES = TEXTURES
SPLIT_STREAMS = {"train": 0, "test": 1, "unlabeled": 2}


def _texture(name: str, u: np.ndarray, v: np.ndarray, period: float, rng) -> np.ndarray:
    """A 0/1 pattern on coordinates ``u, v`` (pixels) with the given period."""
    if name.startswith("stripes"):
        angle = np.deg2rad(float(name.split("-")[1]) + rng.uniform(-8, 8))
        return (np.cos(angle) * v + np.sin(angle) * u) / period % 1.0 < 0.5
    if name == "checks":
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    if name == "dots":
        du, dv = u / period % 1.0 - 0.5, v / period % 1.0 - 0.5
        return du**2 + dv**2 < 0.09
    if name == "rings":
        cu, cv = rng.uniform(0, u.max(), 2)
        return np.sqrt((u - cu) ** 2 + (v - cv) ** 2) / period % 1.0 < 0.5
    if name == "grid":
        return (u / period % 1.0 < 0.3) | (v / period % 1.0 < 0.3)
    if name == "zigzag":
        return (v + np.abs(u / period % 1.0 - 0.5) * period) / period % 1.0 < 0.5
    if name == "blobs":
        size = u.shape[0]
        coarse = rng.uniform(0, 1, (max(2, int(size / period)),) * 2)
        reps = -(-size // coarse.shape[0])
        return np.kron(coarse, np.ones((reps, reps)))[:size, :size] > 0.5
    raise ValueError(f"unknown texture {name}")


def render_image(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image of class ``label``."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    u, v = u + rng.uniform(0, size), v + rng.uniform(0, size)  # random phase
    period = rng.uniform(0.16, 0.3) * size
    pattern = _texture(TEXTURES[label], u - u.min(), v - v.min(), period, rng)
    # two grey levels at least 0.3 apart, each with a slight random tint
    low = rng.uniform(0.0, 0.5)
    levels = np.array([low, low + rng.uniform(0.3, 0.5)])[rng.permutation(2)]
    first, second = (level + rng.uniform(-0.08, 0.08, 3) for level in levels)
    img = np.where(pattern[..., None], first, second)
    img = img + rng.normal(0, 0.04, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


class SyntheticTextures(Dataset):
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
