"""Empirical fixation density: fixations blurred by a Gaussian.

This is how MIT1003's ``_fixMap`` images were made (Judd et al. 2009: a Gaussian
over the fixation locations, about one degree of visual angle, ~30 px at 1024 px
wide) and is the ground truth of CC, KL and SIM when a layout ships no map.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA_FRACTION = 0.03  # of the longer side; 30 px on MIT1003's 1024 px stimuli


def fixation_counts(fixations: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Histogram of fixations on the pixel grid; out-of-image fixations are clipped to the edge."""
    h, w = size
    counts = np.zeros((h, w), dtype=np.float64)
    if len(fixations):
        xs = np.clip(np.floor(fixations[:, 0]).astype(int), 0, w - 1)
        ys = np.clip(np.floor(fixations[:, 1]).astype(int), 0, h - 1)
        np.add.at(counts, (ys, xs), 1.0)
    return counts


def fixation_density(
    fixations: np.ndarray, size: tuple[int, int], sigma: float | None = None
) -> np.ndarray:
    """A map that sums to 1 (uniform when there are no fixations)."""
    sigma = SIGMA_FRACTION * max(size) if sigma is None else sigma
    dens = gaussian_filter(fixation_counts(fixations, size), sigma, mode="constant")
    total = dens.sum()
    if total <= 0:
        return np.full(size, 1.0 / (size[0] * size[1]))
    return dens / total
