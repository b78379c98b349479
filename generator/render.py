"""Vectorised numpy renderer: a shaded ball and its shadow over a checkered ground.

Each camera's background (ground plane by ray casting, sky above the horizon)
is drawn once per clip; the ball and its shadow are then composited per frame
in small patches, so the cost is nearly independent of the image size. The
ball's centre is drawn exactly where ``K (R X + t)`` projects: coverage is an
anti-aliased disc around that sub-pixel point (u = column, v = row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.cameras import Camera
from generator.config import AppearanceConfig

FOG_DISTANCE = 40.0  # metres: far ground fades into the horizon colour
CHECKER_FADE = 25.0  # metres: checker contrast fades before it would alias
SPECULAR_POWER = 24.0


@dataclass(frozen=True)
class Look:
    """Everything about a sample's appearance that is drawn at random."""

    ball_rgb: np.ndarray  # (3,) in 0..1
    ball_radius: float  # metres
    ground_a: np.ndarray  # (3,)
    ground_b: np.ndarray  # (3,)
    checker_size: float  # metres
    sky_horizon: np.ndarray  # (3,)
    sky_zenith: np.ndarray  # (3,)
    light_dir: np.ndarray  # (3,) unit vector towards the light, world frame
    ambient: float

    def as_dict(self) -> dict:
        return {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()
        }


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def sample_look(rng: np.random.Generator, cfg: AppearanceConfig) -> Look:
    ground_hue = rng.uniform(0, 1)
    az = rng.uniform(0, 2 * np.pi)
    el = rng.uniform(np.radians(35), np.radians(75))
    return Look(
        ball_rgb=_hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.0)),
        ball_radius=float(rng.uniform(cfg.ball_radius.lo, cfg.ball_radius.hi)),
        ground_a=_hsv(ground_hue, rng.uniform(0.1, 0.35), rng.uniform(0.45, 0.6)),
        ground_b=_hsv(ground_hue, rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.38)),
        checker_size=float(rng.uniform(cfg.checker_size.lo, cfg.checker_size.hi)),
        sky_horizon=_hsv(rng.uniform(0.5, 0.65), rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)),
        sky_zenith=_hsv(rng.uniform(0.55, 0.65), rng.uniform(0.35, 0.6), rng.uniform(0.6, 0.8)),
        light_dir=np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]),
        ambient=float(rng.uniform(0.3, 0.45)),
    )


@dataclass(frozen=True)
class _RayGeometry:
    """What each pixel of one camera sees, independent of the sample: computed once."""

    down: np.ndarray  # (H, W) bool: the ray hits the ground
    ground: np.ndarray  # (H, W, 2) float32 ground point (inf where the ray misses)
    fog: np.ndarray  # (H, W, 1) fog weight of the ground
    fade: np.ndarray  # (H, W, 1) checker contrast left at that distance
    sky_up: np.ndarray  # (H, W, 1) sky gradient weight


def _ray_geometry(cam: Camera, size: int) -> _RayGeometry:
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    rays_cam = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(cam.K).T
    rays = rays_cam @ cam.R  # camera to world: R^T d, row-vector form
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    centre = cam.centre
    down = rays[..., 2] < -1e-6
    dist = np.where(down, -centre[2] / np.where(down, rays[..., 2], -1.0), 0.0)
    ground = np.where(down[..., None], centre[:2] + rays[..., :2] * dist[..., None], np.inf)
    return _RayGeometry(
        down=down,
        ground=ground.astype(np.float32),
        fog=(1 - np.exp(-dist / FOG_DISTANCE))[..., None],
        fade=np.exp(-dist / CHECKER_FADE)[..., None],
        sky_up=(np.clip(rays[..., 2:3], 0.0, 1.0) ** 0.6),
    )


def _background(geo: _RayGeometry, look: Look) -> np.ndarray:
    """One camera's static frame (H, W, 3) in 0..255: lit checkered ground with fog, sky above."""
    with np.errstate(invalid="ignore"):
        cells = np.floor(geo.ground / look.checker_size)
    parity = np.nan_to_num(cells[..., 0] + cells[..., 1]) % 2
    mean = (look.ground_a + look.ground_b) / 2
    checker = np.where(parity[..., None] > 0, look.ground_a, look.ground_b)
    lit = look.ambient + (1 - look.ambient) * max(look.light_dir[2], 0.0)
    ground_rgb = (mean + (checker - mean) * geo.fade) * lit
    ground_rgb = ground_rgb * (1 - geo.fog) + look.sky_horizon * geo.fog
    sky_rgb = look.sky_horizon * (1 - geo.sky_up) + look.sky_zenith * geo.sky_up
    return (np.where(geo.down[..., None], ground_rgb, sky_rgb) * 255.0).astype(np.float32)


