"""Optional scene content, drawn over the default render: distractor balls, pillars, lighting drift.

Everything here is drawn from the sample's random stream *after* the default render has
taken its share, so a sample that uses none of it keeps its bytes, and one that does
still depends only on ``(seed, index)``. The default renderer draws the target ball,
its shadow and the ground; this module then composites, per pixel and far to near, the
pillars (ray-cast boxes, flat-shaded) and the distractors (shaded like the target, no
shadow), letting the target stay in front wherever it is nearer. Painted pixels get
fresh sensor noise from the same bank as the rest. It also returns how much of the
target each pixel still shows, which the per-frame ground truth is made from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numba
import numpy as np

from generator.config import DistractorConfig, GeneratorConfig
from generator.render.blur import instants
from generator.render.cameras import Camera
from generator.render.renderer import (
    Look,
    Renderer,
    blurred_balls,
    camera_lighting,
    hsv,
    patch_corners,
    patch_windows,
    pixel_noise,
    project_points,
    shade_balls,
    to_pixel,
)
from generator.render.trajectories import sample_trajectory

PLACEMENT_TRIES = 100  # per pillar or distractor; one that does not fit is left out


@dataclass(frozen=True)
class Ball:
    """A distractor: its own path (observed frames plus horizon), size and colour."""

    class_label: int
    positions: np.ndarray  # (frames + horizon, 3)
    radius: float
    rgb: np.ndarray  # (3,) in 0..1

    def as_dict(self) -> dict:
        return {
            "class_label": self.class_label,
            "radius": self.radius,
            "rgb": self.rgb.tolist(),
            "positions": self.positions.tolist(),
        }


@dataclass(frozen=True)
class Pillar:
    """A box standing on the ground, turned by ``yaw`` about the vertical through ``centre``."""

    centre: np.ndarray  # (2,) x, y of the footprint's centre
    half_sides: np.ndarray  # (2,) half the footprint's sides, along its own axes
    height: float
    yaw: float  # radians
    rgb: np.ndarray

    def as_dict(self) -> dict:
        return {
            "centre": self.centre.tolist(),
            "half_sides": self.half_sides.tolist(),
            "height": self.height,
            "yaw": self.yaw,
            "rgb": self.rgb.tolist(),
        }

    def _to_local(self, xy: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        d = xy - self.centre
        return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], -1)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) from world points (N, 3) to the box (0 inside)."""
        local = np.abs(self._to_local(points[:, :2])) - self.half_sides
        above = np.maximum(points[:, 2] - self.height, 0.0)
        flat = np.linalg.norm(np.maximum(local, 0.0), axis=1)
        return np.hypot(flat, above)


def target_rgb(cfg: DistractorConfig) -> np.ndarray:
    """The target's colour when distractors are on: the documented cue that tells it apart."""
    return hsv(cfg.target_hue, 0.9, 0.95)


def _clear(path: np.ndarray, pillars: list[Pillar], margin: float) -> bool:
    return all(p.distance(path).min() > margin for p in pillars)


def sample_pillars(
    rng: np.random.Generator, cfg: GeneratorConfig, target: np.ndarray
) -> list[Pillar]:
    o_cfg = cfg.occluders
    assert o_cfg is not None
    pillars: list[Pillar] = []
    for _ in range(o_cfg.count):
        for _ in range(PLACEMENT_TRIES):
            pillar = Pillar(
                centre=np.array(
                    [
                        rng.uniform(cfg.scene.x.lo, cfg.scene.x.hi),
                        rng.uniform(cfg.scene.y.lo, cfg.scene.y.hi),
                    ]
                ),
                half_sides=rng.uniform(o_cfg.width.lo, o_cfg.width.hi, 2) / 2,
                height=float(rng.uniform(o_cfg.height.lo, o_cfg.height.hi)),
                yaw=float(rng.uniform(0, np.pi / 2)),
                rgb=hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.25), rng.uniform(0.35, 0.7)),
            )
            if _clear(target, [pillar], o_cfg.clearance):
                pillars.append(pillar)
                break
    return pillars


def sample_distractors(
    rng: np.random.Generator, cfg: GeneratorConfig, pillars: list[Pillar]
) -> list[Ball]:
    d_cfg = cfg.distractors
    assert d_cfg is not None
    balls: list[Ball] = []
    gap = d_cfg.min_hue_gap
    for _ in range(d_cfg.count):
        for _ in range(PLACEMENT_TRIES):
            class_label = int(rng.integers(len(cfg.class_names)))
            positions, _ = sample_trajectory(rng, class_label, cfg)
            radius = float(rng.uniform(d_cfg.radius.lo, d_cfg.radius.hi))
            hue = (d_cfg.target_hue + gap + rng.uniform(0.0, 1.0 - 2 * gap)) % 1.0
            rgb = hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.0))
            if _clear(positions, pillars, radius):
                balls.append(Ball(class_label, positions, radius, rgb))
                break
    return balls


