"""H-JEPA: the I-JEPA objective at several spatial levels.

What a level is
---------------
Level ``k`` works on cells of ``s x s`` patches, ``s = 2**k``, tiling the patch grid from the top
left: cell ``(i, j)`` holds patches ``(s*i .. s*i+s-1, s*j .. s*j+s-1)``. The level-k grid is
``floor(grid / s)`` cells a side; patches past the last whole cell belong to no level-k cell.

* Target of a cell: the target encoder's output averaged over the cell's ``s*s`` patches (average
  pooling on the 2-D grid, not along the token list), then layer-normed over channels without
  affine parameters. Level 0 is exactly I-JEPA's target ``layer_norm(h)``. Computed under
  ``no_grad``; there is no trainable layer in the target path.
* A cell counts for a target block at level k only if **all** of its ``s*s`` patches are
  target tokens of that block. Partly covered cells are ignored: their average would mix in
  tokens the predictor never predicted (and some the context encoder saw).
* Prediction of a cell: the predictor's hidden states averaged over the cell's patches, mapped
  by that level's own light head (one ``Linear(pred_dim, embed_dim)``).
* Loss of a level: smooth L1 (as I-JEPA) averaged over the counted cells of all target blocks
  in the batch; a level with no counted cell in a batch adds 0 and reports 0 cells.
  Total loss = sum over levels of ``weight_k * loss_k``. One level is plain I-JEPA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train.jepa.vision_transformer import apply_masks, repeat_interleave_batch


class LevelHeads(nn.Module):
    """One light prediction head per level (level 0's is I-JEPA's ``predictor_proj``)."""

    def __init__(self, num_levels: int, predictor_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(predictor_dim, embed_dim) for _ in range(num_levels))
        for head in self.heads:
            nn.init.trunc_normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)

    def __len__(self) -> int:
        return len(self.heads)


def pool_grid(tokens: torch.Tensor, grid: int, cell: int) -> torch.Tensor:
    """Average ``(B, grid*grid, D)`` raster tokens over ``cell x cell`` groups: ``(B, n*n, D)``."""
    b, n, d = tokens.shape
    if n != grid * grid:
        raise ValueError(f"expected {grid * grid} tokens, got {n}")
    x = tokens.transpose(1, 2).reshape(b, d, grid, grid)
    x = F.avg_pool2d(x, kernel_size=cell, stride=cell)
    return x.flatten(2).transpose(1, 2)


@torch.no_grad()
def level_targets(target_features: torch.Tensor, grid: int, num_levels: int) -> list[torch.Tensor]:
    """Per level, ``layer_norm(avg_pool_k(h))`` of the full target-encoder output ``(B, N, D)``."""
    d = target_features.size(-1)
    return [F.layer_norm(pool_grid(target_features, grid, 2**k), (d,)) for k in range(num_levels)]


def covered_cells(
    target_masks: list[torch.Tensor], grid: int, cell: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which level cells each target block covers completely.

    Returns ``full`` (bool, ``(M, n_cells)``, ``M = num_targets * B`` mask-major) and ``slot``
    (long, ``(M, grid*grid)``) giving each grid position's column in the target token list
    (-1 where the block has no token).
    """
    idx = torch.cat(target_masks, dim=0)  # (M, n_tgt)
    m = idx.size(0)
    hit = torch.zeros(m, grid * grid, device=idx.device)
    hit.scatter_(1, idx, 1.0)
    slot = torch.full((m, grid * grid), -1, dtype=torch.long, device=idx.device)
    cols = torch.arange(idx.size(1), device=idx.device).expand(m, -1)
    slot.scatter_(1, idx, cols)
    counts = pool_grid(hit.unsqueeze(-1), grid, cell).squeeze(-1) * cell * cell
    return counts > cell * cell - 0.5, slot


def pooled_predictions(
    hidden: torch.Tensor, target_masks: list[torch.Tensor], grid: int, cell: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average predictor states ``(M, n_tgt, P)`` over fully covered cells.

    Returns ``(pooled, full)``: ``pooled`` is ``(M, n_cells, P)`` (meaningful only where
    ``full``), ``full`` the mask from :func:`covered_cells`.
    """
    full, slot = covered_cells(target_masks, grid, cell)
    m, _, p = hidden.shape
    dense = torch.zeros(m, grid * grid, p, device=hidden.device, dtype=hidden.dtype)
    present = slot >= 0
    gather_idx = slot.clamp(min=0).unsqueeze(-1).expand(-1, -1, p)
    dense = torch.where(present.unsqueeze(-1), torch.gather(hidden, 1, gather_idx), dense)
    return pool_grid(dense, grid, cell), full


def hierarchical_loss(
    hidden: torch.Tensor,
    heads: LevelHeads,
    targets: list[torch.Tensor],
    context_masks: list[torch.Tensor],
    target_masks: list[torch.Tensor],
    grid: int,
    weights: list[float],
) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
    """Weighted sum of the per-level smooth-L1 losses.

    ``hidden`` is the predictor output ``(num_targets * num_context * B, n_tgt, P)``;
    ``targets`` come from :func:`level_targets`. Returns ``(total, per_level, cells_per_level)``.
    """
    batch = targets[0].size(0)
    repeat = len(context_masks)
    losses, cells = [], []
    total = hidden.new_zeros(())
    for k, (target, weight) in enumerate(zip(targets, weights, strict=True)):
        if k == 0:  # I-JEPA exactly: every target token
            pred = heads.heads[0](hidden)
            tgt = repeat_interleave_batch(apply_masks(target, target_masks), batch, repeat)
            loss, n = F.smooth_l1_loss(pred, tgt), pred.shape[0] * pred.shape[1]
        else:
            pooled, full = pooled_predictions(
                hidden, _repeat_masks(target_masks, repeat), grid, 2**k
            )
            tgt = target.repeat(len(target_masks) * repeat, 1, 1)  # row r is sample r % batch
            n = int(full.sum())
            pred = heads.heads[k](pooled[full])
            # no counted cell: a zero that still touches the head, so DDP sees its gradient
            loss = F.smooth_l1_loss(pred, tgt[full]) if n else pred.sum() * 0.0
        losses.append(loss)
        cells.append(n)
        total = total + weight * loss
    return total, losses, cells


def _repeat_masks(target_masks: list[torch.Tensor], repeat: int) -> list[torch.Tensor]:
    """Target masks in the predictor's row order when there are several context masks."""
    if repeat == 1:
        return target_masks
    batch = target_masks[0].size(0)
    stacked = repeat_interleave_batch(torch.cat(target_masks), batch, repeat)
    return list(stacked.split(batch))
