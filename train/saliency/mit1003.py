"""MIT1003 in its original layout (Judd et al. 2009, "Learning to predict where humans look").

    ALLSTIMULI/<name>.jpeg                 the 1003 stimuli
    ALLFIXATIONMAPS/<name>_fixMap.jpg      continuous fixation maps
    ALLFIXATIONS/<name>_fixPts.jpg         binary fixation-point images
                                           (the download ships them inside ALLFIXATIONMAPS/;
                                           both places are read)

Fixation points are JPEG-compressed binary images, so a pixel counts as a fixation
when it is brighter than half scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from train.saliency.image_files import (
    STIMULUS_SUFFIXES,
    fixation_mask,
    image_sample,
    read_image,
    write_image,
    write_map,
)
from train.saliency.records import (
    LayoutError,
    SaliencySource,
    Sample,
    StimulusRef,
)

STIMULI = "ALLSTIMULI"
MAPS = "ALLFIXATIONMAPS"
POINTS = "ALLFIXATIONS"
WHERE = "http://people.csail.mit.edu/tjudd/WherePeopleLook/ (ALLSTIMULI.zip, ALLFIXATIONMAPS.zip)"


def looks_like(root: Path) -> bool:
    return (root / STIMULI).is_dir()


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    return read_image(path, "L", size) > 127


class Mit1003Images(SaliencySource):
    layout = "images"
    dataset = "MIT1003"

    def __init__(self, root: Path):
        root = Path(root)
        if not looks_like(root):
            raise LayoutError(f"{root}: no {STIMULI}/ folder; expected the MIT1003 layout")
        files = sorted(
            p for p in (root / STIMULI).iterdir() if p.suffix.lower() in STIMULUS_SUFFIXES
        )
        super().__init__(root, [StimulusRef(p.name) for p in files])

    def stimulus_path(self, ref: StimulusRef) -> Path:
        return self.root / STIMULI / ref.key

    def map_path(self, ref: StimulusRef) -> Path | None:
        p = self.root / MAPS / f"{Path(ref.key).stem}_fixMap.jpg"
        # os.path.exists, not Path.exists: a stimulus name near the system's 255 bytes makes
        # this one too long, an OSError (a traceback) where it means no map
        return p if os.path.exists(p) else None  # a FIFO or folder is named by its reader

    def points_path(self, ref: StimulusRef) -> Path | None:
        stem = Path(ref.key).stem
        for folder in (POINTS, MAPS):
            p = self.root / folder / f"{stem}_fixPts.jpg"
            if os.path.exists(p):  # as in map_path
                return p
        return None

    def load(self, index: int) -> Sample:
        ref = self.refs[index]
        return image_sample(
            ref, self.stimulus_path(ref), self.points_path(ref), read_mask, self.map_path(ref)
        )


def write_sample(dst: Path, sample: Sample, fmap: np.ndarray) -> None:
    """Write one MIT1003 stimulus with its map and points; ``fmap`` is used when none shipped."""
    stem = Path(sample.key).stem
    for folder in (STIMULI, MAPS, POINTS):
        (dst / folder).mkdir(parents=True, exist_ok=True)
    write_image(dst / STIMULI / f"{stem}.jpeg", sample)
    write_map(dst / MAPS / f"{stem}_fixMap.jpg", sample, fmap)
    # white fixation pixels on black, at JPEG quality 100 so they survive compression
    Image.fromarray(fixation_mask(sample.fixations, sample.size, 255)).save(
        dst / POINTS / f"{stem}_fixPts.jpg", quality=100, subsampling=0
    )
