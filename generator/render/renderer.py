"""A shaded ball and its shadow over a checkered ground: numpy, then one compiled pass per camera.

Each camera's background (ground plane by ray casting, sky above the horizon)
is drawn once per clip; the ball and its shadow are then composited per frame
in small patches, so the cost is nearly independent of the image size. The
ball's centre is drawn exactly where ``K (R X + t)`` projects: coverage is an
anti-aliased disc around that sub-pixel point (u = column, v = row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from generator.config import AppearanceConfig
from generator.render.arith import exp32, int_power, matvec, norm3
from generator.render.cameras import Camera

FOG_DISTANCE = 40.0  # metres: far ground fades into the horizon colour
CHECKER_FADE = 25.0  # metres: checker contrast fades before it would alias
SPECULAR_POWER = 24  # a whole number: the highlight is drawn by multiplications alone


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


def hsv(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def sample_look(rng: np.random.Generator, cfg: AppearanceConfig) -> Look:
    ground_hue = rng.uniform(0, 1)
    az = rng.uniform(0, 2 * np.pi)
    el = rng.uniform(np.radians(35), np.radians(75))
    return Look(
        ball_rgb=hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.0)),
        ball_radius=float(rng.uniform(cfg.ball_radius.lo, cfg.ball_radius.hi)),
        ground_a=hsv(ground_hue, rng.uniform(0.1, 0.35), rng.uniform(0.45, 0.6)),
        ground_b=hsv(ground_hue, rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.38)),
        checker_size=float(rng.uniform(cfg.checker_size.lo, cfg.checker_size.hi)),
        sky_horizon=hsv(rng.uniform(0.5, 0.65), rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)),
        sky_zenith=hsv(rng.uniform(0.55, 0.65), rng.uniform(0.35, 0.6), rng.uniform(0.6, 0.8)),
        light_dir=np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]),
        ambient=float(rng.uniform(0.3, 0.45)),
    )


FAR = np.float32(1e6)  # ground coordinate given to sky pixels: no shadow reaches them


@dataclass(frozen=True)
class _RayGeometry:
    """What each pixel of one camera sees, independent of the sample: computed once.

    Per-pixel arrays are flat (H * W), like the frames the background is written
    into; patches read them through (S, S) window views. The background is a
    per-pixel mix of a few sample colours; ``weights`` holds the mixing weights.
    """

    ground_x: np.ndarray  # (HW,) float32 ground point seen at each pixel (FAR for sky)
    ground_y: np.ndarray
    weights: np.ndarray  # (3, HW): lit ground mean, horizon colour, zenith colour
    contrast: np.ndarray  # (HW,) how much checker contrast survives fog and distance


def _ray_geometry(cam: Camera, size: int) -> _RayGeometry:
    v, u = np.mgrid[0:size, 0:size].reshape(2, -1).astype(np.float64)
    K = cam.K  # a pinhole without skew (``build_rig``): K^-1 undoes a scale and a shift
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    rays = matvec(cam.R.T, rays_cam)  # camera to world
    rays /= norm3(rays)[:, None]
    centre = cam.centre
    down = rays[:, 2] < -1e-6
    dist = np.where(down, -centre[2] / np.where(down, rays[:, 2], -1.0), 0.0)
    ground = np.where(down[:, None], centre[:2] + rays[:, :2] * dist[:, None], FAR)
    fog = 1 - np.exp(-dist / FOG_DISTANCE)
    up = np.clip(rays[:, 2], 0.0, 1.0) ** 0.6
    weights = np.stack(
        [
            np.where(down, 1 - fog, 0.0),  # lit mean ground colour, fading into fog
            np.where(down, fog, 1 - up),  # horizon colour: fog on the ground, low sky
            np.where(down, 0.0, up),  # zenith colour: high sky
        ]
    )
    return _RayGeometry(
        ground_x=ground[:, 0].astype(np.float32),
        ground_y=ground[:, 1].astype(np.float32),
        weights=weights.astype(np.float32),
        contrast=np.where(down, np.exp(-dist / CHECKER_FADE) * (1 - fog), 0.0).astype(np.float32),
    )


@dataclass(frozen=True)
class _RigGeometry:
    """All cameras' constants stacked on a leading camera axis: one numpy call serves every camera.

    Moving cameras (``camera_motion``) add a frame axis after the camera's: rotations
    (V, T, 3, 3), translations (V, T, 3); their per-pixel arrays are empty.
    """

    rotations: np.ndarray  # (V, 3, 3)
    translations: np.ndarray  # (V, 1, 3)
    intrinsics: np.ndarray  # (V, 3, 3)
    focal: np.ndarray  # (V, 1): K[0, 0], pixels per unit of x / z
    ground_x: np.ndarray  # (V, HW)
    ground_y: np.ndarray
    weights: np.ndarray  # (V, 3, HW)
    contrast: np.ndarray  # (V, HW)

    @property
    def moving(self) -> bool:
        return self.rotations.ndim == 4


def _rig_geometry(cams: list[Camera], size: int) -> _RigGeometry:
    """Moving cameras' ground and backgrounds depend on the frame: ``posed_backgrounds``."""
    translations = np.stack([cam.t for cam in cams])
    moving = translations.ndim == 3
    nothing = _RayGeometry(*[np.empty((0,), dtype=np.float32)] * 4)
    rays = [nothing if moving else _ray_geometry(cam, size) for cam in cams]
    return _RigGeometry(
        rotations=np.stack([cam.R for cam in cams]),
        translations=translations[:, None, :] if translations.ndim == 2 else translations,
        intrinsics=np.stack([cam.K for cam in cams]),
        focal=np.array([[cam.K[0, 0]] for cam in cams]),
        ground_x=np.stack([geo.ground_x for geo in rays]),
        ground_y=np.stack([geo.ground_y for geo in rays]),
        weights=np.stack([geo.weights for geo in rays]),
        contrast=np.stack([geo.contrast for geo in rays]),
    )


