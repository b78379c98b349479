"""Image files decoded by PIL alike for every reader: a file that is no readable image raises
one of ``UNREADABLE_IMAGE``, an oversized one too, never PIL's DecompressionBombWarning."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode

UNREADABLE_IMAGE = (
    OSError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
"""What ``open_image`` and a decode inside it raise for a file that is no image it can read."""


@contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """PIL's ``Image.open``, but an image above PIL's pixel limit is an error while the file is
    open (decode it inside): below twice the limit PIL only warns, two lines of its own on
    stderr, and then decodes it whole. So is one of more than 8 bits a sample (a 16-bit PNG,
    a float TIFF): converted to RGB or L, PIL clips it to white or black without a word."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            bits = 8 * np.dtype(ImageMode.getmode(image.mode).typestr).itemsize
            if bits > 8:
                raise ValueError(f"{bits}-bit {image.mode} samples; convert it to 8-bit")
            yield image


def unreadable_reason(error: BaseException) -> str:
    """The first line of a decoder's error (at most 200 characters), for a message naming the
    file: PIL's own messages name an open file object, or no file."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
