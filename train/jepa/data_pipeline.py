"""From a config to batches: datasets -> mixture -> sampler -> mask collator -> DataLoader."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from train.jepa.config import JepaConfig
from train.jepa.datasets import build_dataset
from train.jepa.masks import MultiBlockMaskCollator
from train.jepa.mixture import MixtureDataset, MixtureSampler
from train.jepa.transforms import pretrain_transform
from trajkit.cli import leave_stops_to_main_process
from trajkit.dataloader import DataLoader


def dataset_names(cfg: JepaConfig) -> list[str]:
    """One name per configured dataset (kind, suffixed when a kind repeats)."""
    names: list[str] = []
    for spec in cfg.data.datasets:
        name, n = spec.kind, 2
        while name in names:
            name, n = f"{spec.kind}_{n}", n + 1
        names.append(name)
    return names


def build_pretrain_data(
    cfg: JepaConfig, rank: int = 0, world_size: int = 1
) -> tuple[MixtureDataset, MixtureSampler, MultiBlockMaskCollator]:
    transform = pretrain_transform(cfg.data)
    parts = [
        build_dataset(
            spec, cfg.data.data_path, "pretrain", transform, cfg.data.image_size, cfg.run.seed
        )
        for spec in cfg.data.datasets
    ]
    mixture = MixtureDataset(parts, dataset_names(cfg))
    sampler = MixtureSampler(
        mixture.sizes,
        [spec.weight for spec in cfg.data.datasets],
        cfg.data.sampling,
        cfg.data.samples_per_epoch,
        seed=cfg.run.seed,
        rank=rank,
        world_size=world_size,
    )
    collator = MultiBlockMaskCollator.from_config(cfg.mask, cfg.grid_size)
    return mixture, sampler, collator


class PlacedSampler(Sampler):
    """The sampler's indices as ``(place in the epoch, index)``, the key :class:`SeededDraws`
    seeds a sample's draws from."""

    def __init__(self, sampler: MixtureSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return enumerate(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class SeededDraws(Dataset):
    """The mixture with torch's CPU RNG seeded from ``(seed, epoch, rank, place)`` before each
    sample, in whichever process loads it: its random crop, and the batch's masks (drawn next,
    in the same process), are the same for 0, 1 or 8 workers. Workers seeded by torch each drew
    from their own stream, so the worker count changed the run, and a ``--resume`` with another
    count gave other weights."""

    def __init__(self, mixture: MixtureDataset, epoch_seed: int) -> None:
        self.mixture, self.epoch_seed = mixture, epoch_seed

    def __len__(self) -> int:
        return len(self.mixture)

    def __getitem__(self, key: tuple[int, int]):  # noqa: ANN204
        place, index = key
        torch.default_generator.manual_seed((self.epoch_seed * 1_000_000_007 + place) % 2**64)
        return self.mixture[index]


def epoch_loader(
    cfg: JepaConfig,
    mixture: MixtureDataset,
    sampler: MixtureSampler,
    collator: MultiBlockMaskCollator,
    epoch: int,
    rank: int = 0,
) -> DataLoader:
    """A fresh loader per epoch whose draws depend only on ``(seed, epoch, rank)``.

    Together with the epoch-seeded sampler this makes every epoch reproducible, which is what
    lets ``--resume`` continue exactly, with any ``data.num_workers``. Worker processes live one
    epoch and draw into their own copy of a dataset, so datasets that keep drawn images
    (``draw_all``) draw them all first, here, for the workers to inherit; without workers they
    draw lazily in this process.
    """
    if cfg.data.num_workers > 0:
        for part in mixture.datasets:
            if hasattr(part, "draw_all"):
                part.draw_all()
    sampler.set_epoch(epoch)
    return DataLoader(
        SeededDraws(mixture, (cfg.run.seed * 7919 + epoch) * 131 + rank),
        batch_size=cfg.optim.batch_size,
        sampler=PlacedSampler(sampler),
        collate_fn=collator,
        num_workers=cfg.data.num_workers,
        drop_last=True,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        worker_init_fn=leave_stops_to_main_process,  # a stop is the main process's to handle
    )