def project_points(rig: _RigGeometry, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Camera.project`` of points (..., T, 3) by every camera: (u, v) (..., V, T, 2) and depth (..., V, T).

    The same products, in the same order, as ``Camera.project``, so the same bits.
    Moving cameras project frame t's point with frame t's pose.
    """
    rotations = rig.rotations if rig.moving else rig.rotations[:, None]
    cam_points = matvec(rotations, points[..., None, :, :]) + rig.translations
    uvw = matvec(rig.intrinsics[:, None], cam_points)
    return uvw[..., :2] / uvw[..., 2:3], cam_points[..., 2]


def camera_lighting(rig: _RigGeometry, look: Look) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float32 directions, in each camera's frame, towards the light and half-way to it.

    (V, T, 3) for moving cameras.
    """
    light = matvec(rig.rotations, look.light_dir).astype(np.float32)
    half = light + np.array([0.0, 0.0, -1.0], dtype=np.float32)
    half /= norm3(half)[..., None]
    return light, half


def _palette(look: Look) -> tuple[np.ndarray, np.ndarray]:
    """The background's colours (3 channels, 3 weights) and half the checker's difference (3,), float32.

    Weights: lit mean ground colour, horizon colour, zenith colour.
    """
    lit = look.ambient + (1 - look.ambient) * max(look.light_dir[2], 0.0)
    colours = np.stack(
        [lit * (look.ground_a + look.ground_b) / 2, look.sky_horizon, look.sky_zenith], axis=1
    )
    half_difference = (lit * 255.0 / 2 * (look.ground_a - look.ground_b)).astype(np.float32)
    return (colours * 255.0).astype(np.float32), half_difference


def _backgrounds(rig: _RigGeometry, look: Look) -> np.ndarray:
    """Every camera's static frame (V, 3, HW) in 0..255: lit checkered ground with fog, sky above."""
    colours, half_difference = _palette(look)
    c, w = colours[:, :, None], rig.weights[:, :, None]
    frames = c[:, 0] * w[:, 0] + c[:, 1] * w[:, 1] + c[:, 2] * w[:, 2]
    checker = look.checker_size
    squares = np.floor(rig.ground_x / checker) + np.floor(rig.ground_y / checker)
    # squares % 2, exactly (whole numbers, as float32): float % costs ten times more.
    parity = squares - 2 * np.floor(squares * 0.5)
    sign = (2 * parity - 1) * rig.contrast  # +1 on ground_a squares, -1 on ground_b
    frames += half_difference[:, None] * sign[:, None, :]
    return frames


@numba.njit(cache=True, nogil=True)
def _posed_rays(ground_x, ground_y, dist, up, intrinsics, rotations, centres):
    """What ``_ray_geometry`` computes, for N camera poses (N, S, S) at once, up to its ``exp``s.

    ``dist`` is each ground pixel's distance along its unit ray (-1 for sky), ``up`` each
    sky pixel's ``clip(z, 0, 1) ** 0.6``; ``intrinsics`` is (fx, cx, fy, cy), ``rotations``
    (N, 3, 3) world to camera, ``centres`` (N, 3). The same float64 steps as numpy's, in
    the same order, so a pose gets the bits a static camera there would.
    """
    count, size = dist.shape[0], dist.shape[1]
    fx, cx, fy, cy = intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]
    for n in range(count):
        R, centre = rotations[n], centres[n]
        for y in range(size):
            b = (y - cy) / fy
            for x in range(size):
                a = (x - cx) / fx
                rx = R[0, 0] * a + R[1, 0] * b + R[2, 0]  # R^T (a, b, 1): camera to world
                ry = R[0, 1] * a + R[1, 1] * b + R[2, 1]
                rz = R[0, 2] * a + R[1, 2] * b + R[2, 2]
                length = np.sqrt(rx * rx + ry * ry + rz * rz)
                rx, ry, rz = rx / length, ry / length, rz / length
                if rz < -1e-6:  # the ground
                    d = -centre[2] / rz
                    ground_x[n, y, x] = np.float32(centre[0] + rx * d)
                    ground_y[n, y, x] = np.float32(centre[1] + ry * d)
                    dist[n, y, x], up[n, y, x] = d, 0.0
                else:  # the sky
                    ground_x[n, y, x], ground_y[n, y, x] = FAR, FAR
                    dist[n, y, x], up[n, y, x] = -1.0, min(max(rz, 0.0), 1.0) ** 0.6


