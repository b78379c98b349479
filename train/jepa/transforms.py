"""Pretraining and evaluation transforms (``torchvision.transforms.v2``).

Pretraining as I-JEPA (``src/transforms.py``): random resized crop with scale 0.3 to 1.0, no
flip, no colour jitter by default. Evaluation: resize to 1/0.875 of the size (the usual
ImageNet centre-crop ratio, ``data.eval_crop_ratio``), centre crop, normalise.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from train.jepa.config import DataConfig


def _to_normalised_tensor(cfg: DataConfig) -> list:
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
    ]


def pretrain_transform(cfg: DataConfig) -> v2.Compose:
    steps: list = [
        v2.RandomResizedCrop(
            cfg.image_size, scale=cfg.crop_scale, ratio=cfg.crop_ratio, antialias=True
        )
    ]
    if cfg.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _to_normalised_tensor(cfg))


def eval_transform(cfg: DataConfig) -> v2.Compose:
    resize = int(round(cfg.image_size / cfg.eval_crop_ratio))
    return v2.Compose(
        [v2.Resize(resize, antialias=True), v2.CenterCrop(cfg.image_size)]
        + _to_normalised_tensor(cfg)
    )
