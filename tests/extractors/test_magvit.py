"""MagVIT's invariants: causality in time, LFQ codes and losses, the auxiliary-loss convention."""

from __future__ import annotations

import itertools
import math

import torch

from extractors import create_extractor
from extractors.lfq import (
    binary_entropy,
    lfq_commitment_loss,
    lfq_entropy_loss,
    lfq_indices,
    lfq_quantise,
)
from extractors.magvit import CausalConv3d


def test_causal_conv_never_sees_the_future():
    torch.manual_seed(0)
    conv = CausalConv3d(2, 3, (3, 3, 3), (2, 1, 1))
    x = torch.randn(1, 2, 8, 5, 5)
    later = x.clone()
    later[:, :, 4:] = torch.randn_like(later[:, :, 4:])  # change frames 4..7
    y, y_later = conv(x), conv(later)
    assert y.shape[2] == 4  # ceil(8 / 2)
    # output frame j covers input frames up to 2j + 1: frames 0 and 1 must not move
    torch.testing.assert_close(y[:, :, :2], y_later[:, :, :2])
    assert not torch.allclose(y[:, :, 2:], y_later[:, :, 2:])


def test_magvit_encoder_latent_is_causal():
    torch.manual_seed(0)
    model = create_extractor("magvit", "tiny").eval()
    x = torch.randn(1, 3, 16, 32, 32)
    later = x.clone()
    later[:, :, 8:] = torch.randn_like(later[:, :, 8:])
    with torch.no_grad():
        z, z_later = model.encoder(x), model.encoder(later)
    # tiny: stem /4 in time, no temporal downsampling after it: latent frame j
    # covers input frames < 4 (j + 1); the readout reads the same causal feature map
    assert z.shape[2] == 4
    torch.testing.assert_close(z[:, :, :2], z_later[:, :, :2])
    assert not torch.allclose(z[:, :, 2:], z_later[:, :, 2:])


def test_lfq_codes_are_cube_corners_with_straight_through_gradient():
    z = torch.tensor([[0.3, -2.0, 0.0, 1.5]], requires_grad=True)
    q = lfq_quantise(z)
    assert q.tolist() == [[1.0, -1.0, -1.0, 1.0]]  # 0 is not > 0: -1, as its index bit
    q.sum().backward()
    assert z.grad.tolist() == [[1.0, 1.0, 1.0, 1.0]]
    assert lfq_indices(z.detach(), dim=1).tolist() == [1 + 8]


def _exact_entropy_terms(z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample and codebook entropy over the full 2^d codebook, as the paper writes them."""
    d = z.shape[1]
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)))
    logits = -torch.cdist(z, codes).pow(2) / temperature
    probs = logits.softmax(-1)
    per_sample = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
    mean = probs.mean(0)
    return per_sample, -(mean * mean.clamp_min(1e-12).log()).sum()


def test_bitwise_entropy_matches_the_exact_codebook_form():
    torch.manual_seed(0)
    z = torch.randn(64, 4)
    per_sample, codebook = _exact_entropy_terms(z, temperature=0.7)
    # per-sample term is exact: with gamma=0 both forms agree
    torch.testing.assert_close(
        lfq_entropy_loss(z, temperature=0.7, gamma=0.0), per_sample, atol=1e-4, rtol=1e-4
    )
    # codebook term is the sum of bit entropies: an upper bound on the joint entropy
    bitwise = binary_entropy(torch.sigmoid(4 * z / 0.7).mean(0)).sum()
    assert bitwise >= codebook - 1e-5
    # with one sample per code bit pattern spread evenly, the bound is tight
    spread = torch.tensor(list(itertools.product([-3.0, 3.0], repeat=4)))
    _, exact = _exact_entropy_terms(spread, temperature=0.7)
    torch.testing.assert_close(
        binary_entropy(torch.sigmoid(4 * spread / 0.7).mean(0)).sum(), exact, atol=1e-3, rtol=1e-3
    )


def test_lfq_losses_drive_latents_to_confident_spread_codes():
    torch.manual_seed(0)
    z = (0.1 * torch.randn(256, 6)).requires_grad_()
    optimizer = torch.optim.Adam([z], lr=0.05)
    for _ in range(100):
        entropy, commitment = lfq_entropy_loss(z), lfq_commitment_loss(z)
        optimizer.zero_grad()
        (entropy + commitment).backward()
        optimizer.step()
    # the optimum is -6 ln 2 (confident bits, each used half the time) and 0
    assert entropy.item() < -0.9 * 6 * math.log(2)
    assert commitment.item() < 0.15
    assert len(lfq_indices(z.detach()).unique()) > 48


def test_aux_loss_only_after_a_training_forward():
    model = create_extractor("magvit", "tiny")
    x = torch.randn(2, 3, 8, 32, 32)
    model.train()
    model(x)
    aux = model.aux_loss()
    assert aux is not None and aux.dim() == 0 and aux.requires_grad
    model.eval()
    with torch.no_grad():
        model(x)
    assert model.aux_loss() is None


def test_decoder_is_optional():
    model = create_extractor("magvit", "tiny", decoder=False)
    assert model.decoder is None
    model(torch.randn(1, 3, 8, 32, 32))
    assert model.aux_loss() is not None  # the quantiser's terms remain
