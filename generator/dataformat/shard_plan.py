"""Which shards a chunk needs, and which of them a crashed run already left whole.

A chunk [start, end) is cut into shards of ``shard_size`` samples from its
own start, so every shard lies inside one chunk and one manifest vouches for
it. Shards after the last manifest are kept only if ``check_shard`` finds
exactly the planned samples, each label vouching for its video; anything
else in the chunk's range (a shard cut differently by an earlier run, or
stored with the other compression) goes.
"""

from __future__ import annotations

from joblib import Parallel, delayed

from generator.dataformat.layout import SHARD_SUFFIXES, Layout, written_number
from generator.dataformat.shards import check_shard
from generator.dataformat.sources import DatasetError, regular_size


def shard_ranges(start: int, end: int, shard_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + shard_size, end)) for s in range(start, end, shard_size)]


def shard_start(name: str) -> int | None:
    """The first sample of ``shard_<start>.tar.zst`` or ``shard_<start>.tar``, or None for another name."""
    for suffix in SHARD_SUFFIXES.values():
        digits = name.removeprefix("shard_").removesuffix(suffix)
        if name.startswith("shard_") and name.endswith(suffix):
            return written_number(digits)
    return None


def remove_shards_from(layout: Layout, first: int) -> None:
    """Delete shard files starting at sample ``first`` or later (no manifest can vouch for them)."""
    for p in layout.shards.glob("shard_*"):
        start = shard_start(p.name)
        if start is not None and start >= first:
            p.unlink(missing_ok=True)


def pending_shards(
    layout: Layout, start: int, end: int, shard_size: int, workers: int, compression: str = "zstd"
) -> tuple[list[dict], list[tuple[int, int]]]:
    """Whole shards found on disk (as ``check_shard`` returns them) and the ranges still to render."""
    planned = shard_ranges(start, end, shard_size)
    names = {layout.shard(s, compression).name for s, _ in planned}
    for p in layout.shards.glob("shard_*"):
        first = shard_start(p.name)
        if first is not None and start <= first < end and p.name not in names:
            p.unlink(missing_ok=True)

    def check(s: int, e: int) -> dict | None:
        path = layout.shard(s, compression)
        try:  # only a regular file is read: a FIFO would hang the check
            regular_size(path, layout.root)
        except DatasetError:
            return None
        return check_shard(path, list(range(s, e)), layout.stem)

    # no mutate: threads or processes, any count: the same results
    with Parallel(n_jobs=workers, prefer="threads") as parallel:  # pragma: no mutate
        found = parallel(delayed(check)(s, e) for s, e in planned)
    kept = [f for f in found if f is not None]
    todo = [r for r, f in zip(planned, found, strict=True) if f is None]
    return kept, todo
