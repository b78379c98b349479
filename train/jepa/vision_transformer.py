"""The I-JEPA encoder and predictor (ijepa ``src/models/vision_transformer.py``) on timm's blocks.

Only what JEPA adds is written here: fixed 2-D sin-cos position embeddings, an encoder that can
keep a subset of tokens, and a predictor that appends one learned mask token per target position.
Transformer blocks and the patch embedding are timm's.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn


def sincos_pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding, shape ``(grid*grid, dim)``, raster order.

    As MAE/I-JEPA ``get_2d_sincos_pos_embed``: half the channels encode the row, half the column,
    each as ``[sin(p * w_i), cos(p * w_i)]`` with ``w_i = 1 / 10000^(i / (dim/4))``
    (Vaswani et al. 2017).
    """
    if dim % 4:
        raise ValueError(f"dim {dim} must be divisible by 4")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    rows, cols = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64),
        torch.arange(grid, dtype=torch.float64),
        indexing="ij",
    )

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


def apply_masks(x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """Gather the tokens ``masks`` keep: ``(B, N, D)`` -> ``(len(masks) * B, K, D)``, mask-major."""
    return torch.cat(
        [torch.gather(x, 1, m.unsqueeze(-1).expand(-1, -1, x.size(-1))) for m in masks], dim=0
    )


def repeat_interleave_batch(x: torch.Tensor, batch_size: int, repeat: int) -> torch.Tensor:
    """Repeat each block of ``batch_size`` rows ``repeat`` times (ijepa ``src/utils/tensors.py``)."""
    n = len(x) // batch_size
    return torch.cat(
        [
            torch.cat([x[i * batch_size : (i + 1) * batch_size] for _ in range(repeat)], dim=0)
            for i in range(n)
        ],
        dim=0,
    )


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal init of I-JEPA (std 0.02, zero bias, unit LayerNorm).

    As ijepa ``_init_weights``, this covers the patch embedding's ``Conv2d`` too; left at
    PyTorch's default it would start about 4x larger than the spec's.
    """
    if isinstance(module, nn.Linear | nn.Conv2d):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _rescale_blocks(blocks: nn.ModuleList) -> None:
    """Scale residual output projections by 1/sqrt(2 * layer) as ijepa ``fix_init_weight``."""
    for layer, block in enumerate(blocks, start=1):
        block.attn.proj.weight.data.div_(math.sqrt(2.0 * layer))
        block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * layer))


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float) -> nn.ModuleList:
    norm = partial(nn.LayerNorm, eps=1e-6)
    return nn.ModuleList(
        [
            Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=norm)
            for _ in range(depth)
        ]
    )


class VisionTransformer(nn.Module):
    """ViT encoder without a class token; ``forward(x, masks)`` keeps only the masked-in tokens."""

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.grid = img_size // patch_size
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(embed_dim, self.grid).unsqueeze(0))
        self.blocks = _blocks(embed_dim, depth, num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(_init_weights)
        _rescale_blocks(self.blocks)

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        if masks is not None:
            x = apply_masks(x, masks)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class Predictor(nn.Module):
    """Narrow ViT that predicts target features from the context (ijepa ``VisionTransformerPredictor``).

    It returns its hidden states at the target positions, ``(num_targets * B, n_tgt, pred_dim)``;
    the per-level heads in ``train.jepa.hierarchy`` map them to the encoder's width (level 0's head
    is I-JEPA's ``predictor_proj``).
    """

    def __init__(
        self,
        grid: int,
        embed_dim: int,
        predictor_embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
        pos = sincos_pos_embed_2d(predictor_embed_dim, grid).unsqueeze(0)
        self.register_buffer("pos_embed", pos)
        self.blocks = _blocks(predictor_embed_dim, depth, num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(predictor_embed_dim, eps=1e-6)
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        _rescale_blocks(self.blocks)

    def forward(
        self,
        context: torch.Tensor,
        context_masks: list[torch.Tensor],
        target_masks: list[torch.Tensor],
    ) -> torch.Tensor:
        batch = len(context) // len(context_masks)
        x = self.predictor_embed(context)
        pos = self.pos_embed.expand(batch, -1, -1)
        x = x + apply_masks(pos, context_masks)
        n_ctx = x.size(1)
        # one query per target position: the shared mask token plus that position's embedding
        queries = apply_masks(pos, target_masks)
        queries = repeat_interleave_batch(queries, batch, repeat=len(context_masks))
        queries = queries + self.mask_token
        x = x.repeat(len(target_masks), 1, 1)
        x = torch.cat([x, queries], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, n_ctx:])