def _pillar_layer(
    cam: Camera, size: int, pillars: list[Pillar], look: Look
) -> tuple[np.ndarray, np.ndarray]:
    """Depth (S, S) of the nearest pillar at each pixel (inf where none) and its colour (3, S, S).

    Rays are ``R^T K^-1 (u, v, 1)`` from the camera centre: with the camera-frame z of
    each ray 1, the distance along it to a hit is that point's depth.
    """
    v, u = np.mgrid[0:size, 0:size].reshape(2, -1).astype(np.float64)
    K = cam.K
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    rays = rays @ cam.R  # rows R^T d: camera to world
    origin = cam.centre
    depth = np.full(size * size, np.inf)
    colour = np.zeros((size * size, 3))
    light = look.light_dir
    for p in pillars:
        c, s = math.cos(p.yaw), math.sin(p.yaw)
        o = np.array([*p._to_local(origin[:2]), origin[2]])
        d = np.stack(
            [c * rays[:, 0] + s * rays[:, 1], -s * rays[:, 0] + c * rays[:, 1], rays[:, 2]], -1
        )
        lo = np.array([-p.half_sides[0], -p.half_sides[1], 0.0])
        hi = np.array([p.half_sides[0], p.half_sides[1], p.height])
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - o) / d, (hi - o) / d
        near = np.nan_to_num(np.minimum(t1, t2), nan=-np.inf)
        far = np.nan_to_num(np.maximum(t1, t2), nan=np.inf)
        t_in, t_out = near.max(axis=1), far.min(axis=1)
        hit = (t_in <= t_out) & (t_in > 0) & (t_in < depth)
        axis = near.argmax(axis=1)
        normal_local = np.zeros((size * size, 3))
        normal_local[np.arange(size * size), axis] = -np.sign(d[np.arange(size * size), axis])
        normal = np.stack(
            [
                c * normal_local[:, 0] - s * normal_local[:, 1],
                s * normal_local[:, 0] + c * normal_local[:, 1],
                normal_local[:, 2],
            ],
            -1,
        )
        shade = look.ambient + (1 - look.ambient) * np.maximum(normal @ light, 0.0)
        depth = np.where(hit, t_in, depth)
        colour = np.where(hit[:, None], 255.0 * p.rgb * shade[:, None], colour)
    return depth.reshape(size, size), colour.T.reshape(3, size, size)


