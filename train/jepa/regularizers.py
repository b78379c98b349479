"""Anti-collapse terms on the context encoder's image embeddings (the mean of its output tokens).

A JEPA's target can become a function of the token's position alone, which the predictor is
given: the loss then vanishes while the image embeddings lose their content (train/jepa/README.md
"two regimes"). Each term below pushes the embeddings of the images in a batch apart; each is
off unless its weight in the config's ``regularizer`` section is positive.

* ``variance``: VICReg's hinge ``mean(relu(1 - std_d))`` over the embedding dimensions (Bardes,
  Ponce & LeCun 2022, "VICReg", Eq. 1), which C-JEPA adds to I-JEPA (Mo & Tong 2024,
  "Connecting Joint-Embedding Predictive Architecture with Contrastive Self-supervised
  Learning").
* ``covariance``: VICReg's off-diagonal covariance penalty (Eq. 3), decorrelating dimensions.
* ``sigreg``: LeJEPA's Sketched Isotropic Gaussian Regularisation (Balestriero & LeCun 2025,
  "LeJEPA"): the Epps-Pulley statistic of random 1-D projections of the embeddings against a
  standard normal, i.e. the embeddings are pulled towards an isotropic Gaussian.

They act on the context encoder (the one with gradients); the target encoder, its moving
average, follows. They do not depend on the hierarchy levels, so every level count uses them.
"""

from __future__ import annotations

import torch

VICREG_EPS = 1e-4  # inside the square root of the variance (VICReg)
SIGREG_T_MAX = 3.0  # Epps-Pulley integration over t in [0, 3] (LeJEPA's default)
SIGREG_KNOTS = 17


def variance_hinge(z: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``mean_d relu(gamma - sqrt(var_d + eps))`` over a batch ``(B, D)``."""
    std = torch.sqrt(z.var(dim=0) + VICREG_EPS)
    return torch.relu(gamma - std).mean()


def covariance_penalty(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariances, divided by ``D``."""
    b, d = z.shape
    z = z - z.mean(dim=0)
    cov = (z.T @ z) / max(b - 1, 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def sigreg(z: torch.Tensor, slices: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Epps-Pulley statistic of ``slices`` random unit projections of ``z`` against N(0, 1),
    averaged over the projections (LeJEPA, Sec. 4)."""
    b, d = z.shape
    directions = torch.randn(d, slices, generator=generator, dtype=z.dtype)
    directions = directions.to(z.device) / directions.norm(dim=0, keepdim=True).to(z.device)
    x = z @ directions  # (B, slices)
    t = torch.linspace(0.0, SIGREG_T_MAX, SIGREG_KNOTS, device=z.device, dtype=z.dtype)
    xt = x.unsqueeze(-1) * t  # (B, slices, knots)
    gauss = torch.exp(-0.5 * t * t)  # characteristic function of N(0, 1), also the weight
    err = (xt.cos().mean(0) - gauss).pow(2) + xt.sin().mean(0).pow(2)
    return torch.trapezoid(err * gauss, t, dim=-1).mean() * b


def regularizer_loss(
    z: torch.Tensor,
    variance_weight: float,
    covariance_weight: float,
    sigreg_weight: float,
    sigreg_slices: int,
) -> torch.Tensor:
    """The weighted sum of the enabled terms on image embeddings ``z`` ``(B, D)``."""
    total = z.new_zeros(())
    z = z.float()
    if variance_weight:
        total = total + variance_weight * variance_hinge(z)
    if covariance_weight:
        total = total + covariance_weight * covariance_penalty(z)
    if sigreg_weight:
        total = total + sigreg_weight * sigreg(z, sigreg_slices)
    return total
