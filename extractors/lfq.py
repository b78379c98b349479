"""Lookup-free quantisation (LFQ), as pure functions of tensors.

Yu et al., "Language Model Beats Diffusion -- Tokenizer is Key to Visual
Generation" (MAGVIT-v2, ICLR 2024), Sec. 3.1. The codebook is the set of
corners ``{-1, 1}^d`` of the d-dimensional cube, so quantising a latent vector
needs no lookup: ``q = sign(z)``, and the token index is the bit pattern
``sum_i 2^i [z_i > 0]`` (Eq. 2). The straight-through estimator passes the
gradient of ``q`` to ``z``.

The paper's entropy penalty (Eq. 3) asks each latent to be confidently near one
code (low per-sample entropy) and the batch to use the whole codebook (high
entropy of the mean code distribution):

    L_entropy = E[H(p(c | z))] - gamma * H(E[p(c | z)]),  p(c | z) ∝ exp(-||z - c||² / tau)

Because the codebook is a product of per-dimension choices, ``p(c | z)``
factorises into independent bits with ``p(c_i = +1 | z) = sigmoid(4 z_i / tau)``,
which makes the per-sample term exact at O(d) per vector. The codebook term is
taken bitwise too: the sum of the entropies of each bit's batch-mean. That sum
is an upper bound on the joint entropy (equal when bits are independent across
the batch); it avoids materialising all 2^d codes, which is 2^18 in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lfq_quantise(z: torch.Tensor) -> torch.Tensor:
    """``sign(z)`` in {-1, 1} (0 maps to -1, like its index bit) with a straight-through gradient."""
    q = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
    return z + (q - z).detach()


def lfq_indices(z: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Token index ``sum_i 2^i [z_i > 0]`` over dimension ``dim`` (int64)."""
    bits = (z > 0).long()
    weights = 2 ** torch.arange(z.shape[dim], device=z.device)
    shape = [1] * z.dim()
    shape[dim] = -1
    return (bits * weights.view(shape)).sum(dim)


def binary_entropy(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Entropy in nats of Bernoulli(p), elementwise."""
    p = p.clamp(eps, 1 - eps)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def lfq_entropy_loss(
    z: torch.Tensor, *, temperature: float = 1.0, gamma: float = 1.0, dim: int = 1
) -> torch.Tensor:
    """Per-sample entropy minus ``gamma`` x codebook entropy (bitwise), in nats.

    ``z``: continuous latents with the code dimension at ``dim``; every other
    position is one sample of the expectation.
    """
    d = z.shape[dim]
    flat = z.movedim(dim, -1).reshape(-1, d).float()
    p_plus = torch.sigmoid(4.0 * flat / temperature)
    per_sample = binary_entropy(p_plus).sum(-1).mean()
    codebook = binary_entropy(p_plus.mean(0)).sum()
    return per_sample - gamma * codebook


def lfq_commitment_loss(z: torch.Tensor) -> torch.Tensor:
    """``||z - sg(sign(z))||²`` averaged: pulls latents to the cube's corners."""
    q = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
    return F.mse_loss(z, q.detach())
