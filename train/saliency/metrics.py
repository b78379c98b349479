"""Saliency metrics on one image, in numpy.

Definitions follow Bylinskii et al. 2018, "What do different evaluation metrics tell
us about saliency models?" (IEEE TPAMI 41(3)) and its MATLAB reference code
(github.com/cvzoya/saliency, ``code_forMetrics``); information gain follows
Kümmerer, Wallis & Bethge 2015, "Information-theoretic model comparison unifies
saliency metrics" (PNAS 112(52)).

``fixations`` are integer (x, y) pixel positions, shape (N, 2). ``saliency`` is any
non-negative map (a predicted density works); ``fixation_map`` is the ground-truth
continuous map.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 2.220446049250313e-16  # MATLAB's eps, as in the reference code


def _at(values: np.ndarray, fixations: np.ndarray) -> np.ndarray:
    fix = np.asarray(fixations, dtype=int)
    return values[fix[:, 1], fix[:, 0]]


def information_gain(
    log_density: np.ndarray, baseline_log_density: np.ndarray, fixations: np.ndarray
) -> float:
    """Bits per fixation the model gains over the baseline (Kümmerer et al. 2015, eq. 1):
    mean over fixations of log2 p_model(x_i) - log2 p_baseline(x_i).

    Both arguments are natural-log probabilities over the same pixel grid (each sums to 1).
    """
    gain = _at(log_density, fixations) - _at(baseline_log_density, fixations)
    return float(gain.mean() / math.log(2))


def nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Normalized scanpath saliency: the map standardised to zero mean and unit standard
    deviation (N-1 normalisation, as MATLAB's ``std`` in the reference code), averaged at
    the fixations."""
    s = np.asarray(saliency, dtype=np.float64)
    std = s.std(ddof=1)
    z = (s - s.mean()) / (std if std > 0 else 1.0)
    return float(_at(z, fixations).mean())


def auc_judd(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """AUC-Judd: thresholds at the saliency of each fixation; the true-positive rate is the
    share of fixations at or above it, the false-positive rate the share of the other
    pixels at or above it; the curve runs from (0, 0) to (1, 1), integrated by trapezoids.
    (The reference code's optional tie-breaking jitter is left out.)"""
    s = np.asarray(saliency, dtype=np.float64).ravel()
    fix_values = np.sort(_at(np.asarray(saliency, dtype=np.float64), fixations))[::-1]
    n_fix, n_pix = len(fix_values), s.size
    sorted_s = np.sort(s)
    tp = np.zeros(n_fix + 2)
    fp = np.zeros(n_fix + 2)
    tp[-1] = fp[-1] = 1.0
    for i, thresh in enumerate(fix_values, start=1):
        above = n_pix - np.searchsorted(sorted_s, thresh, side="left")
        tp[i] = i / n_fix
        fp[i] = (above - i) / max(n_pix - n_fix, 1)
    return float(np.sum((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1]) / 2))


def cc(saliency: np.ndarray, fixation_map: np.ndarray) -> float:
    """Pearson's linear correlation coefficient between the two maps."""
    a = np.asarray(saliency, dtype=np.float64).ravel()
    b = np.asarray(fixation_map, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def kl_div(saliency: np.ndarray, fixation_map: np.ndarray) -> float:
    """KL divergence of the saliency distribution P from the fixation distribution Q, both
    normalised to sum 1: sum Q log(eps + Q / (P + eps)), in nats. Lower is better."""
    p = np.asarray(saliency, dtype=np.float64)
    q = np.asarray(fixation_map, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    return float((q * np.log(EPS + q / (p + EPS))).sum())


def _minmax_then_sum(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    span = m.max() - m.min()
    if span > 0:
        m = (m - m.min()) / span
    return m / m.sum()


def sim(saliency: np.ndarray, fixation_map: np.ndarray) -> float:
    """Similarity (histogram intersection): both maps scaled to [0, 1], then to sum 1,
    then sum of the pixel-wise minimum. 1 means identical distributions."""
    return float(np.minimum(_minmax_then_sum(saliency), _minmax_then_sum(fixation_map)).sum())


def all_metrics(
    log_density: np.ndarray,
    baseline_log_density: np.ndarray,
    fixations: np.ndarray,
    fixation_map: np.ndarray,
) -> dict[str, float]:
    """Every metric of one image for a model given as a log-density."""
    density = np.exp(log_density)
    return {
        "info_gain": information_gain(log_density, baseline_log_density, fixations),
        "nss": nss(density, fixations),
        "auc_judd": auc_judd(density, fixations),
        "cc": cc(density, fixation_map),
        "kl": kl_div(density, fixation_map),
        "sim": sim(density, fixation_map),
    }
