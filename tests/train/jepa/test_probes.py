import math

import pytest
import torch

from train.jepa.collapse import CollapseWatch, std_ratio
from train.jepa.probes import (
    knn_correct,
    knn_predict,
    linear_probe_accuracy,
    linear_probe_logits,
    mcnemar_greater,
    rankme,
    row_space_coordinates,
    singular_values,
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


def test_singular_values_match_svd_for_wide_and_tall_matrices():
    g = torch.Generator().manual_seed(0)
    for shape in ((30, 200), (200, 30)):
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        x[:, 0] *= 50  # one dominant direction, as raw pixels have (their mean)
        assert torch.allclose(singular_values(x), torch.linalg.svdvals(x), rtol=1e-9, atol=1e-9)
    rank_two = torch.randn(40, 2, generator=g).double() @ torch.randn(2, 300, generator=g).double()
    sigma = singular_values(rank_two)
    assert sigma.shape == (40,) and (sigma[2:] < 1e-6 * sigma[0]).all()


def test_row_space_coordinates_keep_every_inner_product():
    g = torch.Generator().manual_seed(1)
    # rank 25 < 40 training rows < 300 features: the dropped directions carry nothing
    basis = torch.randn(25, 300, generator=g, dtype=torch.float64)
    x_train = torch.randn(40, 25, generator=g, dtype=torch.float64) @ basis
    x_test = torch.randn(15, 300, generator=g, dtype=torch.float64)
    z_train, z_test = row_space_coordinates(x_train, x_test)
    assert z_train.shape == (40, 25) and z_test.shape == (15, 25)
    assert torch.allclose(z_train @ z_train.T, x_train @ x_train.T, atol=1e-8)
    assert torch.allclose(z_test @ z_train.T, x_test @ x_train.T, atol=1e-8)


def test_linear_probe_in_the_row_space_matches_the_primal_solution():
    # more features than samples, as raw pixels: the row-space solve must give the primal's
    # logits, not merely a similar accuracy
    g = torch.Generator().manual_seed(2)
    centres = 2 * torch.randn(3, 200, generator=g)
    y = torch.arange(90) % 3
    x = centres[y] + 3 * torch.randn(90, 200, generator=g)
    args = (x[:60], y[:60], x[60:], 3)
    primal = linear_probe_logits(*args, l2=1e-2, row_space=False)
    reduced = linear_probe_logits(*args, l2=1e-2, row_space=True)
    assert torch.allclose(reduced, primal, atol=1e-5)
    assert linear_probe_logits(*args, l2=1e-2).equal(reduced)  # D > N: the default
    assert linear_probe_accuracy(x[:60], y[:60], x[60:], y[60:], l2=1e-2) == float(
        (primal.argmax(1) == y[60:]).float().mean()
    )
    # an L2 penalty far from 1e-2 lands elsewhere: the comparison above can fail
    assert not torch.allclose(linear_probe_logits(*args, l2=1.0, row_space=True), primal, atol=1e-3)


def _two_blobs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    return torch.randn(n, 4, generator=g) + 3 * y[:, None], y


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("split", ["train", "test"])
def test_probes_refuse_non_finite_features(value, split):
    """Both classifiers returned an accuracy (0.5 on these balanced classes) from NaN features."""
    x_train, y_train = _two_blobs(20)
    x_test, y_test = _two_blobs(6, seed=1)
    (x_train if split == "train" else x_test)[3, 1] = value
    total = len(x_train if split == "train" else x_test)
    said = f"the {split} split's features are NaN or inf in 1 of {total} samples"
    with pytest.raises(ValueError, match=said):
        knn_correct(x_train, y_train, x_test, y_test)
    with pytest.raises(ValueError, match=said):
        linear_probe_accuracy(x_train, y_train, x_test, y_test)
    if split == "train":
        with pytest.raises(ValueError, match="the features are NaN or inf in 1 of 20 samples"):
            rankme(x_train)


def test_probes_refuse_fewer_than_two_training_samples_or_no_test_sample():
    """One training sample had a NaN std: the probe predicted class 0 for every test sample."""
    x, y = _two_blobs(8)
    for measure in (knn_correct, linear_probe_accuracy):
        for n in (0, 1):
            with pytest.raises(ValueError, match=f"at least 2 training samples, got {n}"):
                measure(x[:n], y[:n], x[4:], y[4:])
        with pytest.raises(ValueError, match="needs a test sample, got none"):
            measure(x[:4], y[:4], x[:0], y[:0])
    # two are enough: a std of two samples is defined
    assert linear_probe_accuracy(x[:2], y[:2], x[2:], y[2:]) == 1.0


def test_linear_probe_is_sklearn_logistic_regression_on_standard_scaler_features():
    """The probe standardises by the population std, as ``StandardScaler``: with 12 training
    samples the sample std (n - 1) scaled the features by sqrt(12/11), and the probabilities
    of the same problem moved by up to 0.02."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    g = torch.Generator().manual_seed(3)
    y = torch.arange(12) % 3
    x = (torch.randn(3, 5, generator=g)[y] + torch.randn(12, 5, generator=g)).double()
    x_test = torch.randn(20, 5, generator=g, dtype=torch.float64)
    l2 = 0.05
    ours = linear_probe_logits(x, y, x_test, 3, l2=l2, row_space=False).softmax(1)
    scaler = StandardScaler().fit(x.numpy())
    # the same objective: mean cross-entropy + l2 ||W||^2 is C * sum + ||W||^2 / 2
    reference = LogisticRegression(C=1 / (2 * len(x) * l2), tol=1e-12, max_iter=10_000)
    reference.fit(scaler.transform(x.numpy()), y.numpy())
    theirs = torch.from_numpy(reference.predict_proba(scaler.transform(x_test.numpy())))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_rankme_of_an_all_zero_matrix_is_its_rank_zero():
    """It was NaN (0/0), and a NaN never falls below the collapse watch's threshold."""
    assert rankme(torch.zeros(10, 4)) == 0.0
    assert rankme(torch.zeros(10, 4, dtype=torch.float64)) == 0.0
    assert rankme(1e-30 * torch.ones(10, 4)) == pytest.approx(1.0, rel=1e-5)  # tiny is not zero
    watch = CollapseWatch(min_std_ratio=0.5, min_rank_ratio=0.5)
    watch.check(torch.randn(64, 8))
    stats, warning = watch.check(torch.zeros(64, 8))
    assert stats["rankme"] == 0.0 and "RankMe 0.0" in warning
