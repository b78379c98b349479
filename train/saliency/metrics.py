"""Saliency metrics on one image, in numpy.

Definitions follow Bylinskii et al. 2018, "What do different evaluation metrics tell
us about saliency models?" (IEEE TPAMI 41(3)) and its MATLAB reference code
(github.com/cvzoya/saliency, ``code_forMetrics``); information gain follows
Kümmerer, Wallis & Bethge 2015, "Information-theoretic model comparison unifies
saliency metrics" (PNAS 112(52)).

``fixations`` are integer (x, y) pixel positions, shape (N, 2); a position listed twice
(two fixations in one grid cell) counts twice, as in pysaliency. ``saliency`` is any
non-negative map (a predicted density works); ``fixation_map`` is the ground-truth
continuous map. Each function scores one image; how ``train.saliency.evaluate`` averages
them over a split (over fixations for the fixation-based ones) is said there.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 2.220446049250313e-16  # MATLAB's eps, as in the reference code


def _at(values: np.ndarray, fixations: np.ndarray) -> np.ndarray:
    fix = np.asarray(fixations, dtype=int).reshape(-1, 2)
    return values[fix[:, 1], fix[:, 0]]


def information_gain(
    log_density: np.ndarray, baseline_log_density: np.ndarray, fixations: np.ndarray
) -> float:
    """Bits per fixation the model gains over the baseline (Kümmerer et al. 2015, eq. 1):
    mean over this image's fixations of log2 p_model(x_i) - log2 p_baseline(x_i).

    Both arguments are natural-log probabilities over the same pixel grid (each sums to 1).
    Over a set of images the gain is pooled over all fixations (pysaliency's default
    ``average='fixation'``), not averaged per image: ``train.saliency.evaluate``.
    """
    gain = _at(log_density, fixations) - _at(baseline_log_density, fixations)
    return float(gain.mean() / math.log(2))


def nss(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Normalized scanpath saliency: the map standardised to zero mean and unit standard
    deviation (N-1 normalisation, as MATLAB's ``std`` in the reference code), averaged at
    the fixations (each fixation counted, a pixel fixated twice twice, as pysaliency does;
    the MIT code's binary fixation map counts it once). 0 for a constant map (a one-pixel
    image included), which has no spread to standardise: tested as such, since the rounding
    of its mean leaves a spread of 1e-17 that would standardise to about +-1."""
    s = np.asarray(saliency, dtype=np.float64)
    if s.size == 0 or s.max() == s.min():
        return 0.0 if np.isfinite(s).all() else float("nan")
    z = (s - s.mean()) / s.std(ddof=1)
    return float(_at(z, fixations).mean())


def auc(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Area under the ROC curve of the map as a classifier of fixations against pixels:
    pysaliency's ``AUC`` for one image with its defaults (``nonfixations='uniform'``,
    ``thresholds='all'``; github.com/matthias-k/pysaliency). Every fixation is a positive
    (a cell fixated k times counts k times), every pixel of the map is a negative (fixated
    ones included), and the area is the exact one over all thresholds with ties counted
    1/2, i.e. the Mann-Whitney statistic P(s(fixation) > s(pixel)) + P(s(fixation) =
    s(pixel)) / 2. Always in [0, 1]; exactly 0.5 for a constant map; deterministic (no
    jitter). NaN when the map is not finite or there are no fixations.

    It is not the MIT benchmark's AUC-Judd (``AUC_Judd.m``), which takes the distinct fixated
    pixels against the unfixated ones, thresholds at the fixated values only and breaks ties
    by random jitter (github.com/matthias-k/saliency-benchmarking says why pysaliency does
    otherwise). This one matches the rest of the project, which reads pysaliency's HDF5 sets
    and scores information gain in pysaliency's sense."""
    s = np.asarray(saliency, dtype=np.float64)
    positives = _at(s, fixations)
    if len(positives) == 0 or not np.isfinite(s).all():
        return float("nan")
    negatives = np.sort(s.ravel())
    below = np.searchsorted(negatives, positives, side="left")  # pixels strictly lower
    not_above = np.searchsorted(negatives, positives, side="right")  # lower or equal
    return float((below.sum() + not_above.sum()) / (2 * len(positives) * negatives.size))


def cc(saliency: np.ndarray, fixation_map: np.ndarray) -> float:
    """Pearson's linear correlation coefficient between the two maps; 0 when either is
    constant (all-zero included), which has no variance to correlate (MATLAB gives NaN)."""
    a = np.asarray(saliency, dtype=np.float64).ravel()
    b = np.asarray(fixation_map, dtype=np.float64).ravel()
    if a.max() == a.min() or b.max() == b.min():
        return 0.0 if np.isfinite(a).all() and np.isfinite(b).all() else float("nan")
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def kl_div(saliency: np.ndarray, fixation_map: np.ndarray) -> float:
    """KL divergence of the saliency distribution P from the fixation distribution Q, both
    normalised to sum 1: sum Q log(eps + Q / (P + eps)), in nats. Lower is better.

    An all-zero saliency map predicts no mass anywhere: P is taken as 0 everywhere (not
    0/0), which the formula's eps turns into its worst, finite, value. An all-zero fixation
    map has no distribution to compare against: ValueError."""
    p = np.asarray(saliency, dtype=np.float64)
    q = np.asarray(fixation_map, dtype=np.float64)
    if q.sum() == 0:
        raise ValueError("KL divergence: the fixation map has no mass (it sums to 0)")
    p, q = _to_sum_1(p), q / q.sum()
    return float((q * np.log(EPS + q / (p + EPS))).sum())


def _to_sum_1(m: np.ndarray) -> np.ndarray:
    """``m`` divided by its sum; an all-zero map (sum 0) stays all zero."""
    total = m.sum()
    return m / total if total != 0 else m


def _minmax_then_sum(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    span = m.max() - m.min()
    if span > 0:
        m = (m - m.min()) / span
    return _to_sum_1(m)


def sim(saliency: np.ndarray, fixation_map: np.ndarray) -> float:
    """Similarity (histogram intersection): both maps scaled to [0, 1], then to sum 1,
    then sum of the pixel-wise minimum. 1 means identical distributions. An all-zero map
    has no mass to share, so its similarity to any map is 0 (the MATLAB code gives NaN); a
    constant non-zero map is the uniform distribution."""
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
        "auc": auc(density, fixations),
        "cc": cc(density, fixation_map),
        "kl": kl_div(density, fixation_map),
        "sim": sim(density, fixation_map),
    }
