"""Measures of frozen features: weighted k-NN, RankMe, a linear probe. Pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

RANKME_EPS = 1e-7  # Garrido et al. 2023, Eq. 1


def rankme(features: torch.Tensor, eps: float = RANKME_EPS) -> float:
    """RankMe (Garrido et al. 2023, "RankMe: Assessing the downstream performance of pretrained
    self-supervised representations by their rank"): ``exp(-sum p_k log p_k)`` with
    ``p_k = sigma_k / ||sigma||_1 + eps`` over the singular values of the ``(N, D)`` embedding
    matrix, not centred. Ranges from ~1 (collapse) to ``min(N, D)``; 0 for an all-zero matrix,
    whose rank is 0 and where the formula is 0/0.
    """
    require_finite(features, "the features")
    sigma = singular_values(features.double())
    if sigma.sum() == 0:
        return 0.0
    p = sigma / sigma.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def require_finite(features: torch.Tensor, what: str) -> None:
    """Refuse NaN or inf features: k-NN and the probe would still return an accuracy (0.5 on
    two balanced classes), which would mean nothing."""
    bad = int((~features.isfinite()).any(1).sum())
    if bad:
        raise ValueError(
            f"{what} are NaN or inf in {bad} of {len(features)} samples "
            "(a diverged encoder?): nothing can be measured on them"
        )


def require_split_features(train_features: torch.Tensor, test_features: torch.Tensor) -> None:
    """What a classifier on frozen features needs: finite features, at least 2 training samples
    (one has no spread to standardise by, nor anything to learn from) and a test sample."""
    if len(train_features) < 2:
        raise ValueError(
            f"a probe of frozen features needs at least 2 training samples, got {len(train_features)}"
        )
    if len(test_features) == 0:
        raise ValueError("a probe of frozen features needs a test sample, got none")
    require_finite(train_features, "the train split's features")
    require_finite(test_features, "the test split's features")


def singular_values(x: torch.Tensor) -> torch.Tensor:
    """Singular values of ``x`` from the eigenvalues of its smaller Gram matrix.

    For raw pixels (1,500 x 12,288) this takes about 1 s against 22 s for ``svdvals``; in float64
    a singular value's error is ~1e-8 of the largest (eigenvalue error ~1e-16 of the largest),
    far below RankMe's ``eps``.
    """
    gram = x @ x.T if x.size(0) <= x.size(1) else x.T @ x
    return torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(0)


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """Weighted k-NN of Wu et al. 2018 as used by DINO (``eval_knn.py``): cosine similarity,
    the k nearest training samples vote for their class with weight ``exp(sim / T)``.
    """
    require_split_features(train_features, test_features)
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    k = min(k, len(train))
    preds = []
    for start in range(0, len(test), chunk):
        sim = test[start : start + chunk] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), num_classes)
        votes.scatter_add_(1, train_labels[top_idx], (top_sim / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_correct(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
) -> torch.Tensor:
    """``(N,)`` bool: which test samples the weighted k-NN classifies correctly."""
    require_split_features(train_features, test_features)  # before the labels' max
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(train_features, train_labels, test_features, num_classes, k, temperature)
    return pred == test_labels


def mcnemar_greater(correct_a: torch.Tensor, correct_b: torch.Tensor) -> float:
    """One-sided p-value that classifier ``a`` is more accurate than ``b`` on the same samples.

    McNemar's exact test: only the samples exactly one of the two gets right count, and under
    "equally accurate" each of them is ``a``'s with probability 1/2. Paired, so it separates a
    real gain from the noise of a small test split better than comparing two accuracies.
    """
    from scipy.stats import binomtest

    a_only = int((correct_a & ~correct_b).sum())
    b_only = int((correct_b & ~correct_a).sum())
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5, alternative="greater").pvalue)


def row_space_coordinates(
    x_train: torch.Tensor, x_test: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x_train`` and ``x_test`` in an orthonormal basis ``V`` of the span of ``x_train``'s rows.

    From the Gram matrix ``x_train x_train^T = U S U^T``: ``x_train V = U S^1/2`` and
    ``x_test V = x_test x_train^T U S^-1/2``. Directions whose singular value is below ~1e-6 of
    the largest (the Gram's rounding noise) are dropped; along them the training loss is flat.
    """
    gram = x_train @ x_train.T
    eigenvalues, u = torch.linalg.eigh(gram)
    keep = eigenvalues > eigenvalues.max() * len(gram) * torch.finfo(gram.dtype).eps
    u, root = u[:, keep], eigenvalues[keep].sqrt()
    return u * root, (x_test @ x_train.T) @ u / root


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    max_iter: int = 500,
    l2: float = 1e-4,
    row_space: bool | None = None,
) -> float:
    """Test accuracy of ``linear_probe_logits``."""
    require_split_features(train_features, test_features)  # before the labels' max
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    logits = linear_probe_logits(
        train_features, train_labels, test_features, num_classes, max_iter, l2, row_space
    )
    return float((logits.argmax(1) == test_labels).float().mean())


def linear_probe_logits(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    max_iter: int = 500,
    l2: float = 1e-4,
    row_space: bool | None = None,
) -> torch.Tensor:
    """Test logits of multinomial logistic regression on standardised frozen features.

    Full-batch L-BFGS with an L2 penalty ``l2 * ||W||^2`` (the solver of scikit-learn's
    ``LogisticRegression``): deterministic and converged, unlike a short SGD schedule.

    With more features than training samples (raw pixels: 12,288 against 1,500) it is solved in
    the span of the training rows (``row_space``, by default when ``D > N``): the optimum lies in
    it (the loss's gradient does, and the penalty pulls the rest to 0), and starting from 0
    every L-BFGS iterate does too, so in the coordinates of ``row_space_coordinates`` it is
    the same problem, norm and iterates with N instead of D weights per class.
    """
    require_split_features(train_features, test_features)
    std, mean = torch.std_mean(train_features, dim=0, correction=0)  # as sklearn's StandardScaler
    std = std.clamp_min(1e-6)
    x_train = ((train_features - mean) / std).double()
    x_test = ((test_features - mean) / std).double()
    if row_space is None:
        row_space = x_train.size(1) > x_train.size(0)
    if row_space:
        x_train, x_test = row_space_coordinates(x_train, x_test)
    head = torch.nn.Linear(x_train.size(1), num_classes, dtype=torch.float64)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(x_train), train_labels) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return head(x_test)
