"""``metadata.json``: written last, atomically, from the manifests; what readers trust first.

Holds what format v1 requires (docs/architecture.md): counts, classes, shapes, seed,
config, the camera rig as K, R, t; plus the layout ("pt" or "shards"), the
renderer version and, for shards, their convention, compression and size.
"""

from __future__ import annotations

import time

from generator.config import GeneratorConfig
from generator.dataformat.layout import FORMAT_VERSION, Layout
from generator.pipeline.request import Progress, Request
from trajkit.files import read_json, write_json_atomic


def rig_metadata(cfg: GeneratorConfig) -> list[dict]:
    """Each camera's name, placement and ``K``, ``R``, ``t`` as the config builds them."""
    from generator.render.cameras import build_rig

    return [
        {"name": f"cam{i}", "azimuth_deg": az, "elevation_deg": el, **cam.as_dict()}
        for i, (cam, az, el) in enumerate(
            zip(build_rig(cfg), cfg.cameras.azimuths_deg, cfg.cameras.elevations_deg, strict=True)
        )
    ]


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
    req: Request,
    done: Progress,
    cameras: list[dict] | None = None,
) -> dict:
    """Write and return the metadata of the ``done`` samples in ``layout``.

    ``cameras``, if given, are copied (a converted dataset keeps its source's rig,
    whose last bits an older renderer version computed); else they are built from ``cfg``.
    """
    from generator.render.sample import renderer_of

    names = cfg.class_names
    counts = {names[c]: n for c, n in done.classes.items()}
    elapsed = 0.0
    for path in layout.manifests():
        elapsed += float(read_json(path).get("elapsed_seconds", 0.0))
    if cameras is None:
        cameras = rig_metadata(cfg)
    meta = {
        "format_version": FORMAT_VERSION,
        "render_version": renderer_of(read_json(layout.fingerprint)),
        "format": req.format,
        "total_samples": done.samples,
        "class_distribution": {name: counts.get(name, 0) for name in names},
        "classes": list(names),
        "generation_time_seconds": round(elapsed, 3),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **clip_metadata(cfg),
        "seed": req.seed,
        "stem_width": layout.width,
        "cameras": cameras,
        "projection": "pixel = K (R X + t), u = column, v = row, pixel centres at integers",
        "checkpoints": [p.name for p in layout.manifests()],
        "config": cfg.model_dump(mode="json"),
    }
    if req.format == "shards":
        meta["shards"] = {
            "convention": "WebDataset: <key>.npy (uint8 video) + <key>.json (label) per sample",
            "compression": "zstd, one frame per sample; offsets in the checkpoint manifests",
            **(req.layout_settings() or {}),
        }
    write_json_atomic(layout.metadata, meta)
    return meta
