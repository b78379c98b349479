"""CAT2000 in its original layout (Borji & Itti 2015, "CAT2000: a large scale fixation dataset").

    Stimuli/<category>/<n>.jpg          2000 training stimuli in 20 categories
    FIXATIONMAPS/<category>/<n>.jpg     continuous fixation maps
    FIXATIONLOCS/<category>/<n>.mat     binary fixation-location matrix, variable ``fixLocs``

The download unpacks into ``trainSet/``; either that folder or its parent may be
given. ``Output/`` folders (the test set's placeholders) are not stimuli.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat, savemat, whosmat
from scipy.io.matlab import MatReadError
from scipy.sparse import issparse

from train.saliency.image_files import (
    fitted,
    fixation_mask,
    image_sample,
    same_size,
    write_image,
    write_map,
)
from train.saliency.records import (
    LayoutError,
    SaliencySource,
    Sample,
    StimulusFileError,
    StimulusRef,
    regular_file,
)
from trajkit.cli import first_line

STIMULI = "Stimuli"
MAPS = "FIXATIONMAPS"
LOCS = "FIXATIONLOCS"
LOCS_VARIABLE = "fixLocs"
WHERE = "http://saliency.mit.edu/trainSet.zip (CAT2000 training set)"
# What loadmat makes of a MATLAB value that is no real matrix, by numpy's dtype kind.
MATLAB_KINDS = {"O": "a cell array", "V": "a struct array", "U": "text", "c": "complex numbers"}


def find_root(root: Path) -> Path | None:
    """The folder holding ``Stimuli/<category>/``: ``root`` itself or ``root/trainSet``."""
    for cand in (root, root / "trainSet"):
        stim = cand / STIMULI
        if stim.is_dir() and any(p.is_dir() for p in stim.iterdir()):
            return cand
    return None


def looks_like(root: Path) -> bool:
    return find_root(root) is not None


def read_locs(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The ``fixLocs`` mask of a stimulus of ``size``, its shape checked before it is
    inflated: an 875 KB file held a 30000x30000 matrix."""
    regular_file(path)
    try:
        declared = {name: shape for name, shape, _ in whosmat(path)}
        same_size(declared[LOCS_VARIABLE], path, size)
        locs = loadmat(path, variable_names=[LOCS_VARIABLE])[LOCS_VARIABLE]
    except StimulusFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, NotImplementedError, MatReadError) as err:
        raise StimulusFileError(
            f"{path}: not a MATLAB file with a '{LOCS_VARIABLE}' matrix ({first_line(err)})"
        ) from None
    except MemoryError:
        raise StimulusFileError(f"{path}: too large to read into memory") from None
    if issparse(locs):  # MATLAB's sparse(): a few fixations among a million zeros
        locs = locs.toarray()  # its declared shape, the stimulus's, was checked above
    if locs.dtype.kind not in "biuf":
        raise StimulusFileError(
            f"{path}: '{LOCS_VARIABLE}' holds {MATLAB_KINDS.get(locs.dtype.kind, locs.dtype)}, "
            "not a matrix of real numbers"
        )
    return fitted(locs > 0, path, size)


class Cat2000Images(SaliencySource):
    layout = "images"
    dataset = "CAT2000"

    def __init__(self, root: Path):
        base = find_root(Path(root))
        if base is None:
            raise LayoutError(
                f"{root}: no {STIMULI}/<category>/ folders; expected the CAT2000 layout"
            )
        refs = []
        for cat in sorted(p for p in (base / STIMULI).iterdir() if p.is_dir()):
            if cat.name.lower() == "output":
                continue
            for f in sorted(cat.iterdir()):
                if f.is_file() and f.suffix.lower() in (".jpg", ".jpeg"):
                    refs.append(StimulusRef(f"{cat.name}/{f.name}", cat.name))
        super().__init__(base, refs)

    def map_path(self, ref: StimulusRef) -> Path | None:
        p = self.root / MAPS / ref.key
        return p if p.exists() else None  # a FIFO or folder there is named by its reader

    def locs_path(self, ref: StimulusRef) -> Path | None:
        p = (self.root / LOCS / ref.key).with_suffix(".mat")
        return p if p.exists() else None

    def load(self, index: int) -> Sample:
        ref = self.refs[index]
        return image_sample(
            ref, self.root / STIMULI / ref.key, self.locs_path(ref), read_locs, self.map_path(ref)
        )


def write_sample(dst: Path, sample: Sample, fmap: np.ndarray) -> None:
    """Write one CAT2000 stimulus with its map and fixation locations."""
    key = Path(sample.key)
    if len(key.parts) < 2:
        key = Path(sample.category or "Uncategorised") / key.name
    key = key.with_suffix(".jpg")
    for folder in (STIMULI, MAPS, LOCS):
        (dst / folder / key.parent).mkdir(parents=True, exist_ok=True)
    write_image(dst / STIMULI / key, sample)
    write_map(dst / MAPS / key, sample, fmap)
    savemat(
        dst / LOCS / key.with_suffix(".mat"),
        {LOCS_VARIABLE: fixation_mask(sample.fixations, sample.size, 1)},
    )
