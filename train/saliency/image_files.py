"""What the two image layouts (MIT1003's and CAT2000's folders of JPEGs) read and write alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from train.saliency.records import Sample, StimulusFileError, StimulusRef, as_rgb, regular_file

STIMULUS_SUFFIXES = (".jpeg", ".jpg")


def read_image(path: Path, mode: str) -> np.ndarray:
    """Decode an image file into ``mode`` (PIL's "RGB", "L"); a missing, empty or damaged file
    is a one-line StimulusFileError naming it, not PIL's traceback."""
    regular_file(path)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except FileNotFoundError:
        raise StimulusFileError(f"{path} is listed but missing on disk") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise StimulusFileError(f"{path} cannot be read as an image ({detail})") from None


def read_map(path: Path) -> np.ndarray:
    return read_image(path, "L").astype(np.float64) / 255.0


def image_sample(
    ref: StimulusRef, stimulus: Path, fixations: np.ndarray, map_path: Path | None
) -> Sample:
    """A ``Sample`` from a stimulus file, its fixations and its map file (if shipped)."""
    image = as_rgb(read_image(stimulus, "RGB"))
    return Sample(
        ref.key,
        ref.category,
        image,
        fixations,
        read_map(map_path) if map_path else None,
        extra={"stimulus_file": stimulus, "map_file": map_path},
    )


def fixation_mask(fixations: np.ndarray, size: tuple[int, int], on: int) -> np.ndarray:
    """``on`` at each fixation's pixel (rounded, clipped into the image), 0 elsewhere."""
    mask = np.zeros(size, dtype=np.uint8)
    if len(fixations):
        xs = np.clip(np.rint(fixations[:, 0]).astype(int), 0, size[1] - 1)
        ys = np.clip(np.rint(fixations[:, 1]).astype(int), 0, size[0] - 1)
        mask[ys, xs] = on
    return mask


def write_image(path: Path, sample: Sample) -> None:
    """Copy the source file when it is already a JPEG (bit-exact), else encode one."""
    src = sample.extra.get("stimulus_file")
    if src is not None and Path(src).suffix.lower() in STIMULUS_SUFFIXES:
        shutil.copyfile(src, path)
    else:
        Image.fromarray(sample.image).save(path, quality=95)


def write_map(path: Path, sample: Sample, fmap: np.ndarray) -> None:
    """Copy the shipped JPEG map (bit-exact), else encode ``fmap`` scaled to its peak."""
    src = sample.extra.get("map_file")
    if src is not None and Path(src).suffix.lower() == ".jpg":
        shutil.copyfile(src, path)
        return
    peak = float(fmap.max()) or 1.0
    Image.fromarray(np.rint(255 * fmap / peak).astype(np.uint8)).save(path, quality=100)
