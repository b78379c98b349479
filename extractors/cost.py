"""Parameters and multiply-accumulates of an extractor, counted by torch rather than by hand.

MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2)
over one forward pass. The model and clip live on the ``meta`` device, so no
arithmetic runs and even ``base`` presets count in well under a second; on
``meta`` attention decomposes into matmuls the counter sees (its CPU fused
kernel has no registered formula). Counted: convolutions, matmuls and
attention; not counted: norms, activations, pooling (elementwise work).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from extractors.registry import create_extractor

CLIP_SHAPE: tuple[int, int, int, int] = (3, 32, 64, 64)
"""One camera's clip in the dataset: channels, frames, height, width."""

PRESET_CLIP_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (3, 32, 32, 32),  # configs/train/tiny.yaml averages frames to 32 x 32 first
    "base": CLIP_SHAPE,
}
"""The clip each preset is trained on, which ``python -m extractors list`` costs."""


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, clip_shape: tuple[int, ...] = CLIP_SHAPE) -> int:
    """Multiply-accumulates of ``model`` on one clip (batch 1), in eval mode, on the device of
    its weights (the default device for a model without any: a parameter-free one is fine)."""
    weights = chain(model.parameters(), model.buffers())
    device = next((w.device for w in weights), torch.get_default_device())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *clip_shape, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def extractor_cost(
    name: str, preset: str, clip_shape: tuple[int, ...] = CLIP_SHAPE, **overrides: Any
) -> tuple[int, int]:
    """``(parameters, MACs per clip)`` of extractor ``name`` at ``preset``, built on meta."""
    with torch.device("meta"):
        model = create_extractor(name, preset, **overrides)
        return count_parameters(model), count_macs(model, clip_shape)
