"""A DataLoader whose workers write batches into recycled shared memory, for ``TrajectoryDataset``
(or any dataset whose items are dicts with a ``video`` of ``item_shape`` and ``item_dtype``).

A DataLoader worker collates every batch into *fresh* shared memory, and the
kernel must zero each new page before the copy: on the 2-core benchmark
machine that first touch cost 0.65 ms of the ~1.7 ms a worker spends per
four-camera clip, and ``bench_dataset.py`` ran at ~1,000 samples/s. Here each
worker owns a few batch-sized slots of one shared buffer, allocated once, and
writes batch after batch into them in turn; the main process receives a view
of the slot, not a copy. The same measurement gives ~2,000 samples/s.

The price is the one FFCV and DALI ask for: a batch is overwritten when its
slot comes round again. The slots are counted so that a batch stays intact
until the loop has taken two more batches (so the previous batch can still be
in use while the next one is processed), or until a new pass over the loader
starts after one left unfinished; keep a batch longer with ``.clone()``.
The workers live as long as the loader (``persistent_workers``), so one
generation of workers counts through the slots; a loader made for one pass
(``persistent_workers=False``, e.g. one loader per epoch, each with its own
slots and its own worker seeds) refuses a second pass, whose new workers
would start counting again while the first pass's may still be writing.
With ``pin_memory=True`` the loader copies each batch into pinned memory as it
arrives, so the batches it yields are never overwritten.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from trajkit.cli import leave_stops_to_main_process
from trajkit.dataloader import DataLoader

SLOTS_BEYOND_PREFETCH = 2
"""Slots per worker over its ``prefetch_factor`` batches in flight: the batch the loop holds and the one before."""


class RecyclingCollate:
    """``collate_fn`` that stacks the videos into the worker's next slot and collates the rest as usual.

    Why it is safe: a DataLoader with ``in_order=True`` gives each worker every
    ``num_workers``-th batch and at most ``prefetch_factor`` tasks ahead of the
    batch it last handed to the loop. So with ``prefetch_factor + 2`` slots a
    worker refills the slot of batch ``j`` only once the loop has received its
    batch ``j + 2``, that is two batches later at the earliest.
    """

    def __init__(
        self,
        item_shape: tuple[int, ...],
        dtype: torch.dtype,
        batch_size: int,
        workers: int,
        slots: int,
    ) -> None:
        self.slots_per_worker = slots
        self.slots = torch.empty(max(1, workers), slots, batch_size, *item_shape, dtype=dtype)
        if workers:
            self.slots.share_memory_()
        self.turn = 0  # each worker process counts in its own copy

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        slot = self.slots[worker, self.turn % self.slots_per_worker]
        self.turn += 1
        video = slot[: len(items)]
        torch.stack([item["video"] for item in items], out=video)
        batch = default_collate([{k: v for k, v in item.items() if k != "video"} for item in items])
        batch["video"] = video
        return batch


class OnePassLoader(DataLoader):
    """A recycling loader without persistent workers: its slots serve one pass only."""

    _passes = 0

    def __iter__(self):
        if self._passes:
            raise RuntimeError(
                "a make_loader(persistent_workers=False) loader serves one pass: make a new "
                "loader (with its own slots) for the next"
            )
        self._passes += 1
        return super().__iter__()


def batch_size_for(dataset: Dataset, sampler: Any, batch_size: int) -> int:
    """``batch_size``, but at most the items one pass gives: no batch holds more, so the slots
    are sized by them, and torch's batch sampler refuses a size past ``sys.maxsize`` (it was
    a traceback in the trainers)."""
    try:
        items = len(dataset if sampler is None else sampler)
    except TypeError:  # an IterableDataset, whose length is unknown: left to torch
        return batch_size
    return max(1, min(batch_size, items))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    num_workers: int = 2,
    prefetch_factor: int = 2,
    recycle: bool = True,
    persistent_workers: bool | None = None,
    **options: Any,
) -> DataLoader:
    """A ``DataLoader`` over ``dataset``; with ``recycle`` its videos come from recycled slots (see above).

    ``options`` go to ``DataLoader`` (``shuffle``, ``sampler``, ``drop_last``,
    ``pin_memory``, ``generator``, ...). Recycling keeps the workers alive
    between epochs (``persistent_workers``) so two generations of workers never
    share the slots; with ``persistent_workers=False`` the loader serves one pass.
    Without ``recycle``, ``persistent_workers`` is ``DataLoader``'s (default False).
    A ``batch_size`` beyond the items one pass gives is one batch of them all, which
    ``drop_last`` keeps.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch_size = batch_size_for(dataset, options.get("sampler"), batch_size)
    options.setdefault("worker_init_fn", leave_stops_to_main_process)  # the main process stops them
    extra: dict[str, Any] = {"prefetch_factor": prefetch_factor} if num_workers else {}
    loader = DataLoader
    if recycle:
        for name in ("collate_fn", "in_order", "batch_sampler"):
            if name in options:
                raise ValueError(f"make_loader(recycle=True) sets {name} itself")
        slots = (prefetch_factor if num_workers else 0) + SLOTS_BEYOND_PREFETCH
        extra["collate_fn"] = RecyclingCollate(
            tuple(dataset.item_shape), dataset.item_dtype, batch_size, num_workers, slots
        )
        if num_workers:
            persistent = persistent_workers is not False
            extra.update(persistent_workers=persistent, in_order=True)
            if not persistent:
                loader = OnePassLoader
    elif persistent_workers is not None:
        extra["persistent_workers"] = persistent_workers
    return loader(dataset, batch_size=batch_size, num_workers=num_workers, **extra, **options)
