"""Which layout a folder holds, and the loader for it.

The pysaliency files are checked first: pysaliency's CAT2000 export keeps its
``Stimuli/<category>/`` folder beside ``stimuli.hdf5``, so that folder alone would
otherwise be mistaken for the original layout.
"""

from __future__ import annotations

from pathlib import Path

from train.saliency import cat2000, mit1003, pysaliency_hdf5
from train.saliency.records import LayoutError, SaliencySource
from trajkit.cli import first_line

EXPECTED = (
    "expected MIT1003 (ALLSTIMULI/*.jpeg), CAT2000 (Stimuli/<category>/*.jpg, or trainSet/ "
    "holding it) or pysaliency HDF5 (stimuli.hdf5 + fixations.hdf5)"
)


def detect_layout(root: str | Path) -> str:
    """Return ``"hdf5"``, ``"mit1003-images"`` or ``"cat2000-images"``; raise LayoutError."""
    root = Path(root)
    if not root.is_dir():
        problem = "not a folder" if root.exists() else "no such folder"
        raise LayoutError(f"{root}: {problem}; {EXPECTED}")
    if pysaliency_hdf5.looks_like(root):
        return "hdf5"
    if mit1003.looks_like(root):
        return "mit1003-images"
    if cat2000.looks_like(root):
        return "cat2000-images"
    raise LayoutError(f"{root}: not a saliency dataset; {EXPECTED}")


def open_source(root: str | Path) -> SaliencySource:
    """Open ``root`` in whichever layout it holds."""
    layout = detect_layout(root)
    if layout == "hdf5":
        return pysaliency_hdf5.PysaliencyHdf5(Path(root))
    if layout == "mit1003-images":
        return mit1003.Mit1003Images(Path(root))
    return cat2000.Cat2000Images(Path(root))


def where_to_get(dataset: str) -> str:
    return {"MIT1003": mit1003.WHERE, "CAT2000": cat2000.WHERE}.get(dataset, pysaliency_hdf5.WHERE)


def out_of_memory_reading(root: str | Path, error: MemoryError) -> str:
    """The line for a file too large for this machine that no shape check caught."""
    detail = f" ({error})" if str(error) else ""
    return first_line(
        f"error: out of memory reading {root}: a file too large for this machine{detail}"
    )
