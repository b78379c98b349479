"""What a generation is asked to do (``Request``) and what it has done (``Progress``): the
values the orchestration, the backends and the metadata writer pass between them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Request:
    n: int
    out: Path
    seed: int = 0
    workers: int = 1
    checkpoint_every: int = 2000
    resume: bool = False
    preflight: bool = True
    quiet: bool = False
    format: str = "pt"
    shard_size: int = 128  # samples per shard: ~170 MB at the default size, WebDataset's sweet spot
    zstd_level: int = 1
    compression: str = "zstd"  # shards: "zstd" (a frame per sample, .tar.zst) or "none" (.tar)
    backend: str = "loky"
    scheduler: str | None = None
    verify: bool = False  # --resume also hashes every kept video or shard

    def layout_settings(self) -> dict | None:
        """What fixes the bytes of a shard; None for format "pt" (whose fingerprint predates formats)."""
        if self.format != "shards":
            return None
        if self.compression == "none":
            return {"format": "shards", "shard_size": self.shard_size, "compression": "none"}
        # zstd shards predate the choice: their settings carry no "compression" key
        return {"format": "shards", "shard_size": self.shard_size, "zstd_level": self.zstd_level}


def compression_of(layout_settings: dict | None) -> str:
    """The shard compression that fingerprint layout settings record ("zstd" if none is named)."""
    return (layout_settings or {}).get("compression", "zstd")


@dataclass
class Progress:
    """Samples covered by manifests: a count and class counts, not a list (memory stays flat in --n)."""

    samples: int = 0
    classes: Counter = field(default_factory=Counter)

    def add(self, entries: list[dict]) -> None:
        self.samples += len(entries)
        self.classes.update(int(e["class_label"]) for e in entries)
