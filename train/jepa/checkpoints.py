"""Reading ``train.jepa`` checkpoints: a missing, damaged (0 bytes, truncated) or foreign file
(another architecture, another program's checkpoint) is one line naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

import torch

from train.checkpoint import CheckpointError, read_checkpoint

CHECKPOINT_KEYS = ("student", "target_encoder", "optimizer", "collapse", "epoch", "config")


def load_run_checkpoint(path: Path, keys: tuple[str, ...] = CHECKPOINT_KEYS) -> dict:
    """A ``train.jepa`` checkpoint, or one line naming the file: what ``read_checkpoint``
    refuses (missing, unreachable, no regular file, damaged), or not one of ours."""
    state = read_checkpoint(path)
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a train.jepa checkpoint (lacks {', '.join(missing)})")
    return state


def load_weights(
    module: torch.nn.Module | torch.optim.Optimizer, weights: dict, path: Path, part: str
) -> None:
    """``load_state_dict``, with a checkpoint of another architecture as one line."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        first = str(err).splitlines()[1 if "\n" in str(err) else 0].strip()[:160]
        raise CheckpointError(
            f"{path}: its {part} does not fit this config's model (another architecture?): {first}"
        ) from None
