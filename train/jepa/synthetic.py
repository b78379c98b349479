"""Labelled image datasets drawn procedurally, for offline runs, tests and the benchmark.

Two kinds (``synthetic_kind`` of a dataset spec), ten classes each:

* ``textures``: two-tone textures filling the image (stripes at four angles, checks, dots,
  rings, a grid, zigzags, blobs). Nuisances: both grey levels and their tints, phase, period,
  small angle jitter, pixel noise.
* ``shapes``: 5-9 dark objects of ONE shape (disc, square, triangle, ring, plus, x, bar,
  frame, diamond, half-disc) on a jittered 3x3 grid over a mid-grey background with
  low-contrast shading and noise. Nuisances: which grid cells hold an object, each object's
  size, offset, small rotation and shade, the shading and the noise. The class is the shape,
  shared by every object of the image, so the visible objects predict what the hidden ones
  look like: what a JEPA predictor must encode.

Why the shapes look like this (measured with short tiny-config runs): an image-wide nuisance (a
background level or tint, the textures' grey levels) is the easiest thing for a JEPA to predict
from any context, and its features then encode that; with vivid random per-object colours
(unpredictable from the context) pretraining did not improve a linear probe at all, with dark
objects it did.

Image ``i`` of a split depends only on ``(seed, split, i)``, so the data are the same on every
machine; labels cycle through the classes so any prefix of a split is balanced.

A dataset draws each image once and keeps it (uint8, ``CACHE_MAX_BYTES`` at most): pretraining
reads every image every epoch, and redrawing them was about a quarter of a shapes run's CPU.
The random augmentations run on every access as before, so the batches are unchanged.
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
SHAPES = (
    "disc",
    "square",
    "triangle",
    "ring",
    "plus",
    "x",
    "bar",
    "frame",
    "diamond",
    "half-disc",
)
CLASSES = TEXTURES  # the default kind's classes
SYNTHETIC_CLASSES = {"textures": TEXTURES, "shapes": SHAPES}
SPLIT_STREAMS = {"train": 0, "test": 1, "unlabeled": 2}
CACHE_MAX_BYTES = 1 << 30  # a larger dataset is redrawn on every access instead of kept
SUPERSAMPLE = 2  # shapes are drawn at 2x and box-filtered down, so small ones keep their outline


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


def render_texture(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 texture image of class ``label``."""
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


render_image = render_texture  # the name older callers import


