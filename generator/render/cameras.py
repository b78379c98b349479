"""Pinhole camera rig: pixel = K (R X + t), OpenCV convention.

Camera axes: x right, y down, z forward. Pixel centres sit at integer
coordinates, u = column, v = row, so the image spans [-0.5, size - 0.5].
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
        return -matvec(self.R.T, self.t)

    def to_camera(self, X: np.ndarray) -> np.ndarray:
        """World points (..., 3) to camera coordinates (..., 3)."""
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