@numba.njit(cache=True, nogil=True)
def _posed_pillar_layers(depth, colour, intrinsics, rotations, centres, boxes, light, ambient):
    """``_pillar_layer`` for N camera poses at once: depth (N, S, S) (inf where no pillar) and
    colour (N, 3, S, S), both filled in place from inf and 0.

    A moving camera needs the pillars anew in every frame, and numpy took 100 ms a clip
    for it; here each pose casts rays only through the pixels inside a pillar's projected
    corners. ``boxes`` (P, 10) are each pillar's centre (2), half sides (2), height, cos
    and sin of its yaw, and colour (3); ``intrinsics`` is (fx, cx, fy, cy).
    """
    count, size = depth.shape[0], depth.shape[1]
    fx, cx, fy, cy = intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]
    lo, hi, o, d = np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3)
    for n in range(count):
        R, centre = rotations[n], centres[n]
        for p in range(boxes.shape[0]):
            c, s = boxes[p, 5], boxes[p, 6]
            lo[0], lo[1], lo[2] = -boxes[p, 2], -boxes[p, 3], 0.0
            hi[0], hi[1], hi[2] = boxes[p, 2], boxes[p, 3], boxes[p, 4]
            ox, oy = centre[0] - boxes[p, 0], centre[1] - boxes[p, 1]
            o[0], o[1], o[2] = c * ox + s * oy, -s * ox + c * oy, centre[2]
            # The pixels the box can cover: its 8 corners' projections (all, if one is behind).
            u0, u1, v0, v1, behind = np.inf, -np.inf, np.inf, -np.inf, False
            for k in range(8):
                lx = hi[0] if k & 1 else lo[0]
                ly = hi[1] if k & 2 else lo[1]
                wx = boxes[p, 0] + c * lx - s * ly
                wy = boxes[p, 1] + s * lx + c * ly
                wz = hi[2] if k & 4 else 0.0
                py = R[1, 0] * (wx - centre[0]) + R[1, 1] * (wy - centre[1])
                py += R[1, 2] * (wz - centre[2])
                pz = R[2, 0] * (wx - centre[0]) + R[2, 1] * (wy - centre[1])
                pz += R[2, 2] * (wz - centre[2])
                px = R[0, 0] * (wx - centre[0]) + R[0, 1] * (wy - centre[1])
                px += R[0, 2] * (wz - centre[2])
                if pz <= 1e-9:
                    behind = True
                    break
                u, v = fx * px / pz + cx, fy * py / pz + cy
                u0, u1, v0, v1 = min(u0, u), max(u1, u), min(v0, v), max(v1, v)
            if behind:
                x0, x1, y0, y1 = 0, size, 0, size
            else:
                x0, x1 = max(int(np.floor(u0)) - 1, 0), min(int(np.ceil(u1)) + 2, size)
                y0, y1 = max(int(np.floor(v0)) - 1, 0), min(int(np.ceil(v1)) + 2, size)
            for y in range(y0, y1):
                b = (y - cy) / fy
                for x in range(x0, x1):
                    a = (x - cx) / fx
                    rx = R[0, 0] * a + R[1, 0] * b + R[2, 0]  # R^T (a, b, 1): unit camera z
                    ry = R[0, 1] * a + R[1, 1] * b + R[2, 1]
                    d[0], d[1], d[2] = c * rx + s * ry, -s * rx + c * ry, R[0, 2] * a
                    d[2] += R[1, 2] * b + R[2, 2]
                    t_in, t_out, axis = -np.inf, np.inf, -1
                    for k in range(3):
                        if d[k] == 0.0:
                            if o[k] < lo[k] or o[k] > hi[k]:
                                t_out = -np.inf  # parallel to this slab and outside it
                            continue
                        t1, t2 = (lo[k] - o[k]) / d[k], (hi[k] - o[k]) / d[k]
                        near, far = min(t1, t2), max(t1, t2)
                        if near > t_in:
                            t_in, axis = near, k
                        t_out = min(t_out, far)
                    if not (axis >= 0 and t_in <= t_out and 0 < t_in < depth[n, y, x]):
                        continue
                    side = -1.0 if d[axis] > 0 else 1.0  # the entered face's outward normal
                    nl0 = side if axis == 0 else 0.0
                    nl1 = side if axis == 1 else 0.0
                    nz = side if axis == 2 else 0.0
                    nx, ny = c * nl0 - s * nl1, s * nl0 + c * nl1
                    lit = max(nx * light[0] + ny * light[1] + nz * light[2], 0.0)
                    shade = ambient + (1 - ambient) * lit
                    depth[n, y, x] = t_in
                    for ch in range(3):
                        colour[n, ch, y, x] = 255.0 * boxes[p, 7 + ch] * shade


def _posed_pillars(
    cam: Camera, size: int, pillars: list[Pillar], look: Look
) -> tuple[np.ndarray, np.ndarray]:
    """A moving camera's pillar layers, one per frame: depth (T, S, S) and colour (T, 3, S, S)."""
    count = len(cam.R)
    depth = np.full((count, size, size), np.inf)
    colour = np.zeros((count, 3, size, size))
    boxes = np.array(
        [
            [*p.centre, *p.half_sides, p.height, math.cos(p.yaw), math.sin(p.yaw), *p.rgb]
            for p in pillars
        ]
    )
    K = cam.K
    _posed_pillar_layers(
        depth,
        colour,
        np.array([K[0, 0], K[0, 2], K[1, 1], K[1, 2]]),
        cam.R,
        cam.centre,
        boxes,
        look.light_dir,
        look.ambient,
    )
    return depth, colour


