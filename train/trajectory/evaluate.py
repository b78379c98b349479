"""The task loss and the evaluation of a split: accuracy, per-class accuracy, confusion, future RMSE.

Future positions are learnt in units normalised by the scene box, each axis
mapped to [-1, 1], so the three axes weigh alike whatever the box's shape;
errors are reported back in world units. RMSE here is the root of the mean
squared Euclidean distance between predicted and true positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from train.distributed import DistContext, all_reduce_sum


class FutureScale:
    """Maps world positions to [-1, 1] per axis of the scene box and back."""

    def __init__(self, bounds: torch.Tensor) -> None:
        self.lo = bounds[:, 0].float()
        self.span = (bounds[:, 1] - bounds[:, 0]).float().clamp_min(1e-6)

    def normalise(self, world: torch.Tensor) -> torch.Tensor:
        return (world - self.lo.to(world.device)) / self.span.to(world.device) * 2.0 - 1.0

    def to_world(self, normalised: torch.Tensor) -> torch.Tensor:
        return (normalised + 1.0) / 2.0 * self.span.to(normalised.device) + self.lo.to(
            normalised.device
        )


def trajectory_target(positions_norm: torch.Tensor, steps: int) -> torch.Tensor:
    """``(B, T, 3)`` normalised positions -> ``(B, steps, 3)``: their mean over ``steps`` equal spans.

    The same spans as the extractors' trajectory readout, which averages its
    feature map over time to its steps (``adaptive_avg_pool``).
    """
    return F.adaptive_avg_pool1d(positions_norm.transpose(1, 2), steps).transpose(1, 2)


def task_loss(
    out: dict[str, torch.Tensor],
    labels: torch.Tensor,
    future_norm: torch.Tensor,
    future_weight: float,
    beta: float,
    positions_norm: torch.Tensor | None = None,
    trajectory_weight: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy for the class plus a weighted Smooth-L1 on the normalised future position.

    With a ``"trajectory"`` output and ``trajectory_weight`` > 0, plus that weight
    times a Smooth-L1 on the positions along the clip (``positions_norm``, (B, T, 3)).
    """
    ce = F.cross_entropy(out["logits"].float(), labels)
    reg = F.smooth_l1_loss(out["future"].float(), future_norm, beta=beta)
    loss = ce + future_weight * reg
    if trajectory_weight and "trajectory" in out:
        if positions_norm is None:
            raise ValueError("a trajectory loss needs the clip's positions")
        predicted = out["trajectory"].float()
        target = trajectory_target(positions_norm, predicted.shape[1])
        loss = loss + trajectory_weight * F.smooth_l1_loss(predicted, target, beta=beta)
    if "aux_loss" in out:
        loss = loss + out["aux_loss"].float()
    return loss


def summarise(
    confusion: torch.Tensor, sq_err: float, loss_sum: float, n: int, nonfinite: int = 0
) -> dict:
    """Metrics of a split of ``n`` clips from its confusion matrix (rows true, columns
    predicted, of the clips with finite outputs) and sums.

    An empty split has no accuracy, loss or RMSE: None, never the 0 that read as perfect
    (a validation loss of 0 kept epoch 1 "best" for ever). A split where ``nonfinite`` clips
    gave a NaN or infinite output has no accuracy either: argmax over NaN logits is class 0,
    which gave a model of NaN weights chance accuracy (0.25 on four classes). Its loss
    stays NaN, which never ranks an epoch best.
    """
    confusion = confusion.long()
    per_class_total = confusion.sum(dim=1)
    correct = confusion.diag()
    per_class = [
        (c / t) if t and not nonfinite else None
        for c, t in zip(correct.tolist(), per_class_total.tolist(), strict=True)
    ]
    return {
        "accuracy": correct.sum().item() / n if n and not nonfinite else None,
        "per_class_accuracy": per_class,
        "confusion": confusion.tolist(),
        "future_rmse": (sq_err / n) ** 0.5 if n else None,
        "loss": loss_sum / n if n else None,
        "samples": n,
        "nonfinite_clips": nonfinite,
    }


def shown(value: float | None, spec: str = ".3f") -> str:
    """A metric for a printed line: "-" where the split was empty (None)."""
    return "-" if value is None else format(value, spec)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[dict],
    scale: FutureScale,
    ctx: DistContext,
    num_classes: int,
    future_weight: float,
    beta: float,
    autocast_dtype: torch.dtype | None = None,
    inputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
    trajectory_weight: float = 0.0,
    clips: list[torch.Tensor] | None = None,
) -> dict:
    """Metrics over this rank's shard, summed across ranks (shards must not overlap).

    ``inputs`` turns a batch's ``video`` into the model's input (a
    :class:`train.trajectory.inputs.InputPipeline`); by default the video is used as is.
    ``clips``, when given, gets one ``(B, 4)`` float64 tensor per batch of this rank's
    shard: each clip's sample index, label, predicted class and future error (world
    units), for paired comparisons of runs scored on the same clips. A clip whose class
    scores or future position are not finite is counted (``nonfinite_clips``), not
    entered in the confusion matrix (see ``summarise``).
    """
    was_training = model.training
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    sums = torch.zeros(4, dtype=torch.float64)  # squared error, loss, count, non-finite
    for batch in batches:
        video = batch["video"].to(ctx.device, non_blocking=True)
        if inputs is not None:
            video = inputs(video)
        labels = batch["label"].to(ctx.device)
        future = batch["future_position"].to(ctx.device)
        with torch.autocast(
            ctx.device.type,
            dtype=autocast_dtype or torch.float32,
            enabled=autocast_dtype is not None,
        ):
            out = model(video)
        positions = (
            scale.normalise(batch["positions"].to(ctx.device)) if trajectory_weight else None
        )
        loss = task_loss(
            out, labels, scale.normalise(future), future_weight, beta, positions, trajectory_weight
        )
        # float64: a finite float32 output, 1e30 say, squared to inf in float32 (an RMSE of
        # null), and turned to world units past a wide scene box it overflowed to a
        # "non-finite" clip
        logits, world = out["logits"].float(), scale.to_world(out["future"].double())
        finite = torch.isfinite(logits).all(dim=1) & torch.isfinite(world).all(dim=1)
        pred = logits.argmax(dim=1)
        idx = (labels * num_classes + pred)[finite].cpu()
        confusion += torch.bincount(idx, minlength=num_classes**2).view(num_classes, -1).double()
        offset = world - future.double()
        sums[0] += (offset**2).sum().item()
        if clips is not None:
            error = offset.norm(dim=1)
            columns = (batch["index"], labels.cpu(), pred.cpu(), error.cpu())
            clips.append(torch.stack([c.double() for c in columns], dim=1))
        sums[1] += loss.item() * len(labels)
        sums[2] += len(labels)
        sums[3] += (~finite).sum().item()
    confusion = all_reduce_sum(ctx, confusion)
    sums = all_reduce_sum(ctx, sums)
    model.train(was_training)
    squared_error, loss_sum, count, nonfinite = sums.tolist()
    return summarise(confusion, squared_error, loss_sum, int(count), int(nonfinite))