@numba.njit(cache=True, nogil=True)
def _posed_colours(
    out, ground_x, ground_y, dist, up, near, fade, colours, half_difference, checker
):
    """``_backgrounds`` of N poses (N, 3, S, S) from ``_posed_rays``' arrays and ``near`` =
    exp(-dist / FOG_DISTANCE), ``fade`` = exp(-dist / CHECKER_FADE) (numpy's, vectorised)."""
    count, size = dist.shape[0], dist.shape[1]
    two, one, half = np.float32(2.0), np.float32(1.0), np.float32(0.5)
    for n in range(count):
        for y in range(size):
            for x in range(size):
                if dist[n, y, x] >= 0.0:  # the ground, fading into fog
                    fog = 1.0 - near[n, y, x]
                    w0, w1, w2 = np.float32(1.0 - fog), np.float32(fog), np.float32(0.0)
                    contrast = np.float32(fade[n, y, x] * (1.0 - fog))
                else:  # the sky: horizon colour low, zenith colour high
                    u = up[n, y, x]
                    w0, w1, w2 = np.float32(0.0), np.float32(1.0 - u), np.float32(u)
                    contrast = np.float32(0.0)
                gx, gy = ground_x[n, y, x], ground_y[n, y, x]
                squares = np.floor(gx / checker) + np.floor(gy / checker)
                parity = squares - two * np.floor(squares * half)
                sign = (two * parity - one) * contrast
                for c in range(3):
                    value = colours[c, 0] * w0 + colours[c, 1] * w1 + colours[c, 2] * w2
                    out[n, c, y, x] = value + half_difference[c] * sign


