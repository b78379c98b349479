"""The centre-bias baseline that information gain is measured against.

Kümmerer et al. 2015 (PNAS) measure a model by the log-likelihood it gains over a
baseline that ignores the image; the usual baseline is the centre bias: a Gaussian
kernel density of all training fixations on a common grid. Its bandwidth is chosen
by held-out likelihood (fit on half the training images, score on the other half),
and a small uniform component keeps every cell possible.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import logsumexp

from train.saliency.batching import GridSample

BANDWIDTHS = (0.02, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24)  # in units of the grid side
UNIFORM_WEIGHT = 0.01


def _counts(items: list[GridSample], grid: int) -> np.ndarray:
    c = np.zeros((grid, grid))
    for g in items:
        np.add.at(c, (g.fixations[:, 1], g.fixations[:, 0]), 1.0)
    return c


def density_log(counts: np.ndarray, bandwidth: float) -> np.ndarray:
    """Log of the blurred, normalised histogram mixed with a uniform distribution."""
    grid = counts.shape[0]
    dens = gaussian_filter(counts, bandwidth * grid, mode="constant")
    dens = dens / dens.sum() if dens.sum() > 0 else np.full_like(counts, 1.0 / counts.size)
    return np.log((1 - UNIFORM_WEIGHT) * dens + UNIFORM_WEIGHT / counts.size)


def masked(log_density: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Renormalise a grid log-density to the stimulus' valid pixels (-inf on the padding)."""
    out = np.where(mask, log_density, -np.inf)
    return out - logsumexp(out[mask])


def fit_centre_bias(items: list[GridSample], grid: int) -> tuple[np.ndarray, float]:
    """Return (log-density on the grid, chosen bandwidth) from training stimuli."""
    if len(items) < 2:
        return density_log(_counts(items, grid), BANDWIDTHS[2]), BANDWIDTHS[2]
    a, b = items[0::2], items[1::2]
    ca = _counts(a, grid)
    scores = []
    for bw in BANDWIDTHS:
        logp = density_log(ca, bw)
        scores.append(
            np.mean([masked(logp, g.mask)[g.fixations[:, 1], g.fixations[:, 0]].mean() for g in b])
        )
    best = BANDWIDTHS[int(np.argmax(scores))]
    return density_log(_counts(items, grid), best), best
