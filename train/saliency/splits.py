"""Fixed, seeded train/val/test splits, drawn per category.

Each category is shuffled by its own generator, seeded by (seed, CRC32 of its name),
so a category's split depends only on the seed and that category's stimuli: CAT2000's
20 categories stay balanced, and adding stimuli to one category moves no other.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np

from train.saliency.records import StimulusRef


def split_indices(
    refs: list[StimulusRef], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Return sorted stimulus indices for ``train``, ``val`` and ``test``.

    Per category: ``round(n * fraction)`` for val and test, at least one each when the
    fraction is positive and the category has three or more stimuli; the rest train.
    """
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, ref in enumerate(refs):
        by_cat[ref.category].append(i)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for cat in sorted(by_cat):
        idx = sorted(by_cat[cat], key=lambda i: refs[i].key)
        rng = np.random.default_rng([seed, zlib.crc32(cat.encode())])
        order = [idx[j] for j in rng.permutation(len(idx))]
        n = len(order)
        n_val = _count(n, val_fraction)
        n_test = _count(n, test_fraction)
        out["val"] += order[:n_val]
        out["test"] += order[n_val : n_val + n_test]
        out["train"] += order[n_val + n_test :]
    return {k: sorted(v) for k, v in out.items()}


def _count(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    k = int(round(n * fraction))
    return max(k, 1) if n >= 3 else k
