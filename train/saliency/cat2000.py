"""CAT2000 in its original layout (Borji & Itti 2015, "CAT2000: a large scale fixation dataset").

    Stimuli/<category>/<n>.jpg          2000 training stimuli in 20 categories
    FIXATIONMAPS/<category>/<n>.jpg     continuous fixation maps
    FIXATIONLOCS/<category>/<n>.mat     binary fixation-location matrix, variable ``fixLocs``

The download unpacks into ``trainSet/``; either that folder or its parent may be
given. ``Output/`` folders (the test set's placeholders) are not stimuli.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from scipy.io import loadmat, savemat, whosmat
from scipy.io.matlab import MatReadError, matfile_version
from scipy.sparse import issparse

from train.saliency.image_files import (
    INFLATE_BLOCK,
    fitted,
    fixation_mask,
    image_sample,
    inflates_past,
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
# The most bytes a fixLocs takes per stimulus pixel, however MATLAB stores it: a complex sparse
# entry (a 4-byte row index and two doubles) takes 20; the headroom holds headers and names.
MAT_BYTES_PER_PIXEL = 24
MAT_HEADROOM = 1 << 16
MAT5_HEADER = 128
MI_COMPRESSED = 15


def find_root(root: Path) -> Path | None:
    """The folder holding ``Stimuli/<category>/``: ``root`` itself or ``root/trainSet``."""
    for cand in (root, root / "trainSet"):
        stim = cand / STIMULI
        if stim.is_dir() and any(p.is_dir() for p in stim.iterdir()):
            return cand
    return None


def looks_like(root: Path) -> bool:
    return find_root(root) is not None


def _compressed_blocks(f: BinaryIO, count: int) -> Iterator[bytes]:
    while count > 0 and (block := f.read(min(count, INFLATE_BLOCK))):
        count -= len(block)
        yield block


def refuse_inflation(path: Path, size: tuple[int, int]) -> None:
    """Refuse a MAT-file any variable of which takes more than a ``fixLocs`` of a stimulus of
    ``size`` can, counted before scipy reads it: scipy inflates a variable whole before any
    check (a 389 KB file of a 1080x1920 fixLocs held 400 MB, one of a sparse one 20 million
    entries), and even whosmat inflates each variable's name. A MAT 4 file holds its data as
    is; a 7.3 one (HDF5) loadmat refuses."""
    limit = MAT_BYTES_PER_PIXEL * size[0] * size[1] + MAT_HEADROOM
    with open(path, "rb") as f:
        if matfile_version(f)[0] != 1:
            return
        f.seek(MAT5_HEADER - 2)
        order = "<" if f.read(2) == b"IM" else ">"
        start = MAT5_HEADER
        f.seek(start)
        while len(tag := f.read(8)) == 8:
            kind, count = struct.unpack(f"{order}II", tag)
            if kind == MI_COMPRESSED:
                too_large = inflates_past(_compressed_blocks(f, count), limit)
            else:
                too_large = count > limit
            if too_large:
                raise StimulusFileError(
                    f"{path}: a variable in it takes more than {limit:,} bytes, more than a "
                    f"'{LOCS_VARIABLE}' of a {size[0]}x{size[1]} stimulus can; the file is "
                    "damaged or forged"
                )
            start += 8 + count
            f.seek(start)


def read_locs(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The ``fixLocs`` mask of a stimulus of ``size``, its size and shape checked before it is
    inflated: an 875 KB file held a 30000x30000 matrix."""
    regular_file(path)
    try:
        refuse_inflation(path, size)
        declared = {name: shape for name, shape, _ in whosmat(path)}
        same_size(declared[LOCS_VARIABLE], path, size)
        locs = loadmat(path, variable_names=[LOCS_VARIABLE])[LOCS_VARIABLE]
    except StimulusFileError:
        raise
    except (
        OSError,
        KeyError,
        ValueError,
        TypeError,
        NotImplementedError,
        MatReadError,
        zlib.error,  # a damaged compressed variable
    ) as err:
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