def posed_backgrounds(
    cams: list[Camera], size: int, look: Look
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moving cameras' backgrounds (V, T, 3, S, S) and ground points (V, T, S, S) for ``look``.

    What ``_ray_geometry`` and ``_backgrounds`` compute for a static camera once per clip,
    for every pose: two compiled passes around numpy's vectorised ``exp`` (numpy took
    80 ms a clip; a compiled scalar ``exp`` was 40% of 20 ms).
    """
    views, count = len(cams), len(cams[0].R)
    shape = (views * count, size, size)
    ground_x, ground_y = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
    dist, up = np.empty(shape), np.empty(shape)
    K = cams[0].K
    _posed_rays(
        ground_x,
        ground_y,
        dist,
        up,
        np.array([K[0, 0], K[0, 2], K[1, 1], K[1, 2]]),
        np.concatenate([cam.R for cam in cams]),
        np.concatenate([cam.centre for cam in cams]),
    )
    out = np.empty((views * count, 3, size, size), dtype=np.float32)
    colours, half_difference = _palette(look)
    near, fade = np.exp(-dist / FOG_DISTANCE), np.exp(-dist / CHECKER_FADE)
    _posed_colours(
        out,
        ground_x,
        ground_y,
        dist,
        up,
        near,
        fade,
        colours,
        half_difference,
        np.float32(look.checker_size),
    )
    return (
        out.reshape(views, count, 3, size, size),
        ground_x.reshape(views, count, size, size),
        ground_y.reshape(views, count, size, size),
    )


def patch_windows(images: np.ndarray, patch: int) -> np.ndarray:
    """Every ``patch`` x ``patch`` window of images (..., S, S), as a view (..., S-P+1, S-P+1, P, P).

    Indexing it with per-frame corners gathers or writes whole patches: over twice
    as fast as a flat pixel index, which also had to be built.
    """
    size = images.shape[-1]
    shape = images.shape[:-2] + (size - patch + 1, size - patch + 1, patch, patch)
    return np.lib.stride_tricks.as_strided(images, shape, images.strides + images.strides[-2:])


def patch_corners(uv: np.ndarray, patches: np.ndarray, size: int) -> np.ndarray:
    """Top-left pixel (..., V, T, 2) as (column, row) of each patch around (u, v), kept in the image.

    ``patches`` (..., V) are already at most ``size``; NaN and infinite projections
    land on the clamp edges.
    """
    patches = patches[..., None, None]
    x = np.nan_to_num(uv, nan=-1e6, posinf=1e6, neginf=-1e6)
    return np.clip(np.round(x).astype(np.int64) - patches // 2, 0, size - patches)


@dataclass(frozen=True)
class _Shadow:
    """Per-frame (T, 1, 1) float32 terms of the shadow, the same for every camera."""

    x: np.ndarray  # the ball's ground point
    y: np.ndarray
    strength: np.ndarray
    spread_sq: np.ndarray


def _shadow_darkening(
    ground_x: np.ndarray, ground_y: np.ndarray, corners: np.ndarray, patch: int, shadow: _Shadow
) -> np.ndarray:
    """The factor (T, P, P) that darkens the ground under the ball in each frame's patch.

    A soft disc that widens and fades with height; ``ground_x`` and ``ground_y``
    are (S, S), or (T, S, S) for a moving camera, ``corners`` (T, 2) each frame's patch
    corner as (column, row). A blurred shadow's terms have a leading axis of instants
    (N, T, 1, 1): the factor is their mean.
    """
    if shadow.x.ndim == 4:
        return _blurred_shadow(ground_x, ground_y, corners, patch, shadow)
    rows, cols = corners[:, 1], corners[:, 0]
    at = (np.arange(len(corners)), rows, cols) if ground_x.ndim == 3 else (rows, cols)
    dx = patch_windows(ground_x, patch)[at] - shadow.x
    dy = patch_windows(ground_y, patch)[at] - shadow.y
    return 1.0 - shadow.strength * exp32(-(dx * dx + dy * dy) / shadow.spread_sq)


@numba.njit(cache=True, nogil=True)
def _mean_shadow(dark, ground_x, ground_y, corners, x, y, strength, spread_sq):
    """``dark`` (T, P, P): the mean over instants (N, T) of ``_shadow_darkening``'s factor.

    ``ground_x`` and ``ground_y`` are (T, S, S), or (1, S, S) for a static camera.
    """
    count, side = dark.shape[0], dark.shape[1]
    share = np.float32(1.0 / x.shape[0])
    for t in range(count):
        g = t if ground_x.shape[0] > 1 else 0
        col, row = corners[t, 0], corners[t, 1]
        for i in range(side):
            for j in range(side):
                gx, gy = ground_x[g, row + i, col + j], ground_y[g, row + i, col + j]
                total = np.float32(0.0)
                for k in range(x.shape[0]):
                    dx, dy = gx - x[k, t], gy - y[k, t]
                    fall = np.float32(np.exp(np.float64(-(dx * dx + dy * dy) / spread_sq[k, t])))
                    total += np.float32(1.0) - strength[k, t] * fall
                dark[t, i, j] = total * share


def _blurred_shadow(
    ground_x: np.ndarray, ground_y: np.ndarray, corners: np.ndarray, patch: int, shadow: _Shadow
) -> np.ndarray:
    """The blurred shadow's factor (T, P, P): its terms are (N, T, 1, 1), one per instant."""
    dark = np.empty((len(corners), patch, patch), dtype=np.float32)
    frames = ground_x if ground_x.ndim == 3 else ground_x[None]
    ys = ground_y if ground_y.ndim == 3 else ground_y[None]
    terms = (shadow.x, shadow.y, shadow.strength, shadow.spread_sq)
    _mean_shadow(dark, frames, ys, corners, *(np.ascontiguousarray(a[..., 0, 0]) for a in terms))
    return dark


