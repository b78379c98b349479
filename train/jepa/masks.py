"""Multi-block masking of I-JEPA (Assran et al. 2023, Sec. 3; ijepa ``src/masks/multiblock.py``).

Per batch: one target-block size and one context-block size are drawn (as in I-JEPA, so that
every sample has the same number of target tokens and the predictions stack). Per sample:
``num_targets`` target blocks are placed at random, then the context block is placed at random
and every target block is cut out of it; a context that keeps fewer than ``min_keep`` tokens is
redrawn. Context masks are then cut to the shortest one in the batch (I-JEPA's
``min_keep_enc``), keeping the first tokens in raster order.

Unlike I-JEPA, the scale and the aspect ratio of a block come from two independent random
numbers (I-JEPA draws both from one, so large blocks were always the most elongated).

Token indices are raster order on the ``grid x grid`` patch grid: ``index = row * grid + col``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import default_collate


@dataclass(frozen=True)
class BlockSize:
    height: int
    width: int


def sample_block_size(
    grid: int,
    scale: tuple[float, float],
    aspect: tuple[float, float],
    generator: torch.Generator,
) -> BlockSize:
    """A block of about ``s * grid**2`` patches with height/width about ``a``, s and a drawn apart."""
    u_scale, u_aspect = torch.rand(2, generator=generator).tolist()
    s = scale[0] + u_scale * (scale[1] - scale[0])
    a = aspect[0] + u_aspect * (aspect[1] - aspect[0])
    area = s * grid * grid
    h = int(round(math.sqrt(area * a)))
    w = int(round(math.sqrt(area / a)))
    return BlockSize(min(max(h, 1), grid), min(max(w, 1), grid))


def block_mask(grid: int, size: BlockSize, generator: torch.Generator) -> torch.Tensor:
    """A ``grid x grid`` boolean mask with one block of ``size`` at a uniformly random position."""
    top = int(torch.randint(0, grid - size.height + 1, (1,), generator=generator))
    left = int(torch.randint(0, grid - size.width + 1, (1,), generator=generator))
    mask = torch.zeros(grid, grid, dtype=torch.bool)
    mask[top : top + size.height, left : left + size.width] = True
    return mask


class MultiBlockMaskCollator:
    """Collate images and draw the context and target masks of one batch.

    Returns ``(batch, context_masks, target_masks)`` where ``context_masks`` is a list of
    ``num_context`` LongTensors of shape ``(B, n_ctx)`` and ``target_masks`` a list of
    ``num_targets`` LongTensors of shape ``(B, n_tgt)``, each row sorted token indices.

    Randomness: a generator seeded from torch's default RNG once per batch, which the loader
    (``data_pipeline.SeededDraws``) seeds per sample: the same masks every run, whatever the
    number of workers.
    """

    def __init__(
        self,
        grid: int,
        num_context: int = 1,
        num_targets: int = 4,
        context_scale: tuple[float, float] = (0.85, 1.0),
        context_aspect: tuple[float, float] = (1.0, 1.0),
        target_scale: tuple[float, float] = (0.15, 0.2),
        target_aspect: tuple[float, float] = (0.75, 1.5),
        min_keep: int = 4,
        max_tries: int = 50,
    ) -> None:
        self.grid = grid
        self.num_context = num_context
        self.num_targets = num_targets
        self.context_scale = context_scale
        self.context_aspect = context_aspect
        self.target_scale = target_scale
        self.target_aspect = target_aspect
        self.min_keep = min_keep
        self.max_tries = max_tries

    @classmethod
    def from_config(cls, mask_cfg, grid: int) -> MultiBlockMaskCollator:  # noqa: ANN001
        return cls(grid=grid, **mask_cfg.model_dump())

    def sample_masks(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        g = self.grid
        for _ in range(self.max_tries):
            tgt_size = sample_block_size(g, self.target_scale, self.target_aspect, generator)
            ctx_size = sample_block_size(g, self.context_scale, self.context_aspect, generator)
            drawn = [self._sample_one(tgt_size, ctx_size, generator) for _ in range(batch_size)]
            if all(d is not None for d in drawn):
                break
        else:
            raise RuntimeError(
                f"could not draw a context of >= {self.min_keep} tokens in {self.max_tries} tries; "
                "lower mask.min_keep or mask.target_scale"
            )
        contexts = [[d[0][i] for d in drawn] for i in range(self.num_context)]
        targets = [[d[1][i] for d in drawn] for i in range(self.num_targets)]
        shortest = min(len(m) for per_ctx in contexts for m in per_ctx)
        context_masks = [torch.stack([m[:shortest] for m in per_ctx]) for per_ctx in contexts]
        target_masks = [torch.stack(per_tgt) for per_tgt in targets]
        return context_masks, target_masks

    def _sample_one(
        self, tgt_size: BlockSize, ctx_size: BlockSize, generator: torch.Generator
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]] | None:
        targets = [block_mask(self.grid, tgt_size, generator) for _ in range(self.num_targets)]
        covered = torch.stack(targets).any(0)
        for _ in range(self.max_tries):
            contexts = [
                block_mask(self.grid, ctx_size, generator) & ~covered
                for _ in range(self.num_context)
            ]
            if all(int(c.sum()) >= self.min_keep for c in contexts):
                as_idx = [torch.nonzero(c.flatten()).squeeze(1) for c in contexts]
                return as_idx, [torch.nonzero(t.flatten()).squeeze(1) for t in targets]
        return None

    def __call__(self, samples: list) -> tuple[object, list[torch.Tensor], list[torch.Tensor]]:
        batch = default_collate(samples)
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        context_masks, target_masks = self.sample_masks(len(samples), generator)
        return batch, context_masks, target_masks
