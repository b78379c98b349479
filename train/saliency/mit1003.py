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

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from train.saliency.records import (
    LayoutError,
    SaliencySource,
    Sample,
    StimulusRef,
    as_rgb,
    points_from_mask,
)

STIMULI = "ALLSTIMULI"
MAPS = "ALLFIXATIONMAPS"
POINTS = "ALLFIXATIONS"
STIMULUS_SUFFIXES = (".jpeg", ".jpg")
WHERE = "http://people.csail.mit.edu/tjudd/WherePeopleLook/ (ALLSTIMULI.zip, ALLFIXATIONMAPS.zip)"


def looks_like(root: Path) -> bool:
    return (root / STIMULI).is_dir()


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) > 127


def read_map(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0


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
        return p if p.is_file() else None

    def points_path(self, ref: StimulusRef) -> Path | None:
        stem = Path(ref.key).stem
        for folder in (POINTS, MAPS):
            p = self.root / folder / f"{stem}_fixPts.jpg"
            if p.is_file():
                return p
        return None

    def load(self, index: int) -> Sample:
        ref = self.refs[index]
        path = self.stimulus_path(ref)
        image = as_rgb(np.asarray(Image.open(path).convert("RGB")))
        pts_path, map_path = self.points_path(ref), self.map_path(ref)
        fixations = points_from_mask(read_mask(pts_path)) if pts_path else np.zeros((0, 2))
        fmap = read_map(map_path) if map_path else None
        return Sample(
            ref.key,
            ref.category,
            image,
            fixations,
            fmap,
            extra={"stimulus_file": path, "map_file": map_path},
        )


def write_points_image(path: Path, fixations: np.ndarray, size: tuple[int, int]) -> None:
    """Fixations become white pixels on black, saved at JPEG quality 100 so they survive."""
    mask = np.zeros(size, dtype=np.uint8)
    xs = np.clip(np.rint(fixations[:, 0]).astype(int), 0, size[1] - 1)
    ys = np.clip(np.rint(fixations[:, 1]).astype(int), 0, size[0] - 1)
    mask[ys, xs] = 255
    Image.fromarray(mask).save(path, quality=100, subsampling=0)


def write_map_image(path: Path, fmap: np.ndarray) -> None:
    peak = float(fmap.max()) or 1.0
    Image.fromarray(np.rint(255 * fmap / peak).astype(np.uint8)).save(path, quality=100)


def write_image(path: Path, sample: Sample) -> None:
    """Copy the source file when it is already a JPEG (bit-exact), else encode one."""
    src = sample.extra.get("stimulus_file")
    if src is not None and Path(src).suffix.lower() in STIMULUS_SUFFIXES:
        shutil.copyfile(src, path)
    else:
        Image.fromarray(sample.image).save(path, quality=95)


def write_sample(dst: Path, sample: Sample, fmap: np.ndarray) -> None:
    """Write one MIT1003 stimulus with its map and points; ``fmap`` is used when none shipped."""
    stem = Path(sample.key).stem
    for folder in (STIMULI, MAPS, POINTS):
        (dst / folder).mkdir(parents=True, exist_ok=True)
    write_image(dst / STIMULI / f"{stem}.jpeg", sample)
    map_src = sample.extra.get("map_file")
    if map_src is not None and Path(map_src).suffix.lower() == ".jpg":
        shutil.copyfile(map_src, dst / MAPS / f"{stem}_fixMap.jpg")
    else:
        write_map_image(dst / MAPS / f"{stem}_fixMap.jpg", fmap)
    write_points_image(dst / POINTS / f"{stem}_fixPts.jpg", sample.fixations, sample.size)
