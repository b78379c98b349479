import pytest
import torch

from train.jepa.model import HJepa, forward_target, make_target_encoder
from train.jepa.regularizers import covariance_penalty, regularizer_loss, sigreg, variance_hinge


def test_variance_hinge_is_zero_for_spread_and_one_for_collapsed_embeddings():
    torch.manual_seed(0)
    spread = torch.randn(4096, 8) * 2
    assert variance_hinge(spread).item() == 0.0
    collapsed = torch.ones(64, 8)
    assert variance_hinge(collapsed).item() == pytest.approx(1 - 1e-2, abs=1e-6)  # sqrt(eps)


def test_covariance_penalty_sees_correlated_dimensions_only():
    torch.manual_seed(0)
    x = torch.randn(4096, 4)
    assert covariance_penalty(x).item() < 0.01
    y = torch.cat([x[:, :1], x[:, :1]], dim=1)  # two identical dimensions: cov 1 off the diagonal
    assert covariance_penalty(y).item() == pytest.approx(2 * 1.0 / 2, rel=0.05)


def test_sigreg_small_for_a_standard_gaussian_large_for_a_collapse_or_a_shift():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    gaussian = sigreg(torch.randn(512, 16), 64, g)
    collapsed = sigreg(torch.zeros(512, 16), 64, g)
    shifted = sigreg(torch.randn(512, 16) + 2.0, 64, g)
    assert gaussian < 0.05 * collapsed and gaussian < 0.05 * shifted


@pytest.mark.parametrize("term", ["variance_weight", "covariance_weight", "sigreg_weight"])
@pytest.mark.parametrize("levels", [1, 2])
def test_each_term_enters_the_loss_and_trains_the_encoder_with_every_level_count(
    term, levels, tiny_model_config
):
    torch.manual_seed(0)
    cfg = tiny_model_config(levels=levels, mask={"min_keep": 2})
    setattr(cfg.regularizer, term, 1.0)
    model = HJepa(cfg)
    target = make_target_encoder(model.encoder)
    images = torch.randn(4, 3, 16, 16)
    ctx = [torch.arange(32, 64).expand(4, -1)]
    tgt = [torch.tensor([0, 1, 8, 9, 16, 17, 24, 25]).expand(4, -1)]
    targets, _ = forward_target(target, images, levels)
    total, losses, _, reg = model(images, ctx, tgt, targets)
    assert reg.item() > 0
    assert torch.allclose(
        total, sum(w * x for w, x in zip(model.level_weights, losses, strict=True)) + reg
    )
    z = model.encoder(images, ctx).mean(1)
    weights = {"variance_weight": 0.0, "covariance_weight": 0.0, "sigreg_weight": 0.0}
    torch.manual_seed(5)
    alone = regularizer_loss(z, **{**weights, term: 1.0}, sigreg_slices=256)
    if term != "sigreg_weight":  # sigreg draws its own random projections
        assert torch.allclose(alone, reg)
    model.zero_grad()
    reg.backward()
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
