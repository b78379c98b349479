"""Score a model, and the centre-bias baseline, on a list of grid stimuli.

Every metric is computed per stimulus on its valid (unpadded) rectangle and then
averaged over stimuli. ``info_gain`` is the model's gain over the centre bias in bits
per fixation (Kümmerer et al. 2015); the baseline's own scores are reported beside
the model's under ``centre_bias_*`` so each number has its reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from train.saliency.batching import GridSample, collate
from train.saliency.centre_bias import masked
from train.saliency.metrics import all_metrics


def _crop(g: GridSample) -> tuple[slice, slice]:
    rows, cols = np.nonzero(g.mask.any(1))[0], np.nonzero(g.mask.any(0))[0]
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def score_stimulus(log_density: np.ndarray, g: GridSample, centre_bias_log: np.ndarray) -> dict:
    """Model and centre-bias metrics for one stimulus."""
    rs, cs = _crop(g)
    fix = g.fixations - [cs.start, rs.start]
    lp = log_density[rs, cs]
    base = masked(centre_bias_log, g.mask)[rs, cs]
    fmap = g.fixation_map[rs, cs]
    out = all_metrics(lp, base, fix, fmap)
    out["nll"] = float(-lp[fix[:, 1], fix[:, 0]].mean())
    uniform = np.full(lp.shape, -math.log(lp.size))
    for k, v in all_metrics(base, uniform, fix, fmap).items():
        out[f"centre_bias_{'info_gain_over_uniform' if k == 'info_gain' else k}"] = v
    return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    items: list[GridSample],
    centre_bias_log: np.ndarray,
    batch_size: int = 16,
) -> dict[str, float]:
    """Mean of every metric over ``items`` (empty dict when there are none)."""
    if not items:
        return {}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = collate(chunk)
        logp = model(batch["image"].to(device), batch["mask"].to(device)).double().cpu().numpy()
        rows += [score_stimulus(lp, g, centre_bias_log) for lp, g in zip(logp, chunk, strict=True)]
    model.train(was_training)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
