"""The camera rig as ``metadata.json`` records it: built by the renderer's cameras, so it
lives above both the format (``generator.dataformat.metadata`` writes the file) and the
renderer."""

from __future__ import annotations

from generator.config import GeneratorConfig


def rig_metadata(cfg: GeneratorConfig) -> list[dict]:
    """Each camera's name, placement and ``K``, ``R``, ``t`` as the config builds them."""
    from generator.render.cameras import build_rig

    return [
        {"name": f"cam{i}", "azimuth_deg": az, "elevation_deg": el, **cam.as_dict()}
        for i, (cam, az, el) in enumerate(
            zip(build_rig(cfg), cfg.cameras.azimuths_deg, cfg.cameras.elevations_deg, strict=True)
        )
    ]
