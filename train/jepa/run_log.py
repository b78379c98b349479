"""Where a JEPA run writes what it measured: ``metrics.jsonl`` (one JSON object a line, the
record to trust) mirrored to TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path

from trajkit.files import write_atomic


class RunLog:
    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = folder / "metrics.jsonl"
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def write(self, record: dict, step: int) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        for key, value in _flatten(record).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def truncate_after(self, epoch: int) -> None:
        """On resume, drop records of epochs that the checkpoint does not cover."""
        if not (self.enabled and self.path.exists()):
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and json.loads(line).get("epoch", 0) <= epoch
        ]
        write_atomic(self.path, "".join(line + "\n" for line in kept).encode())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out
