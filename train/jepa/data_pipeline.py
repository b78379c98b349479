"""From a config to batches: datasets -> mixture -> sampler -> mask collator -> DataLoader."""

from __future__ import annotations

import torch

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


def epoch_loader(
    cfg: JepaConfig,
    mixture: MixtureDataset,
    sampler: MixtureSampler,
    collator: MultiBlockMaskCollator,
    epoch: int,
    rank: int = 0,
) -> DataLoader:
    """A fresh loader per epoch whose worker seeds depend only on ``(seed, epoch, rank)``.

    Together with the epoch-seeded sampler this makes every epoch reproducible, which is what
    lets ``--resume`` continue exactly. Worker processes live one epoch and draw into their own
    copy of a dataset, so datasets that keep drawn images (``draw_all``) draw them all first,
    here, for the workers to inherit; without workers they draw lazily in this process.
    """
    if cfg.data.num_workers > 0:
        for part in mixture.datasets:
            if hasattr(part, "draw_all"):
                part.draw_all()
    sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed((cfg.run.seed * 7919 + epoch) * 131 + rank)
    return DataLoader(
        mixture,
        batch_size=cfg.optim.batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=cfg.data.num_workers,
        drop_last=True,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
        persistent_workers=False,
        worker_init_fn=leave_stops_to_main_process,  # a stop is the main process's to handle
    )