def _patch_index(
    u: np.ndarray, v: np.ndarray, patch: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows and columns (T, P, P) of a patch around each (u, v), kept inside the image."""
    patch = min(patch, size)

    def corner(x: np.ndarray) -> np.ndarray:
        x = np.nan_to_num(x, nan=-1e6, posinf=1e6, neginf=-1e6)
        return np.clip(np.round(x).astype(np.int64) - patch // 2, 0, size - patch)

    ar = np.arange(patch)
    shape = (len(u), patch, patch)
    rows = np.broadcast_to(corner(v)[:, None, None] + ar[None, :, None], shape)
    cols = np.broadcast_to(corner(u)[:, None, None] + ar[None, None, :], shape)
    return rows, cols


def _draw_shadow(
    frames: np.ndarray, geo: _RayGeometry, cam: Camera, pos: np.ndarray, look: Look
) -> None:
    """Darken the ground under the ball: a soft disc that widens and fades with height."""
    size = frames.shape[1]
    foot = pos.copy()
    foot[:, 2] = 0.0
    uv, depth = cam.project(foot)
    spread = (look.ball_radius * (1.0 + 0.15 * pos[:, 2])).astype(np.float32)
    strength = (0.6 * np.exp(-pos[:, 2] / 3.0)).astype(np.float32)
    patch = int(2 * np.ceil(np.max(cam.K[0, 0] * 2.0 * spread / np.maximum(depth, 1e-3))) + 3)
    rows, cols = _patch_index(uv[:, 0], uv[:, 1], patch, size)
    g = geo.ground[rows, cols]  # (T, P, P, 2)
    xy = pos[:, None, None, :2].astype(np.float32)
    d2 = np.square(g - xy).sum(axis=-1)
    with np.errstate(invalid="ignore", over="ignore"):
        dark = 1.0 - strength[:, None, None] * np.exp(-d2 / np.square(spread)[:, None, None])
    t = np.arange(len(pos))[:, None, None]
    frames[t, rows, cols] *= np.nan_to_num(dark, nan=1.0)[..., None]


def _draw_ball(
    frames: np.ndarray, cam: Camera, pos: np.ndarray, look: Look, alpha_out: np.ndarray | None
) -> None:
    size = frames.shape[1]
    uv, depth = cam.project(pos)
    radius = cam.K[0, 0] * look.ball_radius / depth  # pixels
    patch = int(2 * np.ceil(radius.max()) + 3)
    rows, cols = _patch_index(uv[:, 0], uv[:, 1], patch, size)
    r = radius[:, None, None].astype(np.float32)
    dx = (cols - uv[:, 0, None, None]).astype(np.float32)
    dy = (rows - uv[:, 1, None, None]).astype(np.float32)
    alpha = np.clip(r + 0.5 - np.sqrt(dx * dx + dy * dy), 0.0, 1.0)

    nx, ny = dx / r, dy / r
    nz = -np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))  # facing the camera
    light = (cam.R @ look.light_dir).astype(np.float32)
    lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, None)
    half = light + np.array([0.0, 0.0, -1.0], dtype=np.float32)
    half /= np.linalg.norm(half)
    spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0.0, None) ** SPECULAR_POWER
    shade = look.ambient + (1 - look.ambient) * lambert
    colour = (look.ball_rgb * 255.0).astype(np.float32) * shade[..., None] + 128.0 * spec[..., None]

    t = np.arange(len(pos))[:, None, None]
    a = alpha[..., None]
    frames[t, rows, cols] = frames[t, rows, cols] * (1 - a) + colour * a
    if alpha_out is not None:
        alpha_out[t, rows, cols] = alpha


def _add_noise(frames: np.ndarray, std: float, rng: np.random.Generator) -> None:
    """Add Binomial(16, 1/2) - 8 noise per value (std 2, a close Gaussian), scaled to ``std``.

    Counting the set bits of 16 random bits is several times cheaper than drawing
    normals, and noise runs over every value of every frame.
    """
    raw = rng.bit_generator.random_raw(frames.size // 4 + 1).view(np.uint16)[: frames.size]
    counts = np.bitwise_count(raw).view(np.int8).reshape(frames.shape)
    counts -= 8
    if std == 2.0:
        frames += counts
    else:
        frames += counts.astype(np.float32) * np.float32(std / 2.0)


class Renderer:
    """Renders clips for a fixed rig; per-camera ray geometry is computed once."""

    def __init__(self, cams: list[Camera], size: int, noise_std: float) -> None:
        self.cams = cams
        self.size = size
        self.geometry = [_ray_geometry(cam, size) for cam in cams]
        self.noise_std = noise_std

    def render(
        self,
        positions: np.ndarray,
        look: Look,
        rng: np.random.Generator,
        alpha_out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Render ``positions`` (T, 3) from every camera: uint8 (V, T, 3, size, size).

        ``alpha_out``, if given as float (V, T, size, size), receives the ball's coverage.
        """
        size = self.size
        frames = np.empty((len(self.cams), len(positions), size, size, 3), dtype=np.float32)
        for i, (cam, geo) in enumerate(zip(self.cams, self.geometry, strict=True)):
            frames[i] = _background(geo, look)
            _draw_shadow(frames[i], geo, cam, positions, look)
            _draw_ball(frames[i], cam, positions, look, None if alpha_out is None else alpha_out[i])
        if self.noise_std > 0:
            _add_noise(frames, self.noise_std, rng)
        frames += 0.5  # so that truncation to uint8 rounds
        np.clip(frames, 0.0, 255.0, out=frames)
        return np.ascontiguousarray(frames.astype(np.uint8).transpose(0, 1, 4, 2, 3))