@numba.njit(cache=True, nogil=True)
def _paint_layers(
    clip, frame, rows, cols, depth, alpha, colour, a0, target_depth, noise, has_noise, visible
):
    """Blend layers far to near into ``clip`` (T, 3, S, S) at the pixels they cover; their coverage of the target into ``visible`` (T, S, S).

    Pixel ``j`` is (``frame[j]``, ``rows[j]``, ``cols[j]``); per layer
    ``depth`` (L, n), ``alpha`` (L, n) and ``colour`` (L, 3, n). A layer nearer than the
    target hides it; a farther one shows only where the target's coverage ``a0`` leaves
    room. Painted pixels get ``noise`` in proportion to the paint. Compiled, as numpy's
    version sorted and gathered whole (L, n) arrays per step; the float32 steps are the
    same, in the same order (layers by depth, stable; the product over layers in layer
    order), so the bytes are too.
    """
    one = np.float32(1.0)
    layers, n = depth.shape
    order = np.empty(layers, dtype=np.int64)
    for j in range(n):
        f, y, x = frame[j], rows[j], cols[j]
        for k in range(layers):  # insertion sort, far to near; ties keep layer order
            m = k
            while m > 0 and depth[order[m - 1], j] < depth[k, j]:
                order[m] = order[m - 1]
                m -= 1
            order[m] = k
        r = np.float32(clip[f, 0, y, x])
        g = np.float32(clip[f, 1, y, x])
        b = np.float32(clip[f, 2, y, x])
        keep = one
        for k in range(layers):
            idx = order[k]
            a = alpha[idx, j] if depth[idx, j] < target_depth[f] else alpha[idx, j] * (one - a0[j])
            r = r + (colour[idx, 0, j] - r) * a
            g = g + (colour[idx, 1, j] - g) * a
            b = b + (colour[idx, 2, j] - b) * a
            keep = keep * (one - a)
        for c, value in enumerate((r, g, b)):  # + 0.0 without noise leaves every value as it is
            grain = (one - keep) * np.float32(noise[f, c, y, x]) if has_noise else np.float32(0.0)
            clip[f, c, y, x] = to_pixel(value, grain)
        hidden = one
        for k in range(layers):
            if depth[k, j] < target_depth[f]:
                hidden = hidden * (one - alpha[k, j])
        visible[f, y, x] = a0[j] * hidden


@dataclass(frozen=True)
class Extras:
    """What a sample added: for the label, and the target's visible coverage (V, T, S, S)."""

    visible: np.ndarray
    record: dict


