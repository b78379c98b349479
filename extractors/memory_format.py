"""channels_last_3d for the pytorchvideo ResNets, except where it costs more than it saves.

On CPU, oneDNN runs the narrow 1x1x1 and (3, 1, 1) bottleneck convolutions of
the tiny presets 3-8x faster in channels_last_3d than in NCDHW (measured with
``benchmarks/bench_extractors.py``). Converting the input clip itself, though,
copies all 3x32x64x64 values per camera and costs more than the stem gains, so
the stem convolutions (those reading the 3 colour channels) stay NCDHW and the
first bottleneck's convolution switches the layout.
"""

from __future__ import annotations

import torch
from torch import nn


def channels_last_after_stem(net: nn.Module) -> nn.Module:
    """Convert ``net``'s 5-D weights to channels_last_3d, except RGB-input convolutions."""
    net.to(memory_format=torch.channels_last_3d)
    for module in net.modules():
        if isinstance(module, nn.Conv3d) and module.in_channels == 3:
            module.weight.data = module.weight.data.contiguous()
    return net
