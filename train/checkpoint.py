"""Checkpoints: everything to continue a run exactly, stored so ``weights_only=True`` can load it.

Model, optimiser, scheduler and grad-scaler states are tensors and primitives
already; RNG states are converted to tensors here (numpy's and Python's are
tuples of arrays and ints that the safe unpickler refuses).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generator.store import save_torch_atomic

LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(ValueError):
    """A checkpoint that is missing or cannot be loaded; the message names the file."""


def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), numpy and Python RNG states, as tensors."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_version),
            "internal": torch.tensor(py_internal, dtype=torch.int64),
            "gauss": py_gauss,
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-save leaves the previous checkpoint whole."""
    save_torch_atomic(state, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except Exception as e:  # torch raises many types for a damaged zip or pickle
        raise CheckpointError(
            f"{path} is damaged: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint (lacks {', '.join(missing)})")
    return state
