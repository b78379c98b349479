"""Checkpoints: everything to continue a run exactly, stored so ``weights_only=True`` can load it.

Model, optimiser, scheduler and grad-scaler states are tensors and primitives
already; RNG states are converted to tensors here (numpy's and Python's are
tuples of arrays and ints that the safe unpickler refuses).
"""

from __future__ import annotations

import os
import random
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajkit.cli import failed_io, interrupts_deferred, short_repr
from trajkit.files import save_torch_atomic


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
    """Write atomically, interrupts deferred: a crash mid-save leaves the previous checkpoint
    whole, and Ctrl-C waits for the new one."""
    with interrupts_deferred():
        save_torch_atomic(state, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint; anything unusable (missing, unreadable, empty, truncated, not ours) is
    a one-line CheckpointError naming the file."""
    state = read_checkpoint(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a training checkpoint (a {type(state).__name__})")
    missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint (lacks {', '.join(missing)})")
    problem = content_problem(state)
    if problem:
        raise CheckpointError(f"{path} is not a training checkpoint ({problem})")
    return state


def content_problem(state: dict[str, Any]) -> str | None:
    """What in a checkpoint's common keys is not of the type every trainer writes, or None:
    an epoch of "two" or a tensor for the model was a traceback from ``int()`` or
    ``load_state_dict``, a negative epoch a resume that trained extra epochs. ``world_size``
    (the process count, which a resume must keep) is in those of the trajectory and
    saliency trainers."""
    epoch = state["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch is not a whole number above 0: {short_repr(epoch)}"
    count = state.get("world_size", 1)  # absent: written before the count was recorded
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return f"world_size is not a whole number above 0: {short_repr(count)}"
    for key in ("model", "optimizer", "scheduler", "config"):
        if not isinstance(state[key], dict):
            kind = "a mapping" if key == "config" else "a state dict"
            return f"{key} is not {kind}: a {type(state[key]).__name__}"
    for name, value in state["model"].items():  # a module's extra state may be any object
        if not isinstance(name, str) or not (
            torch.is_tensor(value) or name.endswith("_extra_state")
        ):
            return f"model is not a state dict: {short_repr(name)} holds a {type(value).__name__}"
    return None


# How a weights-only load names the class a foreign pickle needs.
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def read_checkpoint(path: Path) -> Any:
    """What ``torch.load`` (weights only) reads from ``path``, or a one-line CheckpointError
    saying what is wrong: missing, unreachable (a symbolic link loop, no permission), no
    regular file, empty, or bytes torch cannot read. The file is opened here, so a failure to
    reach it is told from damage inside it: torch's own reader says "[Errno 22] Invalid
    argument" for a truncated zip, and its errors for other damage are advice about
    ``weights_only``."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block the read, a folder fail it
            raise CheckpointError(f"{path} is not a regular file")
        if status.st_size == 0:
            raise CheckpointError(f"{path} is damaged: it is empty (0 bytes)")
        file = path.open("rb")
    except FileNotFoundError:
        if path.is_symlink():  # there to `ls`, so "missing" alone would puzzle
            raise CheckpointError(
                f"{path} is a symbolic link to {os.readlink(path)}, which is missing"
            ) from None
        raise CheckpointError(f"{path} is missing") from None
    except OSError as e:
        raise CheckpointError(f"cannot read the checkpoint: {failed_io(e)}") from None
    with file:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a damaged zip or pickle
            foreign = _UNSAFE_GLOBAL.search(str(e))
            if foreign:
                raise CheckpointError(
                    f"{path} is not a training checkpoint (it pickles {foreign[1]})"
                ) from None
            raise CheckpointError(
                f"{path} is damaged or truncated: not a checkpoint torch can read"
            ) from None
