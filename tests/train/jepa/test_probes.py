import math

import torch

from train.jepa.collapse import CollapseWatch, std_ratio
from train.jepa.probes import (
    knn_correct,
    knn_predict,
    linear_probe_accuracy,
    mcnemar_greater,
    rankme,
)


def test_knn_weighted_vote_hand_computed():
    # train points at angles; test point (1, 0). k=3, T=0.5.
    train = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    test = torch.tensor([[1.0, 0.0]])
    # sims: 1, 0.7071, 0, -1 -> top3 = points 0,1,2; votes: class0 e^(2)=7.39, class1 e^(1.414)+e^0=5.11
    assert knn_predict(train, labels, test, 2, k=3, temperature=0.5).tolist() == [0]
    # with T=2: class0 e^0.5=1.65, class1 e^0.354+e^0=2.42 -> the two weaker neighbours win
    assert knn_predict(train, labels, test, 2, k=3, temperature=2.0).tolist() == [1]
    # k=1: only the nearest neighbour votes
    assert knn_predict(train, labels, torch.tensor([[0.1, 1.0]]), 2, k=1).tolist() == [1]


def test_knn_accuracy_uses_cosine_not_euclidean():
    train = torch.tensor([[10.0, 0.0], [0.0, 0.1]])
    labels = torch.tensor([0, 1])
    test = torch.tensor([[0.0, 5.0]])  # euclidean-closest is train[0]; cosine-closest is train[1]
    assert knn_correct(train, labels, test, torch.tensor([1]), k=1).tolist() == [True]


def test_mcnemar_counts_only_discordant_pairs_hand_computed():
    # a alone right on 6 samples, b alone on 1, both right on 50 (ignored):
    # P(X >= 6 | X ~ Binomial(7, 1/2)) = (7 + 1) / 128
    both = [True] * 50
    a = torch.tensor(both + [True] * 6 + [False] * 1 + [False] * 20)
    b = torch.tensor(both + [False] * 6 + [True] * 1 + [False] * 20)
    assert math.isclose(mcnemar_greater(a, b), 8 / 128, rel_tol=1e-9)
    assert math.isclose(mcnemar_greater(b, a), 127 / 128, rel_tol=1e-9)  # one-sided
    assert mcnemar_greater(a, a) == 1.0  # no discordant sample: no evidence either way


def test_rankme_hand_computed():
    # singular values 3, 1 -> p = (0.75, 0.25) + eps; exp entropy
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    p = torch.tensor([0.75, 0.25], dtype=torch.float64) + 1e-7
    assert math.isclose(rankme(z), float(torch.exp(-(p * p.log()).sum())), rel_tol=1e-9)
    assert math.isclose(rankme(torch.eye(5)), 5.0, rel_tol=1e-5)
    assert math.isclose(rankme(torch.ones(10, 4)), 1.0, rel_tol=1e-5)  # rank one


def test_rankme_is_not_centred():
    z = torch.ones(8, 3) + torch.tensor([[0.0, 0.0, 1e-3]]).expand(8, -1)
    assert rankme(z) < 1.01  # centring would remove the mean and change the answer


def test_linear_probe_separable():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    assert linear_probe_accuracy(x[:150], y[:150], x[150:], y[150:]) > 0.95


def test_collapse_watch_flags_collapsed_features():
    watch = CollapseWatch(min_std_ratio=0.5, min_rank_ratio=0.5)
    healthy = torch.randn(256, 32)
    stats, warning = watch.check(healthy)
    assert warning is None and stats["feature_std_ratio"] > 0.8
    collapsed = torch.ones(256, 32) + 1e-4 * torch.randn(256, 32)
    stats, warning = watch.check(collapsed)
    assert warning is not None and "feature std ratio" in warning and "RankMe" in warning
    assert std_ratio(collapsed) < 0.01


def test_collapse_watch_is_relative_to_the_runs_best():
    # a network whose pooled features share one large direction from the start (a small
    # ViT at init): a steady low std ratio is not a fall, halving it is
    g = torch.Generator().manual_seed(0)
    offset = torch.ones(1, 32) * 3
    watch = CollapseWatch(min_std_ratio=0.5, min_rank_ratio=0.1)
    for _ in range(3):
        stats, warning = watch.check(offset + torch.randn(256, 32, generator=g))
        assert warning is None and stats["feature_std_ratio"] < 0.4
    stats, warning = watch.check(offset + 0.3 * torch.randn(256, 32, generator=g))
    assert warning is not None and "feature std ratio" in warning and "RankMe" not in warning
    restored = CollapseWatch(min_std_ratio=0.5, min_rank_ratio=0.1)
    restored.load_state_dict(watch.state_dict())
    assert restored.best_std_ratio == watch.best_std_ratio > 0
