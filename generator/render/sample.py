"""One sample from ``(seed, index)`` alone: its class, path, look, video and label.

Nothing here depends on worker count, chunking or what was rendered before,
which is what makes resumed and parallel runs byte-identical.
"""

from __future__ import annotations

import numpy as np

from generator.config import CLASS_NAMES, GeneratorConfig
from generator.render.blur import instants
from generator.render.cameras import Camera, build_rig, camera_path, camera_rng
from generator.render.ground_truth import ground_truth
from generator.render.renderer import Renderer, sample_look
from generator.render.scene_objects import SceneDecorator
from generator.render.trajectories import sample_trajectory

NUM_CLASSES = len(CLASS_NAMES)
# Which arithmetic draws the samples, kept in each dataset's fingerprint and metadata; raised
# whenever a (seed, config) would give other bytes, so a resume never mixes two. Version 1
# (until 2026-12) let the BLAS and NumPy's SIMD code pick last bits, which differ by CPU;
# version 2 gives the same bytes on every machine (``generator.render.arith``) and shades the
# ball's anti-aliased rim with unit normals (version 1's were too long: brighter rims).
RENDER_VERSION = 2


def sample_seed(seed: int, index: int) -> list[int]:
    """The entropy of sample ``index``: numpy's SeedSequence keeps streams independent."""
    return [seed, index]


def class_of(seed: int, index: int, num_classes: int = NUM_CLASSES) -> int:
    """Classes in shuffled blocks of ``num_classes`` (four by default): every prefix is
    balanced to within one per class."""
    block = index // num_classes
    order = np.random.default_rng([seed, block, 0x5EED]).permutation(num_classes)
    return int(order[index % num_classes])


class SampleMaker:
    """Holds the rig and renderer for one config; ``make(seed, i)`` is a pure function of its inputs."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.cams = build_rig(cfg)
        self.renderer = Renderer(self.cams, cfg.image_size, cfg.appearance.noise_std)
        self.scene = SceneDecorator(cfg, self.renderer)
        self._posed: tuple[tuple[int, int], list[Camera]] | None = None

    def _draw(self, seed: int, index: int) -> tuple[np.random.Generator, np.ndarray, object, dict]:
        """What a sample is before any pixel: its rng (for the renderer), path, look and label.

        With ``camera_motion``, the label's ``cameras`` holds each camera's ``K`` and its
        per-frame ``R`` (frames, 3, 3) and ``t`` (frames, 3), drawn from their own stream.
        """
        cfg = self.cfg
        label_id = class_of(seed, index, len(cfg.class_names))
        rng = np.random.default_rng(sample_seed(seed, index))
        positions, params = sample_trajectory(rng, label_id, cfg)
        look = self.scene.dress(sample_look(rng, cfg.appearance))
        label = {
            "index": index,
            "seed": sample_seed(seed, index),
            "class_label": label_id,
            "class_name": cfg.class_names[label_id],
            "future_frame": cfg.frames - 1 + cfg.horizon,
            "future_position": positions[cfg.frames - 1 + cfg.horizon].tolist(),
            "positions": positions.tolist(),
            "trajectory_params": params,
            "appearance": look.as_dict(),
        }
        if cfg.camera_motion is not None:
            label["cameras"] = [cam.as_dict() for cam in self.moving_rig(seed, index)]
        return rng, positions, look, label

    def moving_rig(self, seed: int, index: int) -> list[Camera]:
        """Sample ``index``'s cameras, one pose per frame (``camera_motion``); the rig's otherwise."""
        if self.cfg.camera_motion is None:
            return self.cams
        if self._posed is None or self._posed[0] != (seed, index):  # drawn once for label and video
            self._posed = ((seed, index), camera_path(self.cfg, camera_rng(seed, index)))
        return self._posed[1]

    def label(self, seed: int, index: int) -> dict:
        """The label fields drawn before rendering (about 0.3 ms): what checks a label on disk."""
        return self._draw(seed, index)[3]

    def make(
        self, seed: int, index: int, alpha_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict]:
        cfg = self.cfg
        rng, positions, look, label = self._draw(seed, index)
        cams, renderer, scene = self.cams, self.renderer, self.scene
        if cfg.camera_motion is not None:  # this sample's own poses: its own ray geometry
            cams = self.moving_rig(seed, index)
            renderer = Renderer(cams, cfg.image_size, cfg.appearance.noise_std)
            scene = SceneDecorator(cfg, renderer)
        blur = None
        if cfg.motion_blur is not None:
            blur = instants(positions, cfg.frames, cfg.motion_blur)
        gt = cfg.ground_truth is not None and cfg.ground_truth.enabled
        if alpha_out is None and (gt or scene.active):
            alpha_out = np.zeros(cfg.video_shape[:2] + cfg.video_shape[3:], dtype=np.float32)
        video = renderer.render(
            positions[: cfg.frames], look, rng, alpha_out=alpha_out, instants=blur
        )
        # Options beyond the default draw from ``rng`` only from here on: samples without
        # them keep their bytes.
        visible = alpha_out
        if scene.active:
            extras = scene.add(video, positions, look, alpha_out, rng)
            visible = extras.visible
            label.update(extras.record)
        if gt:
            label["ground_truth"] = ground_truth(
                cams,
                cfg.image_size,
                positions[: cfg.frames],
                alpha_out,
                visible,
                cfg.ground_truth.masks,
            )
        return video, label
