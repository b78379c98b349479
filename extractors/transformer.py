"""ViViT factorised encoder: a spatial transformer per time step, then a temporal one.

Arnab, Dehghani, Heigold, Sun, Lucic & Schmid, "ViViT: A Video Vision
Transformer" (ICCV 2021), Model 2 ("factorised encoder"):

1. tubelet embedding: a Conv3d with kernel = stride = ``tubelet`` cuts the
   clip into non-overlapping t x p x p tubes (Sec. 3.2, Eq. 8);
2. the spatial encoder (``spatial_depth`` blocks) runs on each time index's
   tokens with a CLS token, as a ViT does on an image;
3. the temporal encoder (``temporal_depth`` blocks) runs on the sequence of
   the per-time CLS outputs with its own CLS token, whose output is the
   paper's embedding (``readout: global``).

By default (``readout: trajectory``) the embedding is instead the temporal
encoder's per-time outputs, resampled to ``readout_steps`` and projected to
``embed_dim / readout_steps`` each (:mod:`extractors.readout`): the labels
here are the path's shape in time and where it ends, which one CLS vector
trained on 1,600 clips did not keep (40% validation accuracy in the
10-epoch benchmark). ``dim`` is the transformer's width, ``embed_dim`` the
output's.

Attention is ``torch.nn.functional.scaled_dot_product_attention``. Position
embeddings are learned for the configured ``num_frames`` x ``image_size`` grid
and resized (linear in time, bicubic in space) for another clip size, so
8 x 32 x 32 test clips run through the same weights. A clip whose sides are
not multiples of the tubelet loses its trailing remainder, as a strided conv
does. Not here: ViViT's initialisation from an image-pretrained ViT.

``stem: conv`` makes the tokens with stride-2 3x3x3 convolutions down to the
same grid instead (ViT-C, Xiao et al., NeurIPS 2021; its padded convolutions
keep a partial tubelet at the end). One linear map per tubelet finds a small
ball in colour inputs slowly, or not at all: on the hard level (5,000 clips,
4 epochs, dataset seeds 0-3) the tubelet transformer stayed at chance (13.8-14.5%
on 2,000 held-out clips) and the conv stem reached 61.6-65.8%, which is why
``configs/train/colour.yaml`` gives the transformer the stem; on the easy
level with ``--config colour`` (800 clips, 4 epochs) validation accuracy was
41% and 77%. With position channels (the easy recipe) tubelets do a little
better: 96.2 and 96.6% held-out on seeds 1 and 2 against 95.2 and 95.6%. It
doubles the tiny preset's MACs (31.9M to 63.4M a clip).

``base`` is ViViT-B (768 wide, 12 spatial + 4 temporal layers, 2x16x16
tubelets). ``tiny`` takes 4 x 8 x 8 tubelets (the trainer halves frames to
32 x 32, ``configs/train/tiny.yaml``), is 96 wide with 2 + 2 layers and an
MLP ratio of 2: 8 x 4 x 4 tokens for a 32 x 32 x 32 clip, which trains on a CPU.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from extractors.readout import ReadoutConfig, TrajectoryReadout
from extractors.registry import register_extractor


class ViViTConfig(ReadoutConfig):
    dim: int = Field(96, gt=0, description="transformer width")
    # The readout reads the spatial encoder's patch-token grid, ViViT's only map.
    readout_fine: bool = False
    tubelet: tuple[int, int, int] = (4, 8, 8)
    stem: Literal["tubelet", "conv"] = Field(
        "tubelet",
        description="tokens from one linear map per tubelet (ViViT), or from a small 3-D "
        "convolution stack with the same strides (ViT-C, Xiao et al. 2021)",
    )
    num_frames: int = Field(32, gt=0, description="clip length the position embedding is made for")
    image_size: int = Field(32, gt=0, description="frame side the position embedding is made for")
    spatial_depth: int = Field(2, ge=1)
    temporal_depth: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(2.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    presets = {
        "tiny": {
            "embed_dim": 256,
            "dim": 96,
            "tubelet": (4, 8, 8),
            "image_size": 32,
            "spatial_depth": 2,
            "temporal_depth": 2,
            "num_heads": 4,
            "mlp_ratio": 2.0,
        },
        # ViViT-B: ViT-Base widths, 12 spatial + 4 temporal layers, 2x16x16 tubelets.
        "base": {
            "embed_dim": 768,
            "dim": 768,
            "tubelet": (2, 16, 16),
            "image_size": 64,
            "spatial_depth": 12,
            "temporal_depth": 4,
            "num_heads": 12,
            "mlp_ratio": 4.0,
            "dropout": 0.1,
        },
    }

    @model_validator(mode="after")
    def _check_shapes(self) -> ViViTConfig:
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if self.readout == "global" and self.embed_dim != self.dim:
            raise ValueError(
                f"readout 'global' returns the CLS token: embed_dim ({self.embed_dim}) must equal "
                f"dim ({self.dim})"
            )
        if any(s < 1 for s in self.tubelet):
            raise ValueError(f"tubelet sizes must be >= 1, got {self.tubelet}")
        if self.stem == "conv" and any(s & (s - 1) for s in self.tubelet):
            raise ValueError(
                f"stem 'conv' halves the clip per layer: tubelet sizes must be powers of 2, "
                f"got {self.tubelet}"
            )
        if self.num_frames < self.tubelet[0] or self.image_size < max(self.tubelet[1:]):
            raise ValueError("num_frames and image_size must be at least one tubelet")
        return self


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block (ViT)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


def resize_spatial_pos_embed(
    pos: torch.Tensor, source: tuple[int, int], grid: tuple[int, int]
) -> torch.Tensor:
    """``(1, h0*w0, D)`` learned on grid ``source`` -> ``(1, h*w, D)``, bicubic."""
    if source == grid:
        return pos
    image = pos.reshape(1, source[0], source[1], -1).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=grid, mode="bicubic", align_corners=False)
    return image.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)


def resize_temporal_pos_embed(pos: torch.Tensor, length: int) -> torch.Tensor:
    """``(1, t0, D)`` -> ``(1, length, D)``, linear."""
    if pos.shape[1] == length:
        return pos
    out = F.interpolate(pos.transpose(1, 2), size=length, mode="linear", align_corners=False)
    return out.transpose(1, 2)


def conv_stem(dim: int, tubelet: tuple[int, int, int]) -> nn.Sequential:
    """Stride-2 3x3x3 convolutions down to the tubelet grid, then a 1x1x1 projection.

    The tubelet stem is one linear map per tube: a small ball in a noisy tube is a weak
    direction among 768 inputs. Stacked convolutions see it as CNNs do (Xiao et al.,
    "Early Convolutions Help Transformers See Better", NeurIPS 2021).
    """
    layers: list[nn.Module] = []
    stride = list(tubelet)
    channels, width = 3, max(dim // 4, 8)
    while max(stride) > 1:
        step = tuple(2 if s > 1 else 1 for s in stride)
        layers += [
            nn.Conv3d(channels, width, 3, stride=step, padding=1, bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        ]
        stride = [s // t for s, t in zip(stride, step, strict=True)]
        channels, width = width, min(width * 2, dim)
    return nn.Sequential(*layers, nn.Conv3d(channels, dim, 1))


class ViViT(nn.Module):
    """``(B, 3, T, H, W) -> (B, embed_dim)``."""

    def __init__(self, config: ViViTConfig) -> None:
        super().__init__()
        dim = config.dim
        self.embed_dim = config.embed_dim
        self.tubelet = config.tubelet
        t, p, q = config.tubelet
        self.patch_embed = (
            conv_stem(dim, config.tubelet)
            if config.stem == "conv"
            else nn.Conv3d(3, dim, kernel_size=config.tubelet, stride=config.tubelet)
        )
        self.pos_grid = (config.image_size // p, config.image_size // q)
        self.spatial_pos = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], dim))
        self.temporal_pos = nn.Parameter(torch.zeros(1, config.num_frames // t, dim))
        self.spatial_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.temporal_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_drop = nn.Dropout(config.dropout)

        def blocks(depth: int) -> nn.Sequential:
            return nn.Sequential(
                *(
                    Block(dim, config.num_heads, config.mlp_ratio, config.dropout)
                    for _ in range(depth)
                )
            )

        self.spatial = blocks(config.spatial_depth)
        self.spatial_norm = nn.LayerNorm(dim)
        self.temporal = blocks(config.temporal_depth)
        self.temporal_norm = nn.LayerNorm(dim)
        self.readout = (
            TrajectoryReadout(
                dim,
                config.readout_steps,
                config.embed_dim // config.readout_steps,
                config.readout_heads,
                config.dropout,
            )
            if config.readout == "trajectory"
            else None
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for param in (self.spatial_pos, self.temporal_pos, self.spatial_cls, self.temporal_cls):
            nn.init.trunc_normal_(param, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)  # (B, D, nt, nh, nw)
        b, d, nt, nh, nw = tokens.shape
        tokens = tokens.permute(0, 2, 3, 4, 1).reshape(b * nt, nh * nw, d)
        tokens = tokens + resize_spatial_pos_embed(self.spatial_pos, self.pos_grid, (nh, nw))
        tokens = torch.cat([self.spatial_cls.expand(b * nt, -1, -1), tokens], dim=1)
        tokens = self.spatial_norm(self.spatial(self.pos_drop(tokens)))

        frames = tokens[:, 0].reshape(b, nt, d)
        frames = frames + resize_temporal_pos_embed(self.temporal_pos, nt)
        frames = torch.cat([self.temporal_cls.expand(b, -1, -1), frames], dim=1)
        frames = self.temporal_norm(self.temporal(self.pos_drop(frames)))
        if self.readout is None:
            return frames[:, 0]
        # The spatial encoder's patch tokens as a (B, D, nt, nh, nw) map, each
        # time step's temporal-encoder output added to all of its patches.
        patches = tokens[:, 1:].reshape(b, nt, nh, nw, d).permute(0, 4, 1, 2, 3)
        return self.readout(patches + frames[:, 1:].transpose(1, 2)[..., None, None])


@register_extractor(
    "transformer",
    description="ViViT factorised encoder (conv-stem or tubelet tokens, spatial then temporal transformer, SDPA)",
    config=ViViTConfig,
)
def build_vivit(config: ViViTConfig) -> ViViT:
    return ViViT(config)
