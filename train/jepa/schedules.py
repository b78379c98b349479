"""Learning-rate, weight-decay and EMA-momentum schedules as pure functions of the step.

Same curves as ijepa ``src/utils/schedulers.py`` (``WarmupCosineSchedule``, ``CosineWDSchedule``)
and its linear momentum ramp, but stateless: a resumed run asks for step ``t`` and gets exactly
what an uninterrupted run got, with nothing to save.
"""

from __future__ import annotations

import math

from torch import nn
from torch.optim import Optimizer


def warmup_cosine_lr(
    step: int, warmup_steps: int, total_steps: int, start_lr: float, peak_lr: float, final_lr: float
) -> float:
    """Linear ``start_lr -> peak_lr`` over the warmup, then cosine ``peak_lr -> final_lr``."""
    if step < warmup_steps:
        return start_lr + (peak_lr - start_lr) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final_lr + (peak_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_weight_decay(step: int, total_steps: int, start_wd: float, final_wd: float) -> float:
    """Cosine ramp ``start_wd -> final_wd`` (I-JEPA raises decay 0.04 -> 0.4)."""
    progress = min(1.0, step / max(1, total_steps))
    return final_wd + (start_wd - final_wd) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_momentum(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp ``start -> end`` of the target encoder's EMA momentum (I-JEPA 0.996 -> 1.0)."""
    return start + (end - start) * min(1.0, step / max(1, total_steps))


def param_groups(module: nn.Module) -> list[dict]:
    """Two AdamW groups: decay on weights, none on biases, norms and 1-D parameters (I-JEPA)."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay},
        {"params": no_decay, "weight_decay": 0.0, "wd_exclude": True},
    ]


def apply_schedules(optimizer: Optimizer, lr: float, weight_decay: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
        if not group.get("wd_exclude", False):
            group["weight_decay"] = weight_decay
