"""The metrics' definitions against references written here, independently of the code:

* AUC is pysaliency's ``AUC`` (every fixation a positive, every pixel a negative, ties
  1/2), checked against a brute-force pairwise Mann-Whitney count and scikit-learn's
  ``roc_auc_score``;
* over a split, the fixation-based metrics (information gain, NSS, AUC, NLL) are pooled
  over fixations (pysaliency's ``average='fixation'``), the map-based ones (CC, KL, SIM)
  averaged over stimuli, checked by hand on two stimuli with 1 and 9 fixations;
* maps without mass or variance give defined values, not NaN.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from train.saliency.batching import GridSample
from train.saliency.evaluate import PER_FIXATION, evaluate
from train.saliency.metrics import EPS, all_metrics, auc, cc, kl_div, nss, sim


def mann_whitney_auc(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """Each (fixation, pixel) pair: 1 if the map is higher at the fixation, 1/2 if equal."""
    s = np.asarray(saliency, dtype=np.float64)
    pixels = s.ravel().tolist()
    total = 0.0
    for x, y in np.asarray(fixations).tolist():
        v = s[y, x]
        total += sum(1.0 if v > p else 0.5 if v == p else 0.0 for p in pixels)
    return total / (len(fixations) * len(pixels))


def sklearn_auc(saliency: np.ndarray, fixations: np.ndarray) -> float:
    s = np.asarray(saliency, dtype=np.float64)
    pos = s[fixations[:, 1], fixations[:, 0]]
    labels = np.r_[np.ones(len(pos)), np.zeros(s.size)]
    return float(roc_auc_score(labels, np.r_[pos, s.ravel()]))


def random_fixations(rng: np.random.Generator, shape: tuple[int, int], n: int) -> np.ndarray:
    h, w = shape
    return np.stack([rng.integers(0, w, n), rng.integers(0, h, n)], axis=1)


def check_auc(saliency: np.ndarray, fixations: np.ndarray) -> float:
    got = auc(saliency, fixations)
    assert 0.0 <= got <= 1.0
    assert got == pytest.approx(mann_whitney_auc(saliency, fixations), abs=1e-12)
    assert got == pytest.approx(sklearn_auc(saliency, fixations), abs=1e-12)
    return got


# --- AUC ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_auc_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(2, 20)), int(rng.integers(2, 20)))
    s = rng.random(shape)
    check_auc(s, random_fixations(rng, shape, int(rng.integers(1, 40))))


@pytest.mark.parametrize("levels", [2, 3, 8])
def test_auc_on_maps_with_many_ties(levels):
    rng = np.random.default_rng(levels)
    s = rng.integers(0, levels, (12, 15)).astype(float)  # at most `levels` distinct values
    check_auc(s, random_fixations(rng, s.shape, 30))
    # a flat top: the whole upper part of a smooth map tied at its cap
    yy, xx = np.mgrid[:16, :16]
    flat_top = np.minimum(np.exp(-((xx - 8) ** 2 + (yy - 6) ** 2) / 30.0), 0.3)
    check_auc(flat_top, random_fixations(rng, flat_top.shape, 25))


def test_auc_with_duplicate_fixations_counts_each_one():
    rng = np.random.default_rng(7)
    s = rng.random((10, 10))
    top = np.unravel_index(np.argmax(s), s.shape)  # (row, col)
    # 30 fixations on the peak and one on a corner: the reviewer's case, which gave 0.999
    fix = np.array([[top[1], top[0]]] * 30 + [[0, 0]])
    got = check_auc(s, fix)
    corner_rank = (s < s[0, 0]).sum() + 0.5
    assert got == pytest.approx((30 * 99.5 + corner_rank) / (31 * 100))
    # 300 fixations clustered on a 32 x 32 grid, many in one cell: was 1.054, above 1
    yy, xx = np.mgrid[:32, :32]
    smap = np.exp(-((xx - 16) ** 2 + (yy - 12) ** 2) / 60.0) + 0.01 * rng.random((32, 32))
    fx = np.clip(rng.normal(16, 4, 300).round(), 0, 31)
    fy = np.clip(rng.normal(12, 4, 300).round(), 0, 31)
    clustered = np.stack([fx, fy], 1).astype(int)
    assert len(np.unique(clustered, axis=0)) < 250
    check_auc(smap, clustered)


def test_auc_of_a_constant_map_is_one_half():
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 7), (9, 4), (32, 32)]:
        fix = random_fixations(rng, shape, 20)
        for value in (0.0, 1.0, 1e-300):
            assert auc(np.full(shape, value), fix) == 0.5


def test_auc_of_a_one_pixel_image_is_one_half():
    assert auc(np.array([[0.7]]), np.array([[0, 0]])) == 0.5
    assert auc(np.array([[0.7]]), np.array([[0, 0]] * 5)) == 0.5


def test_auc_extremes_and_hand_cases():
    s = np.array([[0.1, 0.2], [0.3, 0.4]])
    # 0.4 is above 3 pixels and ties itself: (3 + 1/2) / 4
    assert auc(s, np.array([[1, 1]])) == 0.875
    # 0.1 is above none and ties itself: (1/2) / 4
    assert auc(s, np.array([[0, 0]])) == 0.125
    # one map, fixations at the single maximum of n pixels: 1 - 1/(2n), the best possible
    big = np.arange(100.0).reshape(10, 10)
    assert auc(big, np.array([[9, 9]] * 4)) == pytest.approx(1 - 1 / 200)
    assert auc(big, np.array([[0, 0]])) == pytest.approx(1 / 200)


def test_auc_is_deterministic_and_ignores_the_global_random_state():
    rng = np.random.default_rng(11)
    s = np.round(rng.random((20, 20)), 1)
    fix = random_fixations(rng, s.shape, 50)
    np.random.seed(0)
    a = auc(s, fix)
    np.random.seed(1)
    assert auc(s, fix) == a


def test_auc_is_nan_without_fixations_or_with_a_non_finite_map():
    assert math.isnan(auc(np.ones((3, 3)), np.zeros((0, 2), dtype=int)))
    bad = np.ones((3, 3))
    bad[1, 1] = np.nan
    assert math.isnan(auc(bad, np.array([[0, 0]])))


# --- maps without mass or variance ----------------------------------------------------------


def test_all_zero_and_constant_maps_give_defined_values_without_warnings():
    rng = np.random.default_rng(5)
    fmap = rng.random((6, 8))
    zeros = np.zeros((6, 8))
    fix = random_fixations(rng, fmap.shape, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # SIM: an all-zero map has no mass in common with anything
        assert sim(zeros, fmap) == 0.0
        assert sim(fmap, zeros) == 0.0
        assert sim(zeros, zeros) == 0.0
        # a constant non-zero map is the uniform distribution: sum of min(1/n, q_i)
        q = (fmap - fmap.min()) / (fmap.max() - fmap.min())
        q = q / q.sum()
        assert sim(np.full_like(fmap, 3.0), fmap) == pytest.approx(np.minimum(1 / 48, q).sum())
        # CC: no variance, no correlation
        assert cc(zeros, fmap) == 0.0
        assert cc(np.full_like(fmap, 2.0), fmap) == 0.0
        # KL: an all-zero prediction puts P = 0 everywhere; the eps makes that finite
        qn = fmap / fmap.sum()
        expected = float((qn * np.log(EPS + qn / EPS)).sum())
        assert kl_div(zeros, fmap) == pytest.approx(expected)
        assert kl_div(zeros, fmap) > kl_div(np.ones_like(fmap), fmap)
        # a constant prediction is the uniform one
        assert kl_div(np.full_like(fmap, 5.0), fmap) == pytest.approx(
            float((qn * np.log(EPS + qn / (1 / 48 + EPS))).sum())
        )
        # NSS: a constant map and a one-pixel image score 0
        assert nss(np.full_like(fmap, 2.0), fix) == 0.0
        assert nss(np.array([[0.3]]), np.array([[0, 0]])) == 0.0
    # constant maps whose mean rounds off their value (0.1 x 1000: the mean is 0.1 + 1e-17):
    # standardising that spread of 1e-17 gave NSS +-1 and CC noise; they are 0
    for value, n in ((0.1, 1000), (0.7, 48 * 48), (1 / 3, 7), (0.05, 2304)):
        flat = np.full((1, n), value)
        assert flat.mean() != value or n == 7  # the rounding that made the noise
        assert nss(flat, np.array([[0, 0], [n - 1, 0]])) == 0.0
        assert cc(flat, np.arange(n, dtype=float)) == 0.0
        assert auc(flat, np.array([[0, 0]])) == 0.5
    with pytest.raises(ValueError, match="no mass"):
        kl_div(fmap, zeros)


# --- averaging over a split -----------------------------------------------------------------

SIDE = 4
# The model's density: 1/4 on cell (0, 0), the remaining 3/4 spread over the other 15 cells.
DENSITY = np.full((SIDE, SIDE), 3 / 4 / 15)
DENSITY[0, 0] = 1 / 4
UNIFORM_LOG = np.full((SIDE, SIDE), -math.log(SIDE * SIDE))


class FixedDensity(torch.nn.Module):
    """A 'model' predicting DENSITY for every image."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.from_numpy(DENSITY)).expand(image.shape[0], SIDE, SIDE).clone()