def _shape(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-mask of a shape of radius 1 centred at 0 on object coordinates ``u, v``."""
    au, av = np.abs(u), np.abs(v)
    if name == "disc":
        return u**2 + v**2 < 1.0
    if name == "square":
        return np.maximum(au, av) < 0.8
    if name == "triangle":  # apex up
        return (v < 0.75) & (au < (v + 1.0) * 0.55)
    if name == "ring":
        r2 = u**2 + v**2
        return (r2 < 1.0) & (r2 > 0.45)
    if name == "plus":
        return ((au < 0.3) & (av < 1.0)) | ((av < 0.3) & (au < 1.0))
    if name == "x":
        return _shape("plus", (u + v) * 0.7071, (v - u) * 0.7071)
    if name == "bar":  # lying
        return (au < 1.0) & (av < 0.3)
    if name == "frame":
        m = np.maximum(au, av)
        return (m < 0.85) & (m > 0.5)
    if name == "diamond":
        return au + av < 1.05
    if name == "half-disc":  # flat side down
        return (u**2 + v**2 < 1.0) & (v < 0.3)
    raise ValueError(f"unknown shape {name}")


def render_shapes(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image: 5-9 objects of shape ``SHAPES[label]``."""
    big = size * SUPERSAMPLE
    v, u = np.mgrid[0:big, 0:big].astype(np.float32) / SUPERSAMPLE
    # Mid-grey background with low-contrast shading that varies across the image but has no
    # image-wide level or tint: an image-wide nuisance is the easiest thing for a JEPA to
    # predict from any context, and its features then encode that instead of the shapes.
    base = 0.5
    coarse = rng.uniform(-0.06, 0.06, (4, 4, 3))
    coarse -= coarse.mean((0, 1))
    img = base + np.kron(coarse, np.ones((big // 4 + 1, big // 4 + 1, 1)))[:big, :big]
    img = img.astype(np.float32)
    # objects on a jittered 3x3 grid (5-9 of its cells used), so most image regions hold
    # part of an object whose shape the other objects give away
    cell = size / 3
    cells = rng.permutation(9)[: int(rng.integers(5, 10))]
    for c in cells:
        radius = rng.uniform(0.34, 0.46) * cell
        slack = cell / 2 - radius
        cu, cv = (np.array([c % 3, c // 3]) + 0.5) * cell + rng.uniform(-slack, slack, 2)
        angle = np.deg2rad(rng.uniform(-15, 15))
        du, dv = (u - cu) / radius, (v - cv) / radius
        ru, rv = np.cos(angle) * du + np.sin(angle) * dv, -np.sin(angle) * du + np.cos(angle) * dv
        inside = _shape(SHAPES[label], ru, rv)
        img[inside] = rng.uniform(0.05, 0.2) + rng.uniform(-0.04, 0.04, 3)  # dark, slight tint
    img = img.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean((1, 3))
    img = img + rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


RENDERERS = {"textures": render_texture, "shapes": render_shapes}


class SyntheticImages(Dataset):
    """``(PIL image, label)`` pairs of one synthetic kind; labels cycle through the classes.

    Each image is drawn on its first access and kept (``cache``; see ``CACHE_MAX_BYTES``).
    DataLoader worker processes get a copy of the dataset, so what a worker draws is lost with
    it: call ``draw_all`` before the workers start so that they inherit every image.
    """

    def __init__(
        self,
        size: int,
        split: str = "train",
        image_size: int = 32,
        seed: int = 0,
        transform=None,  # noqa: ANN001
        kind: str = "textures",
        cache: bool = True,
    ) -> None:
        if split not in SPLIT_STREAMS:
            raise ValueError(f"split must be one of {sorted(SPLIT_STREAMS)}, got {split!r}")
        if kind not in RENDERERS:
            raise ValueError(f"synthetic kind must be one of {sorted(RENDERERS)}, got {kind!r}")
        self.size, self.split, self.image_size, self.seed = size, split, image_size, seed
        self.kind, self.classes = kind, SYNTHETIC_CLASSES[kind]
        self.transform = transform
        self.targets = [i % len(self.classes) for i in range(size)]
        shape = (size, image_size, image_size, 3)
        self._images: np.ndarray | None = None  # allocated on the first draw
        self._drawn = np.zeros(size, dtype=bool)
        self.cached = cache and int(np.prod(shape, dtype=np.int64)) <= CACHE_MAX_BYTES

    def __len__(self) -> int:
        return self.size

    def _draw(self, index: int) -> np.ndarray:
        """Image ``index`` drawn from its own generator: the same whatever was drawn before."""
        rng = np.random.default_rng([self.seed, SPLIT_STREAMS[self.split], index])
        return RENDERERS[self.kind](self.targets[index], rng, self.image_size)

    def image_array(self, index: int) -> np.ndarray:
        """Image ``index`` as a ``(image_size, image_size, 3)`` uint8 array, drawn at most once."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        if not self.cached:
            return self._draw(index)
        if self._images is None:
            self._images = np.empty((self.size, self.image_size, self.image_size, 3), np.uint8)
        if not self._drawn[index]:
            self._images[index] = self._draw(index)
            self._drawn[index] = True
        return self._images[index]

    def draw_all(self) -> None:
        """Draw every image not drawn yet (before DataLoader workers copy the dataset)."""
        if self.cached:
            for index in np.flatnonzero(~self._drawn):
                self.image_array(int(index))

    def __getitem__(self, index: int):  # noqa: ANN204
        image = Image.fromarray(self.image_array(index))
        label = self.targets[index]
        return (self.transform(image) if self.transform else image), label


class SyntheticTextures(SyntheticImages):
    """The ``textures`` kind (the default)."""

    classes = TEXTURES

    def __init__(
        self, size: int, split: str = "train", image_size: int = 32, seed: int = 0, transform=None
    ) -> None:  # noqa: ANN001
        super().__init__(size, split, image_size, seed, transform, kind="textures")


class SyntheticShapes(SyntheticImages):
    """The ``shapes`` kind."""

    classes = SHAPES

    def __init__(
        self, size: int, split: str = "train", image_size: int = 32, seed: int = 0, transform=None
    ) -> None:  # noqa: ANN001
        super().__init__(size, split, image_size, seed, transform, kind="shapes")
