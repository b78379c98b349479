"""From a clip's feature map to an embedding that keeps *when* and *where*.

The published heads of I3D, SlowFast and MAGVIT average their last feature
map over time and space (ViViT keeps one CLS token). For action recognition
that is the point; here it throws the task away: the class is the *shape* of
the ball's path over time, and the future position needs *where* the ball is
in the last frames. With time averaged, a path and its reverse, or a circle
and a helix seen from one side, pool to the same vector; in the 10-epoch
benchmark the four tiny extractors with global pooling reached 40-83%
validation accuracy, and their future-position RMSE (23-25% of the scene's
extent) was that of predicting the mean.

:class:`TrajectoryReadout` keeps time: the map is resampled (adaptive
average) to a fixed number of ``steps``, so ``embed_dim = steps * dim``
whatever the clip length. At every step, ``heads`` learned attention maps
(a 1x1x1 convolution, softmax over the h x w cells) pool the features where
they point, and their spatial soft-argmax, the attention-weighted mean of the
cells' (u, v) coordinates in [-1, 1], says where that is ("spatial softmax",
Levine, Finn, Darrell & Abbeel, 2016, "End-to-End Training of Deep
Visuomotor Policies"; integral regression, Sun et al., 2018). Each step's
pooled features and coordinates are projected to ``dim``; the steps are
concatenated in order.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from typing_extensions import Self

from extractors.config import ExtractorConfig


class TrajectoryReadout(nn.Module):
    """``(B, C, t, h, w) -> (B, steps * dim)``: attention-pooled features and coordinates per step."""

    def __init__(
        self, in_channels: int, steps: int, dim: int, heads: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if min(in_channels, steps, dim, heads) < 1:
            raise ValueError("in_channels, steps, dim and heads must be >= 1")
        self.steps, self.heads = steps, heads
        self.embed_dim = steps * dim
        self.score = nn.Conv3d(in_channels, heads, 1)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(heads * (in_channels + 2) + in_channels, dim)
        self.act = nn.GELU()
        # Start from uniform attention (the average pool); learning sharpens it.
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected a (B, C, t, h, w) feature map, got {tuple(x.shape)}")
        b, c, _, h, w = x.shape
        x = F.adaptive_avg_pool3d(x, (self.steps, h, w)).flatten(3)  # (B, C, S, h*w)
        attn = self.score(x.unsqueeze(-1)).squeeze(-1).softmax(dim=-1)  # (B, K, S, h*w)
        features = torch.einsum("bksn,bcsn->bskc", attn, x)  # (B, S, K, C)
        v, u = torch.meshgrid(
            torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype),
            torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype),
            indexing="ij",
        )
        grid = torch.stack([u.flatten(), v.flatten()], dim=-1)  # (h*w, 2)
        coords = torch.einsum("bksn,nd->bskd", attn, grid)  # (B, S, K, 2)
        peak = x.amax(dim=-1).transpose(1, 2)  # (B, S, C)
        per_step = torch.cat([features.flatten(2), coords.flatten(2), peak], dim=-1)
        return self.act(self.proj(self.dropout(per_step))).flatten(1)


class GlobalReadout(nn.Module):
    """``(B, C, t, h, w) -> (B, dim)``: the published heads' average over time and space, then a linear map."""

    def __init__(self, in_channels: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = dim
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_channels, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(x.mean(dim=(2, 3, 4))))


class MultiScaleReadout(nn.Module):
    """A trajectory readout of an early, fine map and one of the last map, concatenated.

    The extractors' last maps are 1 x 1 for the tiny presets' 32 x 32 frames
    (stem, max-pool and three strided stages), where soft-argmax has nothing
    to choose from and *where* survives only in feature values after ~16
    residual blocks. The map after the first stage (8 x 8 cells) still has
    the ball in one place, so its attention and coordinates locate it;
    the last map says what the path looks like. The feature pyramid's idea
    (Lin et al., 2017, "Feature Pyramid Networks for Object Detection") with
    a readout per level rather than top-down fusion.
    """

    def __init__(
        self,
        fine_channels: int,
        coarse_channels: int,
        steps: int,
        embed_dim: int,
        heads: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if embed_dim % (2 * steps):
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of 2 * steps ({steps})")
        per_step = embed_dim // (2 * steps)
        self.fine = TrajectoryReadout(fine_channels, steps, per_step, heads, dropout)
        self.coarse = TrajectoryReadout(coarse_channels, steps, per_step, heads, dropout)
        self.embed_dim = embed_dim

    def forward(self, x: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.fine(fine), self.coarse(x)], dim=1)


class ReadoutConfig(ExtractorConfig):
    """Fields of an extractor whose feature map ends in a readout of this module."""

    readout: Literal["trajectory", "global"] = Field(
        "trajectory",
        description="trajectory: keep readout_steps time steps and where (default); "
        "global: average over time and space, as the published heads",
    )
    readout_steps: int = Field(8, ge=1, description="time steps the trajectory readout keeps")
    readout_heads: int = Field(2, ge=1, description="attention maps per time step")
    readout_fine: bool = Field(
        True, description="trajectory readout: also read the map after the first stage"
    )

    @model_validator(mode="after")
    def _steps_divide_embed_dim(self) -> Self:
        parts = self.readout_steps * (2 if self.readout_fine else 1)
        if self.readout == "trajectory" and self.embed_dim % parts:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be a multiple of readout_steps "
                f"({self.readout_steps}){' x 2 (readout_fine)' if self.readout_fine else ''}: "
                "each step of each map read gets an equal share"
            )
        return self

    @property
    def reads_fine_map(self) -> bool:
        return self.readout == "trajectory" and self.readout_fine


def build_readout(
    config: ReadoutConfig, in_channels: int, dropout: float = 0.0, fine_channels: int = 0
) -> nn.Module:
    """The readout ``config`` asks for, from ``in_channels`` (and ``fine_channels``) to ``config.embed_dim``.

    With ``config.reads_fine_map`` it is a :class:`MultiScaleReadout`, called
    as ``readout(last_map, fine_map)``; otherwise ``readout(last_map)``.
    """
    if config.readout == "global":
        return GlobalReadout(in_channels, config.embed_dim, dropout)
    if config.readout_fine:
        if fine_channels < 1:
            raise ValueError("readout_fine needs the fine map's channel count")
        return MultiScaleReadout(
            fine_channels,
            in_channels,
            config.readout_steps,
            config.embed_dim,
            config.readout_heads,
            dropout,
        )
    return TrajectoryReadout(
        in_channels,
        config.readout_steps,
        config.embed_dim // config.readout_steps,
        config.readout_heads,
        dropout,
    )