def stimulus(fixations: list[tuple[int, int]], seed: int) -> GridSample:
    rng = np.random.default_rng(seed)
    fmap = rng.random((SIDE, SIDE))
    return GridSample(
        image=rng.integers(0, 256, (3, SIDE, SIDE), dtype=np.uint8),
        mask=np.ones((SIDE, SIDE), dtype=bool),
        fixations=np.array(fixations, dtype=np.int64),
        fixation_map=fmap / fmap.sum(),
        category="",
    )


def test_fixation_metrics_are_pooled_over_fixations_map_metrics_over_stimuli():
    # A: 1 fixation on the 1/4 cell; B: 9 fixations on 1/20 cells (two on one cell).
    a = stimulus([(0, 0)], seed=0)
    b = stimulus([(1, 0), (2, 0), (3, 0), (0, 1), (1, 1), (2, 2), (3, 3), (3, 3), (0, 3)], seed=1)
    got = evaluate(FixedDensity(), [a, b], UNIFORM_LOG, batch_size=1)

    # information gain over the uniform centre bias, by hand: log2((1/4)/(1/16)) = 2 bits at
    # A's fixation, log2((1/20)/(1/16)) = log2(0.8) at each of B's nine
    per_fixation = [2.0] + [math.log2(0.8)] * 9
    pooled = sum(per_fixation) / 10  # -0.0897: the model loses on the split's fixations
    per_stimulus = (2.0 + math.log2(0.8)) / 2  # +0.839: what the per-stimulus mean said
    assert got["info_gain"] == pytest.approx(pooled, abs=1e-12)
    assert got["info_gain"] != pytest.approx(per_stimulus, abs=0.1)
    # negative log-likelihood in nats, pooled the same way
    assert got["nll"] == pytest.approx((math.log(4) + 9 * math.log(20)) / 10, abs=1e-12)
    # AUC: A's fixation is above 15 cells and ties itself, B's tie with 15 and are above none
    auc_a, auc_b = 15.5 / 16, 7.5 / 16
    assert got["auc"] == pytest.approx((auc_a + 9 * auc_b) / 10, abs=1e-12)
    # NSS: the map's z-scores (N-1 std) at the fixations, pooled
    z = (DENSITY - DENSITY.mean()) / DENSITY.std(ddof=1)
    assert got["nss"] == pytest.approx((z[0, 0] + 9 * z[0, 1]) / 10, abs=1e-12)
    # the centre bias against uniform is uniform against uniform: 0 bits, AUC 1/2, NSS 0
    assert got["centre_bias_info_gain_over_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert got["centre_bias_auc"] == 0.5 and got["centre_bias_nss"] == 0.0
    # map-based metrics stay means over stimuli
    for key, metric in (("cc", cc), ("kl", kl_div), ("sim", sim)):
        each = [metric(DENSITY, g.fixation_map) for g in (a, b)]
        assert got[key] == pytest.approx(np.mean(each), abs=1e-12), key
    # every key is placed on purpose: a new metric has to be put on one side or the other
    map_based = {"cc", "kl", "sim", "centre_bias_cc", "centre_bias_kl", "centre_bias_sim"}
    assert set(got) == PER_FIXATION | map_based and not PER_FIXATION & map_based
    # batching does not change anything
    assert evaluate(FixedDensity(), [a, b], UNIFORM_LOG, batch_size=2) == pytest.approx(got)


def test_pooled_information_gain_equals_the_sum_of_gains_over_the_fixation_count():
    rng = np.random.default_rng(2)
    items = [
        stimulus([tuple(p) for p in random_fixations(rng, (SIDE, SIDE), n)], seed=n)
        for n in (1, 3, 60, 5)
    ]
    base = rng.random((SIDE, SIDE))
    base_log = np.log(base / base.sum())
    got = evaluate(FixedDensity(), items, base_log, batch_size=3)
    gains = [
        math.log2(DENSITY[y, x]) - base_log[y, x] / math.log(2)
        for g in items
        for x, y in g.fixations.tolist()
    ]
    assert got["info_gain"] == pytest.approx(sum(gains) / len(gains), abs=1e-12)


# --- best.pt is chosen by the pooled validation information gain ---------------------------


def test_best_epoch_is_the_one_with_the_highest_pooled_validation_gain(
    tiny_config, tmp_path, synth
):
    from train.checkpoint import load_checkpoint
    from train.saliency.__main__ import main
    from train.saliency.batching import collate
    from train.saliency.centre_bias import masked
    from train.saliency.config import load_config
    from train.saliency.loop import build_data
    from train.saliency.model import SaliencyNet

    out = tmp_path / "run"
    cfg_path = tiny_config("baseline", synth, epochs=3)
    assert main(["--config", str(cfg_path), "--out", str(out), "--quiet"]) == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    res = json.loads((out / "results.json").read_text())
    best = max(epochs, key=lambda r: r["val_info_gain"])
    assert res["best_epoch"] == best["epoch"] and res["val_info_gain"] == best["val_info_gain"]
    assert res["val"]["auc"] == best["val_auc"] and "auc_judd" not in res["val"]

    # best.pt's weights, scored fixation by fixation on the validation stimuli, by hand
    cfg = load_config(cfg_path)
    data = build_data(cfg)
    state = load_checkpoint(out / "best.pt")
    model = SaliencyNet(cfg.model.encoder, cfg.model.width, cfg.model.centre_bias_size)
    model.load_state_dict(state["model"])
    model.eval()
    cb_log = state["centre_bias_log"].numpy()
    gains, per_stimulus = [], []
    items, size = data.val.items, cfg.train.batch_size  # the batches evaluate uses
    for chunk in (items[i : i + size] for i in range(0, len(items), size)):
        batch = collate(chunk)
        with torch.no_grad():
            logp = model(batch["image"], batch["mask"]).double().numpy()
        for lp, g in zip(logp, chunk, strict=True):
            base = masked(cb_log, g.mask)
            mine = [(lp[y, x] - base[y, x]) / math.log(2) for x, y in g.fixations.tolist()]
            gains += mine
            per_stimulus.append(np.mean(mine))
    assert len({len(g.fixations) for g in items}) > 1  # so the two averages differ
    assert res["val_info_gain"] == pytest.approx(np.mean(gains), abs=1e-9)
    assert abs(np.mean(gains) - np.mean(per_stimulus)) > 1e-3
    assert res["test"]["auc"] == res["test"]["auc"]  # present, not NaN
    assert all(0 <= r["val_auc"] <= 1 for r in epochs)


def test_all_metrics_names():
    lp = np.log(DENSITY)
    assert set(all_metrics(lp, UNIFORM_LOG, np.array([[0, 0]]), DENSITY)) == {
        "info_gain",
        "nss",
        "auc",
        "cc",
        "kl",
        "sim",
    }
