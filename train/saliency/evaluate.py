"""Score a model, and the centre-bias baseline, on a list of grid stimuli.

Every metric is computed per stimulus on its valid (unpadded) rectangle. Over the list
they are averaged as pysaliency does by default (``average='fixation'``): the
fixation-based ones (information gain, NSS, AUC, the negative log-likelihood ``nll``)
over all fixations, so a stimulus with 60 fixations weighs twelve times one with 5 (for
``info_gain``: the sum of every fixation's gain divided by the number of fixations);
the map-based ones (CC, KL, SIM) over stimuli. ``info_gain`` is the model's gain over the
centre bias in bits per fixation (Kümmerer et al. 2015); the baseline's own scores are
reported beside the model's under ``centre_bias_*`` so each number has its reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from train.saliency.batching import GridSample, collate
from train.saliency.centre_bias import masked
from train.saliency.metrics import all_metrics

# Averaged over all fixations of the list; every other key over its stimuli.
PER_FIXATION = frozenset(
    {"info_gain", "nss", "auc", "nll"}
    | {f"centre_bias_{k}" for k in ("info_gain_over_uniform", "nss", "auc")}
)


def _crop(g: GridSample) -> tuple[slice, slice]:
    rows, cols = np.nonzero(g.mask.any(1))[0], np.nonzero(g.mask.any(0))[0]
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def score_stimulus(log_density: np.ndarray, g: GridSample, centre_bias_log: np.ndarray) -> dict:
    """Model and centre-bias metrics for one stimulus (each a mean over its fixations or
    over its map)."""
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
    """Every metric over ``items`` (empty dict when there are none): the keys of
    ``PER_FIXATION`` pooled over all fixations, the others the mean over stimuli."""
    if not items:
        return {}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows, counts = [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = collate(chunk)
        logp = model(batch["image"].to(device), batch["mask"].to(device)).double().cpu().numpy()
        rows += [score_stimulus(lp, g, centre_bias_log) for lp, g in zip(logp, chunk, strict=True)]
        counts += [len(g.fixations) for g in chunk]
    model.train(was_training)
    return average(rows, counts)


def average(rows: list[dict], fixation_counts: list[int]) -> dict[str, float]:
    """The split's metrics from its stimuli's ``rows``: a key of ``PER_FIXATION`` is the
    mean of its per-stimulus values weighted by their fixation counts, which is the mean over
    all fixations pooled (for AUC, pysaliency's weighting of per-image AUCs); any other key
    is the plain mean over stimuli."""
    weights = np.asarray(fixation_counts, dtype=np.float64)
    out = {}
    for k in rows[0]:
        values = np.asarray([r[k] for r in rows], dtype=np.float64)
        if k in PER_FIXATION:
            out[k] = float((values * weights).sum() / weights.sum())
        else:
            out[k] = float(values.mean())
    return out