@numba.njit(cache=True, nogil=True)
def to_pixel(value, noise):
    """A float32 value plus its noise, + 0.5 so that truncation rounds, clipped to a byte."""
    value = value + np.float32(noise) + np.float32(0.5)
    return np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))


@numba.njit(cache=True, nogil=True)
def _composite(
    out, background, noise, shadow_corners, dark, ball_corners, colour, alpha, ball_side
):
    """One camera's clip in one pass: ``out`` (T, 3, S, S) uint8 from its ``background`` (3, S, S).

    Every pixel is background + ``noise`` (T, 3, S, S), rounded and clipped; pixels
    in a frame's shadow patch are first multiplied by ``dark`` (T, P, P), pixels in
    its ball patch blended towards ``colour`` (T, 3, >= B, >= B) by ``alpha``
    (T, >= B, >= B), of which the top-left B x B are this camera's. Corners are
    (column, row). Compiled (numba), as numpy took five passes over a
    float clip for this (copy, noise, + 0.5, clip, cast): make 2.6 -> 1.9 ms per
    sample. The float32 steps are the same, in the same order, so the bytes are too.
    """
    count, channels, size = out.shape[0], out.shape[1], out.shape[2]
    shade_side = dark.shape[1]
    for t in range(count):
        for c in range(channels):
            for y in range(size):
                for x in range(size):
                    out[t, c, y, x] = to_pixel(background[c, y, x], noise[t, c, y, x])
        sc, sr = shadow_corners[t, 0], shadow_corners[t, 1]
        bc, br = ball_corners[t, 0], ball_corners[t, 1]
        for c in range(channels):
            for y in range(sr, sr + shade_side):
                for x in range(sc, sc + shade_side):
                    value = background[c, y, x] * dark[t, y - sr, x - sc]
                    if br <= y < br + ball_side and bc <= x < bc + ball_side:
                        a = alpha[t, y - br, x - bc]
                        value = value + (colour[t, c, y - br, x - bc] - value) * a
                    out[t, c, y, x] = to_pixel(value, noise[t, c, y, x])
            for y in range(br, br + ball_side):
                for x in range(bc, bc + ball_side):
                    if sr <= y < sr + shade_side and sc <= x < sc + shade_side:
                        continue  # done above, shadow first
                    value = background[c, y, x]
                    a = alpha[t, y - br, x - bc]
                    value = value + (colour[t, c, y - br, x - bc] - value) * a
                    out[t, c, y, x] = to_pixel(value, noise[t, c, y, x])


def shade_balls(
    corners: np.ndarray,
    patch: int,
    uv: np.ndarray,
    r: np.ndarray,
    light: np.ndarray,
    half: np.ndarray,
    look: Look,
) -> tuple[np.ndarray, np.ndarray]:
    """The shaded ball's colour (V, T, 3, P, P) and coverage (V, T, P, P) in every camera at once.

    ``corners`` (V, T, 2) are the patches' corners as (column, row), ``uv`` (V, T, 2)
    the centre and ``r`` (V, T, 1, 1) the float32 radius in pixels; ``light`` and
    ``half`` (V, 3) are the light and half-way directions in each camera's frame.
    ``patch`` is the largest camera's side: a camera with a smaller patch uses the
    top-left corner of its grid, whose pixels have the same values as a grid of its own.
    Offsets along a row (dx) or a column (dy) are computed once and broadcast.
    """
    rows, cols = corners[..., 1, None, None], corners[..., 0, None, None]
    ar = np.arange(patch)
    dx = (cols + ar - uv[..., 0, None, None]).astype(np.float32)  # (V, T, 1, P)
    dy = (rows + ar[:, None] - uv[..., 1, None, None]).astype(np.float32)  # (V, T, P, 1)
    dist = np.sqrt(dx * dx + dy * dy)
    alpha = np.clip(r + 0.5 - dist, 0.0, 1.0)
    # Unit normals: the sphere's inside the disc, the silhouette's (n_z = 0) on the
    # anti-aliased rim outside it. Divided by r alone, a rim normal was up to 1 + 0.5 / r
    # long, and its highlight (n.h)^24 turned rim pixels white (or, for a ball under a
    # pixel wide, overflowed to inf and made NaN: black pixels).
    length = np.maximum(r, dist)
    nx, ny = dx / length, dy / length
    nz = -np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))  # facing the camera
    # (3, V, 1, 1, 1) for static cameras, (3, V, T, 1, 1) for moving ones.
    pad = (..., *[None] * (5 - light.ndim))
    lx, ly, lz = np.moveaxis(light, -1, 0)[pad]
    hx, hy, hz = np.moveaxis(half, -1, 0)[pad]
    # np.clip(x, lo, hi) is np.minimum(np.maximum(x, lo), hi), without np.clip's wrappers.
    lambert = np.maximum(nx * lx + ny * ly + nz * lz, 0.0)
    spec = int_power(np.maximum(nx * hx + ny * hy + nz * hz, 0.0), SPECULAR_POWER)
    shade = look.ambient + (1 - look.ambient) * lambert
    rgb = (look.ball_rgb * 255.0).astype(np.float32)[:, None, None]
    return rgb * shade[..., None, :, :] + 128.0 * spec[..., None, :, :], alpha