class SceneDecorator:
    """Adds the config's optional content to rendered clips; holds the per-camera constants."""

    def __init__(self, cfg: GeneratorConfig, renderer: Renderer) -> None:
        self.cfg = cfg
        self.renderer = renderer

    @property
    def active(self) -> bool:
        c = self.cfg
        return c.distractors is not None or c.occluders is not None or c.lighting is not None

    def dress(self, look: Look) -> Look:
        """The target's look: with distractors, always the cue colour (no random draw)."""
        if self.cfg.distractors is None:
            return look
        return replace(look, ball_rgb=target_rgb(self.cfg.distractors))

    def add(
        self,
        video: np.ndarray,
        positions: np.ndarray,
        look: Look,
        coverage: np.ndarray,
        rng: np.random.Generator,
    ) -> Extras:
        """Draw this sample's extras from ``rng`` and composite them into ``video`` in place."""
        cfg, renderer = self.cfg, self.renderer
        frames = cfg.frames
        observed = positions[:frames]
        pillars = sample_pillars(rng, cfg, positions) if cfg.occluders is not None else []
        balls = sample_distractors(rng, cfg, pillars) if cfg.distractors is not None else []
        record: dict = {}
        if cfg.occluders is not None:
            record["occluders"] = [p.as_dict() for p in pillars]
        if cfg.distractors is not None:
            record["distractors"] = [b.as_dict() for b in balls]
        visible = coverage
        if pillars or balls:
            noise = (
                pixel_noise(video.shape, renderer.noise_std, rng)
                if renderer.noise_std > 0
                else None
            )
            visible = self._composite(video, observed, look, coverage, pillars, balls, noise)
        if cfg.lighting is not None:
            drift = cfg.lighting.drift
            amplitude = rng.uniform(-drift, drift) / 2 + rng.uniform(-drift, drift, 3) / 2
            ramp = np.linspace(-1.0, 1.0, frames)
            gain = (1.0 + np.outer(ramp, amplitude)).astype(np.float32)  # (T, 3)
            lit = video * gain[None, :, :, None, None] + np.float32(0.5)
            video[...] = np.clip(lit, 0.0, 255.0).astype(np.uint8)
            record["lighting_gain"] = {"first": gain[0].tolist(), "last": gain[-1].tolist()}
        return Extras(visible=visible, record=record)

    def _composite(
        self,
        video: np.ndarray,
        target: np.ndarray,
        look: Look,
        coverage: np.ndarray,
        pillars: list[Pillar],
        balls: list[Ball],
        noise: np.ndarray | None,
    ) -> np.ndarray:
        """Paint pillars and distractors far to near over each camera's clip; the target's visible coverage.

        A layer is hidden by the target where the target is nearer, in proportion to the
        target's coverage there (its clip already shows the target over the ground).
        Only pixels some layer covers are touched: the others keep their bytes.
        """
        size = self.renderer.size
        views, count = video.shape[:2]
        pixels = size * size
        _, target_depth = project_points(self.renderer.rig, target)  # (V, T)
        balls_drawn = [self._draw_ball(ball, look, count) for ball in balls]
        visible = coverage.astype(np.float32, copy=True)
        for i, cam in enumerate(self.renderer.cams):
            # Only the pixels some layer covers are gathered, layer by layer (L, n).
            covered = np.zeros((count, pixels), dtype=bool)
            if pillars and cam.R.ndim == 3:  # a moving camera sees them anew in each frame
                d, c = _posed_pillars(cam, size, pillars, look)
                pillar = (d.reshape(count, pixels), c.transpose(1, 0, 2, 3).reshape(3, count, -1))
            elif pillars:  # the same in every frame
                d, c = _pillar_layer(cam, size, pillars, look)
                pillar = (d.reshape(1, pixels), c.reshape(3, 1, pixels))
            if pillars:
                covered |= np.isfinite(pillar[0])
            for _, _, alpha in balls_drawn:
                covered |= alpha[i].reshape(count, pixels) > 0
            frame, pixel = np.nonzero(covered)
            depths, alphas, colours = [], [], []
            if pillars:
                at = (np.minimum(frame, len(pillar[0]) - 1), pixel)
                depths.append(pillar[0][at])
                alphas.append(np.isfinite(depths[-1]).astype(np.float32))
                colours.append(pillar[1][:, at[0], at[1]].astype(np.float32))
            for depth, colour, alpha in balls_drawn:
                depths.append(depth[i][frame])
                alphas.append(alpha[i].reshape(count, pixels)[frame, pixel])
                colours.append(colour[i].reshape(3, count, pixels)[:, frame, pixel])
            layer_depth, layer_alpha = np.stack(depths), np.stack(alphas)
            layer_colour = np.stack(colours)  # (L, 3, n)
            rows, cols = np.divmod(pixel, size)
            a0 = coverage[i][frame, rows, cols].astype(np.float32)
            has_noise = noise is not None
            _paint_layers(
                video[i], frame, rows, cols, layer_depth, layer_alpha, layer_colour, a0,
                target_depth[i], noise[i] if has_noise else video[i], has_noise, visible[i],
            )  # fmt: skip
        return visible

    def _draw_ball(
        self, ball: Ball, look: Look, count: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A distractor's depth (V, T), colour (V, 3, T, S, S) and coverage (V, T, S, S), shaded like the target.

        With ``motion_blur``, the mean of its instants (its depth is the frame time's).
        """
        rig, size = self.renderer.rig, self.renderer.size
        uv, depth = project_points(rig, ball.positions[:count])
        blur = self.cfg.motion_blur
        if blur is not None:
            uv_at, depth_at = project_points(rig, instants(ball.positions, count, blur))
        else:
            uv_at, depth_at = uv, depth
        front = depth_at > 0
        radius = np.where(front, rig.focal * ball.radius / np.where(front, depth_at, 1.0), 0.0)
        views = len(self.renderer.cams)
        if blur is not None:  # a patch that holds every instant
            lo = (uv_at - radius[..., None]).min(axis=0)
            hi = (uv_at + radius[..., None]).max(axis=0)
            patch = min(int(2 * np.ceil(((hi - lo) / 2).max()) + 3), size)
            corners = patch_corners((lo + hi) / 2, np.full(views, patch), size)
        else:
            patch = min(int(2 * np.ceil(radius.max()) + 3), size)
            corners = patch_corners(uv, np.full(views, patch), size)
        light, half = camera_lighting(rig, look)
        r = radius.astype(np.float32)[..., None, None]
        shaded = replace(look, ball_rgb=ball.rgb)
        if blur is None:
            colour, alpha = shade_balls(corners, patch, uv, r, light, half, shaded)
            alpha *= front[..., None, None]
        else:  # an instant behind the camera is not drawn
            r = np.where(front[..., None, None], r, np.float32(-1.0))
            colour, alpha = blurred_balls(corners, patch, uv_at, r, light, half, shaded)
        full_colour = np.zeros((views, 3, count, size, size), dtype=np.float32)
        full_alpha = np.zeros((views, count, size, size), dtype=np.float32)
        frame = np.arange(count)
        for i in range(views):
            rows, cols = corners[i, :, 1], corners[i, :, 0]
            patch_windows(full_alpha[i], patch)[frame, rows, cols] = alpha[i]
            patch_windows(full_colour[i], patch)[:, frame, rows, cols] = colour[i].transpose(
                1, 0, 2, 3
            )
        return depth, full_colour, full_alpha
