"""What the two image layouts (MIT1003's and CAT2000's folders of JPEGs) read and write alike."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from train.saliency.records import (
    Sample,
    StimulusFileError,
    StimulusRef,
    as_rgb,
    points_from_mask,
    regular_file,
)
from trajkit.cli import short_path
from trajkit.images import UNREADABLE_IMAGE, open_image, unreadable_reason

STIMULUS_SUFFIXES = (".jpeg", ".jpg")
INFLATE_BLOCK = 1 << 16


def read_image(path: Path, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file into ``mode`` (PIL's "RGB", "L"); a missing, empty, damaged or
    oversized file is a one-line StimulusFileError naming it, not PIL's traceback (nor its
    DecompressionBombWarning, two lines of its own before the error). So is one of more than
    8 bits a sample (16-bit PNG, float TIFF): PIL's conversion clips it to white or black.
    A map or mask of a stimulus of ``size`` is checked by its header before it is decoded: a
    1 MB JPEG map of 9400x9400 took 837 MB before its size was refused."""
    regular_file(path)
    try:
        with open_image(path) as image:
            if size is not None:
                same_size((image.height, image.width), path, size)
            return np.asarray(image.convert(mode))
    except StimulusFileError:  # a ValueError, as PIL's own errors are
        raise
    except FileNotFoundError:
        # quoted short, as every path here: a pysaliency file may name one of 4 KB
        raise StimulusFileError(f"{short_path(path)} is listed but missing on disk") from None
    except UNREADABLE_IMAGE as e:
        reason = unreadable_reason(e)
        raise StimulusFileError(
            f"{short_path(path)} cannot be read as an image ({reason})"
        ) from None


def read_map(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The fixation map of a stimulus of ``size``, in [0, 1]."""
    return read_image(path, "L", size).astype(np.float64) / 255.0


def inflates_past(compressed: Iterable[bytes], limit: int) -> bool:
    """Whether a zlib stream, given in blocks, inflates to more than ``limit`` bytes: counted a
    block at a time and never held, so a file is refused before a reader inflates it whole (a
    389 KB MAT-file inflated to 400 MB). A stream that ends early is counted as far as it goes,
    as scipy reads it; a damaged one raises zlib.error."""
    inflate = zlib.decompressobj()
    size = 0
    for block in compressed:
        while block and not inflate.eof:
            size += len(inflate.decompress(block, INFLATE_BLOCK))
            if size > limit:
                return True
            block = inflate.unconsumed_tail
    return False


def image_sample(
    ref: StimulusRef,
    stimulus: Path,
    points: Path | None,
    read_points: Callable[[Path, tuple[int, int]], np.ndarray],
    map_path: Path | None,
) -> Sample:
    """A ``Sample`` from a stimulus file, its fixation-point mask (``points``, decoded by
    ``read_points`` for the stimulus's size) and its map file, each if shipped."""
    image = as_rgb(read_image(stimulus, "RGB"))
    size = image.shape[:2]
    mask = read_points(points, size) if points else None
    return Sample(
        ref.key,
        ref.category,
        image,
        np.zeros((0, 2)) if mask is None else points_from_mask(mask),
        read_map(map_path, size) if map_path else None,
        extra={"stimulus_file": stimulus, "map_file": map_path},
    )


def fitted(array: np.ndarray, path: Path, size: tuple[int, int]) -> np.ndarray:
    """``array``, read from ``path``, if it is a (H, W) map of a stimulus of ``size``; one of
    another shape is a damaged file: its fixations would land elsewhere in the image."""
    same_size(array.shape, path, size)
    return array


def same_size(shape: tuple[int, ...], path: Path, size: tuple[int, int]) -> None:
    """Refuse ``path`` unless ``shape``, read or declared, is ``size``."""
    if tuple(shape) != tuple(size):
        raise StimulusFileError(
            f"{short_path(path)} is {'x'.join(map(str, shape))} but its stimulus is "
            f"{size[0]}x{size[1]}; a fixation map must match its stimulus's size"
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
