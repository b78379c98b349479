"""Pretraining on several datasets at once, and the sampler that decides how often each is seen.

Strategies (each epoch draws ``samples_per_epoch`` indices, default the summed dataset sizes):

* ``concat``: every image of every dataset once per epoch, shuffled (sizes decide the mix).
* ``weighted``: i.i.d. draws with replacement, each sample weighted ``w_d / n_d``, so dataset
  ``d`` gets a share ``w_d / sum(w)`` of the draws whatever its size.
* ``balanced``: the same number of draws from every dataset (without replacement while a
  dataset has enough images), shuffled together.

Indices depend only on ``(seed, epoch)``; under DDP each rank takes every ``world``-th one.
The dataset returns ``(image, dataset_id)`` so the trainer counts what was actually consumed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler


class MixtureDataset(Dataset):
    """Concatenation that yields ``(image, dataset_id)`` and drops the datasets' labels."""

    def __init__(self, datasets: Sequence[Dataset], names: Sequence[str]) -> None:
        self.datasets, self.names = list(datasets), list(names)
        self.sizes = [len(d) for d in self.datasets]
        self.offsets = [0]
        for n in self.sizes:
            self.offsets.append(self.offsets[-1] + n)

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        d = bisect.bisect_right(self.offsets, index) - 1
        return d, index - self.offsets[d]

    def __getitem__(self, index: int):  # noqa: ANN204
        d, local = self.locate(index)
        item = self.datasets[d][local]
        image = item[0] if isinstance(item, tuple | list) else item
        return image, d


def draw_indices(
    sizes: Sequence[int],
    weights: Sequence[float],
    strategy: str,
    num_samples: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Global indices (into the concatenation) for one epoch."""
    offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
    if strategy == "concat":
        order = torch.randperm(sum(sizes), generator=generator)
        reps = -(-num_samples // sum(sizes))
        if reps > 1:
            order = torch.cat(
                [torch.randperm(sum(sizes), generator=generator) for _ in range(reps)]
            )
        return order[:num_samples]
    if strategy == "weighted":
        per_sample = torch.cat(
            [
                torch.full((n,), w / n, dtype=torch.float64)
                for n, w in zip(sizes, weights, strict=True)
            ]
        )
        return torch.multinomial(per_sample, num_samples, replacement=True, generator=generator)
    if strategy == "balanced":
        k = len(sizes)
        quotas = [num_samples // k + (1 if i < num_samples % k else 0) for i in range(k)]
        parts = []
        for n, offset, quota in zip(sizes, offsets.tolist(), quotas, strict=True):
            full = [torch.randperm(n, generator=generator) for _ in range(-(-quota // n))]
            parts.append(torch.cat(full)[:quota] + offset)
        merged = torch.cat(parts)
        return merged[torch.randperm(len(merged), generator=generator)]
    raise ValueError(f"unknown sampling strategy {strategy!r}")


class MixtureSampler(Sampler[int]):
    """Epoch-seeded sampler over a :class:`MixtureDataset`, sharded across DDP ranks."""

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        strategy: str,
        num_samples: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.sizes, self.weights, self.strategy = list(sizes), list(weights), strategy
        self.num_samples = num_samples or sum(sizes)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        idx = draw_indices(self.sizes, self.weights, self.strategy, self.num_samples, g)
        per_rank = len(idx) // self.world_size
        return idx[self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples // self.world_size
