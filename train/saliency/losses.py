"""Training objectives as pure functions of tensors.

* Fixation negative log-likelihood (Kümmerer et al. 2015 PNAS; DeepGaze): the model is a
  probability distribution over pixels, scored by how probable it makes each observed
  fixation.
* Entropy of the predicted distribution, normalised by log(number of valid pixels) so
  it lies in [0, 1] whatever the grid size. Added with a weight and a direction:
  ``maximize`` (loss - w * H) is the confidence penalty of Pereyra et al. 2017,
  "Regularizing neural networks by penalizing confident output distributions": with
  a few dozen fixations per image a likelihood-trained map tends to collapse onto the
  seen points, and rewarding entropy keeps mass on plausible unseen ones.
  ``minimize`` (loss + w * H) sharpens maps instead, for when the maps come out too flat.
"""

from __future__ import annotations

import torch


def fixation_log_likelihood(
    log_density: torch.Tensor, fixations: torch.Tensor, fix_valid: torch.Tensor
) -> torch.Tensor:
    """Per-image mean log p at the fixations; (B,). ``fixations`` are (B, N, 2) grid (x, y)."""
    b, _, w = log_density.shape
    flat = fixations[..., 1] * w + fixations[..., 0]
    picked = log_density.reshape(b, -1).gather(1, flat)
    picked = torch.where(fix_valid, picked, torch.zeros_like(picked))
    return picked.sum(1) / fix_valid.sum(1).clamp(min=1)


def normalized_entropy(log_density: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """H(p) / log(valid pixels) per image, (B,): 1 for uniform, 0 for a single pixel."""
    # zero the -inf of the padding before multiplying, or 0 * -inf poisons the gradient
    safe = log_density.masked_fill(~mask, 0.0)
    plogp = safe.exp().masked_fill(~mask, 0.0) * safe
    n = mask.flatten(1).sum(1).clamp(min=2).to(log_density.dtype)
    return -plogp.flatten(1).sum(1) / torch.log(n)


def saliency_loss(
    log_density: torch.Tensor,
    batch: dict[str, torch.Tensor],
    entropy_weight: float = 0.0,
    entropy_direction: str = "maximize",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean fixation NLL (nats) plus the signed, weighted entropy term; returns (loss, parts)."""
    nll = -fixation_log_likelihood(log_density, batch["fixations"], batch["fix_valid"]).mean()
    loss = nll
    parts = {"nll": float(nll.detach())}
    if entropy_weight > 0:
        h = normalized_entropy(log_density, batch["mask"]).mean()
        sign = -1.0 if entropy_direction == "maximize" else 1.0
        loss = loss + sign * entropy_weight * h
        parts["entropy"] = float(h.detach())
    return loss, parts
