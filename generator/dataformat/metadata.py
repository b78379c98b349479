"""A dataset's records: ``metadata.json`` (written last, atomically, from the manifests;
what readers trust first) and ``checkpoints/fingerprint.json`` (what a resume must match).

``metadata.json`` holds what format v1 requires (docs/architecture.md): counts, classes,
shapes, seed, config, the camera rig as K, R, t; plus the layout ("pt" or "shards"), the
renderer version and, for shards, their convention, compression and size. The keys of a
clip (``clip_metadata``) are the same for a dataset on disk and one rendered on the fly.
These are the format's keys, so they live here; the renderer supplies only values (the
rig, the renderer version), passed in by the jobs that join the two.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from generator.config import GeneratorConfig
from generator.dataformat.layout import FORMAT_VERSION, Layout
from trajkit.files import read_json, sha256_bytes, write_json_atomic


@dataclass
class Progress:
    """Samples covered by manifests: a count and class counts, not a list (memory stays flat in --n)."""

    samples: int = 0
    classes: Counter = field(default_factory=Counter)

    def add(self, entries: list[dict]) -> None:
        self.samples += len(entries)
        self.classes.update(int(e["class_label"]) for e in entries)


def renderer_of(record: dict) -> int:
    """The renderer version a dataset's fingerprint or metadata names (1 before they said)."""
    return record.get("render_version", 1)


def dataset_identity(meta: dict) -> str:
    """What a dataset holds, as a short hash of its seed, generator config, renderer version
    and size: it tells two folders of one name apart, and a moved copy from the original."""
    held = {
        "seed": meta.get("seed"),
        "config": meta.get("config"),
        "render_version": renderer_of(meta),
        "samples": meta.get("total_samples"),
    }
    return sha256_bytes(json.dumps(held, sort_keys=True).encode())[:12]


def fingerprint(
    cfg: GeneratorConfig,
    seed: int,
    width: int,
    layout: dict | None,
    render_version: int,
) -> dict:
    """The content of ``checkpoints/fingerprint.json``."""
    out = {
        "format_version": FORMAT_VERSION,
        "render_version": render_version,
        "seed": seed,
        "stem_width": width,
        "config": cfg.model_dump(mode="json"),
    }
    if layout is not None:
        out["layout"] = layout
    return out


def scene_bounds(cfg: GeneratorConfig) -> dict[str, list[float]]:
    return {
        "x": [cfg.scene.x.lo, cfg.scene.x.hi],
        "y": [cfg.scene.y.lo, cfg.scene.y.hi],
        "z": [cfg.scene.z.lo, cfg.scene.z.hi],
    }


def clip_metadata(cfg: GeneratorConfig) -> dict:
    """What a reader needs to know of each clip: shape, timing and scene; the same for a
    dataset on disk and one rendered on the fly."""
    return {
        "video_shape": list(cfg.video_shape),
        "video_layout": "cameras, frames, channels, height, width",
        "dtype": "uint8",
        "frames": cfg.frames,
        "horizon": cfg.horizon,
        "future_frame_index": cfg.frames - 1 + cfg.horizon,
        "fps": cfg.fps,
        "scene_extent": cfg.scene.extent,
        "scene_bounds": scene_bounds(cfg),
    }


def write_metadata(
    layout: Layout,
    cfg: GeneratorConfig,
    fmt: str,
    seed: int,
    done: Progress,
    cameras: list[dict],
    settings: dict | None = None,
) -> dict:
    """Write and return the metadata of the ``done`` samples in ``layout``.

    ``cameras`` are the rig's records (built from ``cfg`` by a new dataset, copied from
    the source by a converted one, whose last bits an older renderer version computed);
    ``settings`` are the fingerprint's layout settings (shards only).
    """
    names = cfg.class_names
    counts = {names[c]: n for c, n in done.classes.items()}
    elapsed = 0.0
    for path in layout.manifests():
        elapsed += float(read_json(path).get("elapsed_seconds", 0.0))
    meta = {
        "format_version": FORMAT_VERSION,
        "render_version": renderer_of(read_json(layout.fingerprint)),
        "format": fmt,
        "total_samples": done.samples,
        "class_distribution": {name: counts.get(name, 0) for name in names},
        "classes": list(names),
        "generation_time_seconds": round(elapsed, 3),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **clip_metadata(cfg),
        "seed": seed,
        "stem_width": layout.width,
        "cameras": cameras,
        "projection": "pixel = K (R X + t), u = column, v = row, pixel centres at integers",
        "checkpoints": [p.name for p in layout.manifests()],
        "config": cfg.model_dump(mode="json"),
    }
    if fmt == "shards":
        meta["shards"] = {
            "convention": "WebDataset: <key>.npy (uint8 video) + <key>.json (label) per sample; "
            "zstd: one frame per sample; offsets in the checkpoint manifests",
            "compression": "zstd",  # "none" from settings; a sentence here until 2026-12-07
            **(settings or {}),
        }
    write_json_atomic(layout.metadata, meta)
    return meta
