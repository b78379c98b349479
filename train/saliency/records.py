"""What every saliency loader yields, whatever the layout on disk.

A loader lists stimuli (``StimulusRef``) cheaply and decodes one ``Sample`` at a
time, so the converter, the verifier and the training dataset share one view of
the data and can be compared item by item.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trajkit.cli import short_path


class LayoutError(ValueError):
    """A folder is not a dataset layout we know, or a file in it is malformed."""


class StimulusFileError(LayoutError):
    """A file the layout lists is missing or cannot be decoded: bad data (exit 1), where an
    unknown layout is a bad argument (exit 2)."""


def regular_file(path: Path) -> Path:
    """``path`` unless something other than a file stands there: a FIFO would block the
    reader for ever, a folder fail with a decoder's message. A missing path passes (its
    reader names it). A path the system refuses to look up (a name too long, no permission)
    is a StimulusFileError too: it was a traceback."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return path
    except OSError as e:
        raise StimulusFileError(f"{short_path(path)} cannot be read ({e.strerror})") from None
    if not path.is_file():
        raise StimulusFileError(f"{short_path(path)} is listed but is not a regular file")
    return path


@dataclass(frozen=True)
class StimulusRef:
    """One stimulus: ``key`` is its path relative to the stimulus folder (``Action/001.jpg``)."""

    key: str
    category: str = ""


@dataclass
class Sample:
    """A decoded stimulus with its fixations.

    ``fixations`` is (N, 2) float64 of (x, y) in pixels, x along the width, origin at
    the top-left pixel (pysaliency's convention). ``fixation_map`` is the shipped
    continuous map (H, W) float64 in [0, 1], or None when the layout has none.
    """

    key: str
    category: str
    image: np.ndarray
    fixations: np.ndarray
    fixation_map: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


class SaliencySource(ABC):
    """Base of the loaders: ``refs`` lists stimuli, ``load(i)`` decodes one."""

    layout: str = ""
    dataset: str = ""

    def __init__(self, root: Path, refs: list[StimulusRef]):
        self.root = Path(root)
        self.refs = refs

    def __len__(self) -> int:
        return len(self.refs)

    @abstractmethod
    def load(self, index: int) -> Sample:
        """Decode stimulus ``index`` with its fixations (and map, where the layout has one)."""

    def categories(self) -> list[str]:
        return sorted({r.category for r in self.refs})

    def describe(self) -> str:
        return f"{self.dataset} in {self.layout} layout at {self.root} ({len(self)} stimuli)"


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Grey stimuli (some MIT1003 images are) become three equal channels."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return image[:, :, :3]
    return image


def points_from_mask(mask: np.ndarray) -> np.ndarray:
    """(x, y) of every nonzero pixel of a boolean mask (a fixPts image above 127, a fixLocs
    matrix): how MIT1003 and CAT2000 store fixations."""
    ys, xs = np.nonzero(mask)
    return np.stack([xs, ys], axis=1).astype(np.float64)
