"""H-JEPA as the paper's steps: ``forward_target``, then context encoder -> predictor -> loss.

The trainable part (context encoder, predictor, level heads) is one module so that DDP wraps it
whole; the target encoder is an EMA copy kept outside the optimiser (I-JEPA Sec. 3).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from train.jepa.config import JepaConfig
from train.jepa.hierarchy import LevelHeads, hierarchical_loss, level_targets
from train.jepa.regularizers import regularizer_loss
from train.jepa.vision_transformer import Predictor, VisionTransformer


class HJepa(nn.Module):
    def __init__(self, cfg: JepaConfig) -> None:
        super().__init__()
        m = cfg.model
        self.grid = cfg.grid_size
        self.level_weights = [level.weight for level in m.levels]
        self.encoder = VisionTransformer(
            cfg.data.image_size, m.patch_size, m.embed_dim, m.depth, m.num_heads, m.mlp_ratio
        )
        self.predictor = Predictor(
            self.grid,
            m.embed_dim,
            m.predictor_embed_dim,
            m.predictor_depth,
            m.predictor_num_heads,
            m.mlp_ratio,
        )
        self.heads = LevelHeads(len(m.levels), m.predictor_embed_dim, m.embed_dim)
        self.regularizer = cfg.regularizer

    def forward(
        self,
        images: torch.Tensor,
        context_masks: list[torch.Tensor],
        target_masks: list[torch.Tensor],
        targets: list[torch.Tensor],
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[int], torch.Tensor]:
        """``(total, per-level losses, cells per level, regulariser)``; total includes both."""
        context = self.encoder(images, context_masks)
        hidden = self.predictor(context, context_masks, target_masks)
        total, losses, cells = hierarchical_loss(
            hidden, self.heads, targets, context_masks, target_masks, self.grid, self.level_weights
        )
        r = self.regularizer
        reg = regularizer_loss(
            context.mean(1),
            r.variance_weight,
            r.covariance_weight,
            r.sigreg_weight,
            r.sigreg_slices,
        )
        return total + reg, losses, cells, reg


def make_target_encoder(online: VisionTransformer) -> VisionTransformer:
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def forward_target(
    target_encoder: VisionTransformer, images: torch.Tensor, num_levels: int
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-level targets and the full output (for the collapse watch), no gradient."""
    features = target_encoder(images)
    return level_targets(features, target_encoder.grid, num_levels), features


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online`` for every parameter."""
    t_params = list(target.parameters())
    o_params = [p.detach() for p in online.parameters()]
    torch._foreach_mul_(t_params, momentum)
    torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)