NOISE_BANK_SIZE = 1 << 24  # 16 Mi values, shared by all samples at random offsets
_NOISE_BANK: np.ndarray | None = None


def _noise_bank() -> np.ndarray:
    """Binomial(16, 1/2) - 8 values (std 2, a close Gaussian), made once per process.

    Drawing fresh noise for every value of every frame cost more than the rest
    of the renderer; each sample instead reads the bank at an offset drawn from
    its own random stream, so it stays a pure function of (seed, index).
    """
    global _NOISE_BANK
    if _NOISE_BANK is None:
        raw = np.random.default_rng(0x5E1150).bit_generator.random_raw(NOISE_BANK_SIZE // 4)
        bank = np.bitwise_count(raw.view(np.uint16)).view(np.int8)
        bank -= 8
        _NOISE_BANK = bank
    return _NOISE_BANK


def pixel_noise(shape: tuple[int, ...], std: float, rng: np.random.Generator) -> np.ndarray:
    """This clip's noise, a view of the bank (int8 for std 2, else scaled float32)."""
    bank = _noise_bank()
    n = int(np.prod(shape))
    if n > len(bank):
        raise ValueError(
            f"clips of {n} values exceed the noise bank ({len(bank)}); lower image_size or frames"
        )
    offset = int(rng.integers(0, len(bank) - n + 1))
    noise = bank[offset : offset + n].reshape(shape)
    return noise if std == 2.0 else noise.astype(np.float32) * np.float32(std / 2.0)


class Renderer:
    """Renders clips for a fixed rig; per-camera ray geometry is computed once."""

    def __init__(self, cams: list[Camera], size: int, noise_std: float) -> None:
        self.cams = cams
        self.size = size
        self.rig = _rig_geometry(cams, size)
        self.noise_std = noise_std

    def render(
        self,
        positions: np.ndarray,
        look: Look,
        rng: np.random.Generator,
        alpha_out: np.ndarray | None = None,
        instants: np.ndarray | None = None,
    ) -> np.ndarray:
        """Render ``positions`` (T, 3) from every camera: uint8 (V, T, 3, size, size).

        ``alpha_out``, if given as float (V, T, size, size), receives the ball's coverage.
        ``instants`` (N, T, 3), if given, are the ball's positions within each frame's
        shutter (``motion_blur``): the ball and its shadow are then their mean.
        What the cameras share or can compute together (projections, patch corners,
        backgrounds, the ball's shading) is done for all at once: numpy's per-call
        cost dominated the small patches. Each camera's clip is then composited
        straight into the uint8 output.
        """
        size, views, count = self.size, len(self.cams), len(positions)
        shape = (views, count, 3, size, size)
        if self.noise_std > 0:
            noise = pixel_noise(shape, self.noise_std, rng)
        else:
            noise = np.zeros(shape, dtype=np.int8)

        # What the per-camera drawing needs, computed for every camera at once.
        if instants is None:
            foot = positions.copy()
            foot[:, 2] = 0.0
            uv, depth = project_points(self.rig, np.stack([foot, positions]))
            shadow, reach = self._shadow(positions, look, depth[0])
            radius = self.rig.focal * look.ball_radius / depth[1]  # pixels
            # Patch sides (2, V) for shadow and ball, converted in the order cameras were drawn
            # before, so a NaN or infinite size raises the same error.
            shadow_sides = 2 * np.ceil(np.max(reach, axis=1)) + 3
            ball_sides = 2 * np.ceil(radius.max(axis=1)) + 3
            pairs = zip(shadow_sides, ball_sides, strict=True)
            patches = [[min(int(s), size) for s in pair] for pair in pairs]
            corners = patch_corners(uv, np.array(patches).T, size)
        else:
            corners, patches, uv, radius, shadow = self._blurred_patches(instants, look)
        light, half = camera_lighting(self.rig, look)
        r = radius.astype(np.float32)[..., None, None]  # (V, T, 1, 1), or (N, V, T, 1, 1)

        if self.rig.moving:  # a background per frame
            backgrounds, ground_x, ground_y = posed_backgrounds(self.cams, size, look)
        else:
            ground_x = self.rig.ground_x.reshape(views, size, size)
            ground_y = self.rig.ground_y.reshape(views, size, size)
            backgrounds = _backgrounds(self.rig, look).reshape(views, 3, size, size)
        out = np.empty(shape, dtype=np.uint8)
        ball_patch = max(ball_side for _, ball_side in patches)
        if ball_patch > 0:
            shade = shade_balls if instants is None else blurred_balls
            colour, coverage = shade(corners[1], ball_patch, uv[1], r, light, half, look)
        else:  # behind every camera
            colour = np.empty((views, count, 3, 0, 0), dtype=np.float32)
            coverage = colour[:, :, 0]
        frame = np.arange(count)
        for i in range(views):
            shadow_side, ball_side = patches[i]
            if shadow_side > 0:
                dark = _shadow_darkening(
                    ground_x[i], ground_y[i], corners[0, i], shadow_side, shadow
                )
            else:
                dark = coverage[i, :, :0, :0]
            ball_side = max(ball_side, 0)
            # A moving camera has a background per frame: one compiled pass per frame.
            steps = [slice(f, f + 1) for f in range(count)] if self.rig.moving else [slice(None)]
            for f, step in enumerate(steps):
                _composite(
                    out[i, step],
                    backgrounds[i, f] if self.rig.moving else backgrounds[i],
                    noise[i, step],
                    corners[0, i, step],
                    dark[step],
                    corners[1, i, step],
                    colour[i, step],
                    coverage[i, step],
                    ball_side,
                )
            if alpha_out is not None and ball_side > 0:
                rows, cols = corners[1, i, :, 1], corners[1, i, :, 0]
                alpha = coverage[i, :, :ball_side, :ball_side]
                patch_windows(alpha_out[i], ball_side)[frame, rows, cols] = alpha
        return out

    def _shadow(
        self, positions: np.ndarray, look: Look, foot_depth: np.ndarray
    ) -> tuple[_Shadow, np.ndarray]:
        """The shadow's terms for ball positions (..., T, 3), and its reach in pixels (..., V, T)."""
        spread = (look.ball_radius * (1.0 + 0.15 * positions[..., 2])).astype(np.float32)
        shadow = _Shadow(
            x=positions[..., 0:1, None].astype(np.float32),
            y=positions[..., 1:2, None].astype(np.float32),
            strength=(0.6 * np.exp(-positions[..., 2:3, None] / 3.0)).astype(np.float32),
            spread_sq=np.square(spread)[..., None, None],
        )
        reach = self.rig.focal * 2.0 * spread[..., None, :] / np.maximum(foot_depth, 1e-3)
        return shadow, reach

    def _blurred_patches(
        self, instants: np.ndarray, look: Look
    ) -> tuple[np.ndarray, list[list[int]], np.ndarray, np.ndarray, _Shadow]:
        """Patches that hold the ball and its shadow at every instant (N, T, 3) of each frame.

        Returns the corners (2, V, T, 2), the sides per camera, the instants' centres
        (2, N, V, T, 2) and radii (N, V, T), and the shadow's terms (N, T, 1, 1).
        """
        foot = instants.copy()
        foot[..., 2] = 0.0
        uv, depth = project_points(self.rig, np.stack([foot, instants]))
        shadow, reach = self._shadow(instants, look, depth[0])
        radius = self.rig.focal * look.ball_radius / depth[1]
        extent = np.stack([reach, radius])[..., None]  # (2, N, V, T, 1)
        lo, hi = (uv - extent).min(axis=1), (uv + extent).max(axis=1)  # (2, V, T, 2)
        half_side = ((hi - lo) / 2).max(axis=-1)
        sides = 2 * np.ceil(half_side.max(axis=-1)) + 3  # (2, V): anti-aliased rims fit
        patches = [[min(int(s), self.size) for s in pair] for pair in sides.T]
        corners = patch_corners((lo + hi) / 2, np.array(patches).T, self.size)
        return corners, patches, uv, radius, shadow


@numba.njit(cache=True, nogil=True)
def _mean_balls(colour, alpha, corners, uv, r, light, half, rgb, ambient):
    """``shade_balls`` at N instants, fused: their mean coverage and mean premultiplied colour.

    ``colour`` (V, T, 3, P, P) and ``alpha`` (V, T, P, P) are filled; ``uv`` is
    (N, V, T, 2), ``r`` (N, V, T) float32 (negative: not drawn), ``light`` and ``half``
    (V, T, 3). An instant adds nothing to a pixel it does not cover, so most of the
    shading numpy did for every pixel and instant (three times the sharp clip's cost)
    is skipped. The same float32 steps as ``shade_balls`` per instant.
    """
    count, views, frames = uv.shape[0], uv.shape[1], uv.shape[2]
    side = alpha.shape[2]
    share = np.float32(1.0 / count)
    zero, one, half_px = np.float32(0.0), np.float32(1.0), np.float32(0.5)
    lit = one - ambient
    for v in range(views):
        for t in range(frames):
            col, row = corners[v, t, 0], corners[v, t, 1]
            lx, ly, lz = light[v, t, 0], light[v, t, 1], light[v, t, 2]
            hx, hy, hz = half[v, t, 0], half[v, t, 1], half[v, t, 2]
            for i in range(side):
                for j in range(side):
                    cover, red, green, blue = zero, zero, zero, zero
                    for k in range(count):
                        dx = np.float32(col + j - uv[k, v, t, 0])
                        dy = np.float32(row + i - uv[k, v, t, 1])
                        dist = np.sqrt(dx * dx + dy * dy)
                        a = min(max(r[k, v, t] + half_px - dist, zero), one)
                        if a <= zero:
                            continue
                        length = max(r[k, v, t], dist)
                        nx, ny = dx / length, dy / length
                        nz = -np.sqrt(min(max(one - nx * nx - ny * ny, zero), one))
                        lambert = max(nx * lx + ny * ly + nz * lz, zero)
                        s = max(nx * hx + ny * hy + nz * hz, zero)
                        s2 = s * s
                        s8 = s2 * s2 * (s2 * s2)
                        spec = s8 * (s8 * s8)  # s ** SPECULAR_POWER (24)
                        shade = ambient + lit * lambert
                        glint = np.float32(128.0) * spec
                        cover += a
                        red += (rgb[0] * shade + glint) * a
                        green += (rgb[1] * shade + glint) * a
                        blue += (rgb[2] * shade + glint) * a
                    mean = cover * share
                    alpha[v, t, i, j] = mean
                    scale = share / mean if mean > zero else zero
                    colour[v, t, 0, i, j] = red * scale
                    colour[v, t, 1, i, j] = green * scale
                    colour[v, t, 2, i, j] = blue * scale


def blurred_balls(
    corners: np.ndarray,
    patch: int,
    uv: np.ndarray,
    r: np.ndarray,
    light: np.ndarray,
    half: np.ndarray,
    look: Look,
) -> tuple[np.ndarray, np.ndarray]:
    """``shade_balls`` for a ball at N instants (``uv`` (N, V, T, 2), ``r`` (N, V, T, 1, 1)):
    one ball of their mean coverage and mean premultiplied colour, (V, T, 3, P, P) and
    (V, T, P, P). Blended over a background as ``value + (colour - value) * coverage``, it
    gives the mean of the N blends wherever the instants do not overlap the shadow."""
    views, frames = uv.shape[1], uv.shape[2]
    colour = np.empty((views, frames, 3, patch, patch), dtype=np.float32)
    alpha = np.empty((views, frames, patch, patch), dtype=np.float32)
    if light.ndim == 2:  # static cameras: the same directions every frame
        light, half = (np.repeat(d[:, None], frames, axis=1) for d in (light, half))
    _mean_balls(
        colour,
        alpha,
        np.ascontiguousarray(corners),
        np.ascontiguousarray(uv),
        np.ascontiguousarray(r[..., 0, 0], dtype=np.float32),
        np.ascontiguousarray(light),
        np.ascontiguousarray(half),
        (look.ball_rgb * 255.0).astype(np.float32),
        np.float32(look.ambient),
    )
    return colour, alpha
