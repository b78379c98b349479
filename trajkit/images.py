"""Image files decoded by PIL alike for every reader: a file that is no readable image raises
one of ``UNREADABLE_IMAGE``, an oversized one too, never PIL's DecompressionBombWarning."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

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
    stderr, and then decodes it whole."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            yield image


def unreadable_reason(error: BaseException) -> str:
    """The first line of a decoder's error (at most 200 characters), for a message naming the
    file: PIL's own messages name an open file object, or no file."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
