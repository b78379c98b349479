"""SlowFast: two ResNet pathways with lateral fast-to-slow fusion.

Feichtenhofer, Fan, Malik & He, "SlowFast Networks for Video Recognition"
(ICCV 2019), built with pytorchvideo's ``create_slowfast`` (the R50 recipe of
``hub.slowfast.slowfast_r50``). The slow pathway sees every ``alpha``-th frame,
``x[:, :, ::alpha]``, the fast pathway the full clip with ``1/beta_inv`` of the
slow channels; lateral time-strided convolutions (kernel (7, 1, 1), stride
``alpha``) fuse fast into slow after the stem and each of the first stages.

Changes for our clips: each pathway is resampled (adaptive average) to the
readout's time steps, keeping its h x w, and the concatenation goes through
:mod:`extractors.readout` (by default the trajectory readout, which keeps time
and where; ``readout: global`` is the published average over time and space,
83% validation accuracy and a mean-predicting future RMSE in the 10-epoch
benchmark). The ``tiny`` preset narrows widths (slow stem 8, fast 2; beta
1/4 rather than 1/8 so the fast pathway keeps whole channels) and makes the
stems cheaper: kernels (1, 5, 5) / (3, 5, 5) instead of (1, 7, 7) /
(5, 7, 7), stride (2, 2, 2) on the 32 x 32 frames the trainer feeds it
(``configs/train/tiny.yaml``) instead of (1, 2, 2) on full frames. Both stems
stride time equally, so the pathways keep the frame ratio ``alpha`` that the
lateral convolutions assume.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from extractors.memory_format import channels_last_after_stem
from extractors.readout import ReadoutConfig, build_readout
from extractors.registry import register_extractor

with warnings.catch_warnings():  # fvcore, imported by pytorchvideo, calls torch.jit.script
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from pytorchvideo.models.slowfast import create_slowfast

Triple = tuple[int, int, int]


class SlowFastConfig(ReadoutConfig):
    model_depth: Literal[50, 101, 152] = 50
    alpha: int = Field(
        4, ge=1, description="frame-rate ratio fast/slow; slow sees x[:, :, ::alpha]"
    )
    beta_inv: int = Field(4, ge=1, description="channel ratio slow/fast (1/beta in the paper)")
    slow_stem_dim_out: int = Field(8, gt=0, description="slow stem width; stage widths 4x..32x")
    fusion_conv_channel_ratio: int = Field(2, ge=1)
    fusion_kernel_t: int = Field(7, ge=1, description="temporal kernel of the lateral fusion conv")
    slow_stem_kernel: Triple = (1, 5, 5)
    fast_stem_kernel: Triple = (3, 5, 5)
    stem_stride: Triple = (2, 2, 2)
    dropout_rate: float = Field(0.0, ge=0.0, lt=1.0)
    channels_last: bool = Field(True, description="channels_last_3d after the stem (faster on CPU)")

    presets = {
        "tiny": {
            "embed_dim": 256,
            "slow_stem_dim_out": 8,
            "beta_inv": 4,
            "slow_stem_kernel": (1, 5, 5),
            "fast_stem_kernel": (3, 5, 5),
            "stem_stride": (2, 2, 2),
        },
        "base": {
            "embed_dim": 2304,
            "slow_stem_dim_out": 64,
            "beta_inv": 8,
            "slow_stem_kernel": (1, 7, 7),
            "fast_stem_kernel": (5, 7, 7),
            "stem_stride": (1, 2, 2),
            "dropout_rate": 0.5,
        },
    }

    @model_validator(mode="after")
    def _fast_pathway_has_channels(self) -> SlowFastConfig:
        if self.slow_stem_dim_out % self.beta_inv:
            raise ValueError(
                f"slow_stem_dim_out ({self.slow_stem_dim_out}) must be a multiple of "
                f"beta_inv ({self.beta_inv}) so the fast pathway has whole channels"
            )
        return self


class SlowFast(nn.Module):
    """``(B, 3, T, H, W) -> (B, embed_dim)``."""

    def __init__(self, config: SlowFastConfig) -> None:
        super().__init__()
        self.embed_dim = config.embed_dim
        self.alpha = config.alpha
        self.net = create_slowfast(
            slowfast_channel_reduction_ratio=(config.beta_inv,),
            slowfast_conv_channel_fusion_ratio=config.fusion_conv_channel_ratio,
            slowfast_fusion_conv_kernel_size=(config.fusion_kernel_t, 1, 1),
            slowfast_fusion_conv_stride=(config.alpha, 1, 1),
            input_channels=(3, 3),
            model_depth=config.model_depth,
            stem_dim_outs=(config.slow_stem_dim_out, config.slow_stem_dim_out // config.beta_inv),
            stem_conv_kernel_sizes=(config.slow_stem_kernel, config.fast_stem_kernel),
            stem_conv_strides=(config.stem_stride, config.stem_stride),
            # Both pathways resampled to the readout's steps (None keeps h and w,
            # equal in both), concatenated on channels; the readout is the head.
            head=None,
            head_pool=nn.AdaptiveAvgPool3d,
            head_output_size=((config.readout_steps, None, None),) * 2,
        )
        # ResNet-50: the last stage is 32x each stem's width; after the first
        # stage the fast pathway holds 4x its stem's width and the slow 4x its
        # own plus the lateral fusion's fusion_conv_channel_ratio x the fast's.
        slow, fast = config.slow_stem_dim_out, config.slow_stem_dim_out // config.beta_inv
        fine = 4 * (slow + fast * (1 + config.fusion_conv_channel_ratio))
        self.reads_fine = config.reads_fine_map
        self.steps = config.readout_steps
        self.readout = build_readout(config, 32 * (slow + fast), config.dropout_rate, fine)
        if config.channels_last:
            channels_last_after_stem(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A fresh list every call: the multipathway fusion writes into it in place.
        pathways = [x[:, :, :: self.alpha], x]
        if not self.reads_fine:
            return self.readout(self.net(pathways))
        # blocks: stem, stages 1-4 (each with its lateral fusion), pool-concat
        blocks = self.net.blocks
        for block in blocks[:2]:
            pathways = block(pathways)
        fine = torch.cat(
            [F.adaptive_avg_pool3d(p, (self.steps, *p.shape[-2:])) for p in pathways], dim=1
        )
        out = pathways
        for block in blocks[2:]:
            out = block(out)
        return self.readout(out, fine)


@register_extractor(
    "slowfast",
    description="SlowFast R50 (pytorchvideo create_slowfast, slow x[::alpha] + fast full clip)",
    config=SlowFastConfig,
)
def build_slowfast(config: SlowFastConfig) -> SlowFast:
    return SlowFast(config)
