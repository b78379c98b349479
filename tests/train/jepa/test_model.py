import torch

from train.jepa.model import HJepa, ema_update, forward_target, make_target_encoder
from train.jepa.schedules import param_groups


def test_ema_update_formula():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    t0 = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, before, o in zip(target.parameters(), t0, online.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * before + 0.1 * o)
    ema_update(target, online, 0.0)
    assert all(
        torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters(), strict=True)
    )
    snapshot = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    ema_update(target, online, 1.0)
    assert all(torch.equal(t, s) for t, s in zip(target.parameters(), snapshot, strict=True))


def test_target_encoder_is_frozen_copy(tiny_model_config):
    cfg = tiny_model_config(patch_size=4)
    model = HJepa(cfg)
    target = make_target_encoder(model.encoder)
    assert not any(p.requires_grad for p in target.parameters())
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(target(x), model.encoder(x))


def test_loss_decreases_on_a_fixed_batch(tiny_model_config):
    torch.manual_seed(0)
    cfg = tiny_model_config(levels=2)
    model = HJepa(cfg)
    target = make_target_encoder(model.encoder)
    images = torch.randn(2, 3, 16, 16)
    ctx = [torch.arange(32, 64).expand(2, -1)]
    tgt = [torch.tensor([0, 1, 8, 9, 16, 17, 24, 25]).expand(2, -1)]
    targets, _ = forward_target(target, images, 2)
    opt = torch.optim.AdamW(param_groups(model), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, _, _, _ = model(images, ctx, tgt, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::5]
