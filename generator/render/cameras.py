"""Pinhole camera rig: pixel = K (R X + t), OpenCV convention.

Camera axes: x right, y down, z forward. Pixel centres sit at integer
coordinates, u = column, v = row, so the image spans [-0.5, size - 0.5].
A static camera has ``R`` (3, 3) and ``t`` (3,); a moving one (``camera_motion``)
has one pose per frame, ``R`` (T, 3, 3) and ``t`` (T, 3), and projects frame f's
point with frame f's pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generator.config import GeneratorConfig
from generator.render.arith import matvec, norm3


@dataclass(frozen=True)
class Camera:
    K: np.ndarray  # (3, 3) intrinsics
    R: np.ndarray  # (3, 3) world-to-camera rotation
    t: np.ndarray  # (3,) world-to-camera translation

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in world coordinates: C = -R^T t."""
        return -matvec(np.swapaxes(self.R, -1, -2), self.t)

    def to_camera(self, X: np.ndarray) -> np.ndarray:
        """World points (..., 3) to camera coordinates (..., 3); a moving camera's (T, 3) frame by frame."""
        return matvec(self.R, X) + self.t

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) to pixels (..., 2) as (u, v), and their depth (...)."""
        Xc = self.to_camera(X)
        uvw = matvec(self.K, Xc)
        return uvw[..., :2] / uvw[..., 2:3], Xc[..., 2]

    def as_dict(self) -> dict:
        return {"K": self.K.tolist(), "R": self.R.tolist(), "t": self.t.tolist()}


def look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation of a camera at ``centre`` looking at ``target``, world z up."""
    forward = target - centre
    forward /= norm3(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= norm3(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -matvec(R, centre)


def build_rig(cfg: GeneratorConfig) -> list[Camera]:
    rig = cfg.cameras
    size = cfg.image_size
    focal = (size / 2) / math.tan(math.radians(rig.fov_deg) / 2)
    c = (size - 1) / 2
    K = np.array([[focal, 0.0, c], [0.0, focal, c], [0.0, 0.0, 1.0]])
    target = np.asarray(rig.look_at, dtype=np.float64)
    cams = []
    for az, el in zip(rig.azimuths_deg, rig.elevations_deg, strict=True):
        a, e = math.radians(az), math.radians(el)
        offset = rig.distance * np.array(
            [math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]
        )
        R, t = look_at(target + offset, target)
        cams.append(Camera(K=K.copy(), R=R, t=t))
    return cams


# The tag of the random stream camera poses are drawn from: ``[seed, index, CAMERA_STREAM]``,
# apart from the sample's own stream, so turning camera motion on moves the cameras only.
CAMERA_STREAM = 0xCA3E7A


def camera_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, CAMERA_STREAM])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for stacks of 3x3 matrices, with ``arith``'s machine-independent products."""
    return np.swapaxes(matvec(a[..., None, :, :], np.swapaxes(b, -1, -2)), -1, -2)


def rotation(vec: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) turning by ``|vec|`` radians about ``vec`` (..., 3) (Rodrigues)."""
    angle = norm3(vec)
    k = vec / np.where(angle > 0, angle, 1.0)[..., None]
    x, y, z = k[..., 0], k[..., 1], k[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    v = 1.0 - c
    rows = [
        [c + x * x * v, x * y * v - z * s, x * z * v + y * s],
        [y * x * v + z * s, c + y * y * v, y * z * v - x * s],
        [z * x * v - y * s, z * y * v + x * s, c + z * z * v],
    ]
    return np.stack([np.stack(row, -1) for row in rows], -2)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of stacks of 3-vectors (..., 3), the same products, without its overhead."""
    x = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    y = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    return np.stack([x, y, a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def aim(centres: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``look_at``'s rotation for many centres (T, 3) at once: (T, 3, 3)."""
    forward = target - centres
    forward /= norm3(forward)[:, None]
    right = _cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= norm3(right)[:, None]
    return np.stack([right, _cross(forward, right), forward], -2)


def camera_path(cfg: GeneratorConfig, rng: np.random.Generator) -> list[Camera]:
    """This sample's moving rig (``cfg.camera_motion``): each camera with a pose per observed frame.

    Orbit: every camera's azimuth sweeps ``orbit_deg`` linearly over the clip, centred
    on its nominal azimuth, in one direction for the whole rig. Jitter: each frame's
    centre moves by up to ``jitter_m`` per world axis, the camera is aimed at ``look_at``
    from there and then turned by up to ``jitter_deg`` about each of its own axes.
    """
    motion = cfg.camera_motion
    assert motion is not None
    rig, frames = cfg.cameras, cfg.frames
    K = build_rig(cfg)[0].K
    target = np.asarray(rig.look_at, dtype=np.float64)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    sweep = direction * math.radians(motion.orbit_deg) * (np.arange(frames) / (frames - 1) - 0.5)
    shake = math.radians(motion.jitter_deg)
    cams = []
    for az, el in zip(rig.azimuths_deg, rig.elevations_deg, strict=True):
        a, e = math.radians(az) + sweep, math.radians(el)
        offset = rig.distance * np.stack(
            [math.cos(e) * np.cos(a), math.cos(e) * np.sin(a), np.full(frames, math.sin(e))], -1
        )
        centres = target + offset + rng.uniform(-motion.jitter_m, motion.jitter_m, (frames, 3))
        R = compose(rotation(rng.uniform(-shake, shake, (frames, 3))), aim(centres, target))
        cams.append(Camera(K=K.copy(), R=R, t=-matvec(R, centres)))
    return cams
