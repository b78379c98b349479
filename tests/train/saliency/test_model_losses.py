import math

import pytest
import torch

from train.saliency.losses import fixation_log_likelihood, normalized_entropy, saliency_loss
from train.saliency.model import SaliencyNet


def _batch(b=2, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, s, s, dtype=torch.bool)
    mask[1, :4] = False  # second image letterboxed
    fix = torch.randint(4, s, (b, 5, 2), generator=g)
    valid = torch.ones(b, 5, dtype=torch.bool)
    valid[0, 3:] = False
    return {
        "image": torch.rand(b, 3, s, s, generator=g),
        "mask": mask,
        "fixations": fix,
        "fix_valid": valid,
    }


def test_nll_of_uniform_is_log_pixels_and_two_forms_agree():
    logp = torch.full((1, 2, 2), math.log(0.25))
    fix = torch.tensor([[[0, 0], [1, 1], [1, 0]]])
    ll = fixation_log_likelihood(logp, fix, torch.ones(1, 3, dtype=torch.bool))
    assert ll.item() == pytest.approx(-math.log(4))
    logp = torch.log_softmax(torch.randn(1, 4), 1).reshape(1, 2, 2)
    counts = torch.zeros(2, 2)
    for x, y in fix[0].tolist():
        counts[y, x] += 1
    by_counts = (counts * logp[0]).sum() / 3
    assert fixation_log_likelihood(
        logp, fix, torch.ones(1, 3, dtype=torch.bool)
    ).item() == pytest.approx(by_counts.item())


def test_normalized_entropy_bounds():
    mask = torch.ones(1, 4, 4, dtype=torch.bool)
    uniform = torch.full((1, 4, 4), math.log(1 / 16))
    assert normalized_entropy(uniform, mask).item() == pytest.approx(1.0)
    peaked = torch.full((1, 16), -1e4)
    peaked[0, 3] = 0.0
    peaked = torch.log_softmax(peaked, 1).reshape(1, 4, 4)
    assert normalized_entropy(peaked, mask).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("encoder", ["small_cnn", "resnet18"])
def test_model_is_a_density_and_every_parameter_learns(encoder):
    torch.manual_seed(0)
    net = SaliencyNet(encoder, width=8, centre_bias_size=4)
    b = _batch(s=32)
    logp = net(b["image"], b["mask"])
    assert logp.shape == (2, 32, 32)
    assert torch.isneginf(logp[1, :4]).all()
    for i in range(2):
        assert torch.logsumexp(logp[i][b["mask"][i]], 0).item() == pytest.approx(0.0, abs=1e-5)
    loss, _ = saliency_loss(logp, b, 0.1, "maximize")
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "weight, direction", [(0.0, "maximize"), (0.5, "maximize"), (0.5, "minimize")]
)
def test_training_step_lowers_the_loss(weight, direction):
    torch.manual_seed(0)
    net = SaliencyNet("small_cnn", width=8, centre_bias_size=4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    b = _batch()
    losses = []
    for _ in range(15):
        loss, _ = saliency_loss(net(b["image"], b["mask"]), b, weight, direction)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05


def test_entropy_direction_moves_entropy_its_way():
    b = _batch()
    ent = {}
    for direction in ("maximize", "minimize"):
        torch.manual_seed(0)
        net = SaliencyNet("small_cnn", width=8, centre_bias_size=4)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(10):
            loss, _ = saliency_loss(net(b["image"], b["mask"]), b, 2.0, direction)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            ent[direction] = normalized_entropy(net(b["image"], b["mask"]), b["mask"]).mean().item()
    assert ent["maximize"] > ent["minimize"] + 0.01
