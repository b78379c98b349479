"""I3D: an inflated 3D ResNet, built with pytorchvideo's ``create_resnet``.

Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset" (CVPR 2017), as a ResNet-50 in pytorchvideo's
``hub.resnet.i3d_r50`` recipe: a (5, 7, 7) stem, temporal kernels (3, 1, 1)
inflated in alternate bottleneck blocks, and a temporal max-pool after the
first stage. Two changes, both for our clips:

* the head is :mod:`extractors.readout`'s (by default the trajectory
  readout: ``readout_steps`` time steps, each pooled by learned spatial
  attention with its soft-argmax coordinates) instead of the hub model's
  average pool over time and space, which kept neither the path's shape nor
  where the ball ends (81% validation accuracy, a mean-predicting future
  RMSE in the 10-epoch benchmark); ``readout: global`` restores the average;
* the ``tiny`` preset narrows every width (stem 8 channels, so stages
  32/64/128/256) and makes the stem cheaper, a (3, 5, 5) kernel with stride
  (2, 2, 2) on the 32 x 32 frames the trainer feeds it
  (``configs/train/tiny.yaml``: ``downsample: 2``) instead of (5, 7, 7) with
  (1, 2, 2) on full frames: on a CPU the full-resolution stem alone would
  cost more than the rest of the network. Depth (ResNet-50), inflation
  pattern and stage-1 temporal pooling are the recipe's in both presets.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from extractors.memory_format import channels_last_after_stem
from extractors.readout import ReadoutConfig, build_readout
from extractors.registry import register_extractor

with warnings.catch_warnings():  # fvcore, imported by pytorchvideo, calls torch.jit.script
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from pytorchvideo.models.resnet import create_resnet

Triple = tuple[int, int, int]

# hub.resnet.i3d_r50: inflate (3, 1, 1) in every block of stage 1, then in
# alternate blocks (lists cycle over a stage's blocks).
I3D_CONV_A_KERNELS = (
    (3, 1, 1),
    [(3, 1, 1), (1, 1, 1)],
    [(3, 1, 1), (1, 1, 1)],
    [(1, 1, 1), (3, 1, 1)],
)


class I3DConfig(ReadoutConfig):
    model_depth: Literal[50, 101, 152] = 50
    stem_dim_out: int = Field(8, gt=0, description="stem width; stage widths are 4x, 8x, 16x, 32x")
    stem_conv_kernel_size: Triple = (3, 5, 5)
    stem_conv_stride: Triple = (2, 2, 2)
    dropout_rate: float = Field(0.0, ge=0.0, lt=1.0)
    channels_last: bool = Field(True, description="channels_last_3d after the stem (faster on CPU)")

    presets = {
        "tiny": {
            "embed_dim": 256,
            "stem_dim_out": 8,
            "stem_conv_kernel_size": (3, 5, 5),
            "stem_conv_stride": (2, 2, 2),
        },
        "base": {
            "embed_dim": 2048,
            "stem_dim_out": 64,
            "stem_conv_kernel_size": (5, 7, 7),
            "stem_conv_stride": (1, 2, 2),
            "dropout_rate": 0.5,
        },
    }


class I3D(nn.Module):
    """``(B, 3, T, H, W) -> (B, embed_dim)``."""

    def __init__(self, config: I3DConfig) -> None:
        super().__init__()
        self.embed_dim = config.embed_dim
        self.net = create_resnet(
            input_channel=3,
            model_depth=config.model_depth,
            stem_dim_out=config.stem_dim_out,
            stem_conv_kernel_size=config.stem_conv_kernel_size,
            stem_conv_stride=config.stem_conv_stride,
            stage1_pool=nn.MaxPool3d,
            stage_conv_a_kernel_size=I3D_CONV_A_KERNELS,
            head=None,
        )
        # ResNet-50: the first stage is 4x the stem's width, the last 32x.
        self.reads_fine = config.reads_fine_map
        self.readout = build_readout(
            config, 32 * config.stem_dim_out, config.dropout_rate, 4 * config.stem_dim_out
        )
        if config.channels_last:
            channels_last_after_stem(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # blocks: stem, stage 1, stage-1 temporal pool, stages 2-4
        blocks = self.net.blocks
        for block in blocks[:3]:
            x = block(x)
        fine = x
        for block in blocks[3:]:
            x = block(x)
        return self.readout(x, fine) if self.reads_fine else self.readout(x)


@register_extractor(
    "i3d",
    description="I3D ResNet-50 (pytorchvideo create_resnet, alternate inflation, trajectory readout)",
    config=I3DConfig,
)
def build_i3d(config: I3DConfig) -> I3D:
    return I3D(config)
