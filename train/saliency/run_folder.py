"""A saliency run folder: ``config.yaml``, ``metrics.jsonl``, ``last.pt``, ``best.pt``,
``results.json`` and TensorBoard events under ``tb/``.

Every file goes through ``generator.store`` (temporary name, fsync, rename), so a run
killed at any moment leaves the previous complete version of each. ``metrics.jsonl`` is
rewritten whole each epoch rather than appended, so it never holds more epochs than
``last.pt`` on resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from generator.store import save_torch_atomic, write_atomic, write_json_atomic
from train.saliency.config import SaliencyConfig, dump_config


class RunFolderError(ValueError):
    """The folder cannot be used as asked (exists without --resume, or a different config)."""


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    def prepare(self, cfg: SaliencyConfig, resume: bool) -> dict[str, Any] | None:
        """Create the folder or check it for resuming; return the last checkpoint if resuming."""
        if self.last.exists() and not resume:
            raise RunFolderError(
                f"{self.path} already holds a run; add --resume or choose another --out"
            )
        if resume and self.last.exists():
            saved = (
                (self.path / "config.yaml").read_text()
                if (self.path / "config.yaml").exists()
                else ""
            )
            if saved and _without_epochs(saved) != _without_epochs(dump_config(cfg)):
                raise RunFolderError(
                    f"{self.path}/config.yaml differs from this config (other than "
                    "train.epochs); resume with the same config or use another --out"
                )
            return torch.load(self.last, weights_only=True)
        self.path.mkdir(parents=True, exist_ok=True)
        return None

    def write_config(self, cfg: SaliencyConfig) -> None:
        write_atomic(self.path / "config.yaml", dump_config(cfg).encode())

    def write_metrics(self, history: list[dict]) -> None:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in history)
        write_atomic(self.path / "metrics.jsonl", text.encode())

    def read_metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        return (
            [json.loads(line) for line in p.read_text().splitlines() if line] if p.exists() else []
        )

    def save_checkpoint(self, state: dict[str, Any], *, best: bool) -> None:
        save_torch_atomic(state, self.last)
        if best:
            save_torch_atomic(state, self.best)

    def write_results(self, results: dict) -> None:
        write_json_atomic(self.path / "results.json", results)


def _without_epochs(config_yaml: str) -> str:
    raw = yaml.safe_load(config_yaml)
    raw.get("train", {}).pop("epochs", None)
    return json.dumps(raw, sort_keys=True)
