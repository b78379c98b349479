"""What a generation is asked to do (``Request``): the values the orchestration, the backends
and the metadata writer pass between them. What it has done is ``dataformat.metadata.Progress``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator.dataformat.shard_options import DEFAULT_SHARD_SIZE, layout_settings


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
    shard_size: int = DEFAULT_SHARD_SIZE
    zstd_level: int = 1
    compression: str = "zstd"  # shards: "zstd" (a frame per sample, .tar.zst) or "none" (.tar)
    backend: str = "loky"
    scheduler: str | None = None
    verify: bool = False  # --resume also hashes every kept video or shard

    def layout_settings(self) -> dict | None:
        """What fixes the bytes of a shard (``dataformat.shard_options.layout_settings``)."""
        return layout_settings(self.format, self.shard_size, self.zstd_level, self.compression)


def compression_of(layout_settings: dict | None) -> str:
    """The shard compression that fingerprint layout settings record ("zstd" if none is named)."""
    return (layout_settings or {}).get("compression", "zstd")
