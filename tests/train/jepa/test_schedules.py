import math

import torch

from train.jepa.schedules import (
    apply_schedules,
    cosine_weight_decay,
    ema_momentum,
    param_groups,
    warmup_cosine_lr,
)


def test_warmup_then_cosine():
    args = dict(warmup_steps=10, total_steps=110, start_lr=0.1, peak_lr=1.0, final_lr=0.0)
    assert warmup_cosine_lr(0, **args) == 0.1
    assert math.isclose(warmup_cosine_lr(5, **args), 0.55)
    assert warmup_cosine_lr(10, **args) == 1.0
    assert math.isclose(warmup_cosine_lr(60, **args), 0.5)
    assert math.isclose(warmup_cosine_lr(110, **args), 0.0, abs_tol=1e-12)
    lrs = [warmup_cosine_lr(s, **args) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_weight_decay_and_momentum_ramps():
    assert math.isclose(cosine_weight_decay(0, 100, 0.04, 0.4), 0.04)
    assert math.isclose(cosine_weight_decay(50, 100, 0.04, 0.4), 0.22)
    assert math.isclose(cosine_weight_decay(100, 100, 0.04, 0.4), 0.4)
    assert ema_momentum(0, 100, 0.996, 1.0) == 0.996
    assert math.isclose(ema_momentum(50, 100, 0.996, 1.0), 0.998)
    assert ema_momentum(200, 100, 0.996, 1.0) == 1.0


def test_no_decay_on_biases_and_norms():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    groups = param_groups(net)
    assert [p.shape for p in groups[0]["params"]] == [torch.Size([4, 3])]
    assert len(groups[1]["params"]) == 3 and groups[1]["weight_decay"] == 0.0
    opt = torch.optim.AdamW(groups)
    apply_schedules(opt, lr=0.5, weight_decay=0.3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
