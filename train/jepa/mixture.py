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

INDEX_CHUNK = 1 << 16


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

    def named_sizes(self) -> dict[str, int]:
        """Each dataset's image count by its name, as ``last.pt`` records it for ``--resume``."""
        return dict(zip(self.names, self.sizes, strict=True))

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
        total = sum(sizes)
        return permutations(total, -(-num_samples // total), generator)[:num_samples]
    if strategy == "weighted":
        per_sample = torch.cat(
            [
                torch.full((n,), share / n, dtype=torch.float64)
                for n, share in zip(sizes, shares(weights).tolist(), strict=True)
            ]
        )
        return torch.multinomial(per_sample, num_samples, replacement=True, generator=generator)
    if strategy == "balanced":
        k = len(sizes)
        quotas = [num_samples // k + (1 if i < num_samples % k else 0) for i in range(k)]
        parts = [
            permutations(n, -(-quota // n), generator)[:quota] + offset
            for n, offset, quota in zip(sizes, offsets.tolist(), quotas, strict=True)
        ]
        merged = torch.cat(parts)
        return merged[torch.randperm(len(merged), generator=generator)]
    raise ValueError(f"unknown sampling strategy {strategy!r}")


def shares(weights: Sequence[float]) -> torch.Tensor:
    """``w / sum(w)`` for any positive finite weights: scaled by the largest first, since the
    sum of two weights of 1e308 is inf (a share of 0 for one) and 5e-324 / n is 0 (no share)."""
    w = torch.tensor(weights, dtype=torch.float64)
    w = w / w.max()
    return w / w.sum()


def permutations(n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random permutations of ``range(n)``, one after another. One ``randperm`` each
    is a Python list of ``count`` tensors: 32 s and 6 GB for ten million permutations of one
    image, where sorting ``count x n`` random numbers is one tensor."""
    if count == 1:
        return torch.randperm(n, generator=generator)
    return torch.rand(count, n, dtype=torch.float64, generator=generator).argsort(dim=1).flatten()


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
        """Python ints a chunk at a time: a list of all of them is 40 bytes an index more."""
        for chunk in self.indices().split(INDEX_CHUNK):
            yield from chunk.tolist()

    def __len__(self) -> int:
        return self.num_samples // self.world_size
