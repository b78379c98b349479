"""The motion families, each a law sampled from validated ranges: the four default ones
and the opt-in Bouncing, Damped and Switching (``classes:`` in the config).

Every sampler takes a numpy ``Generator`` and returns world positions for the
observed frames plus the horizon, shape ``(frames + horizon, 3)``, and the
parameters that produced them. Candidates leaving the scene box are redrawn,
so every returned path (future position included) stays in the box.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from generator.config import (
    KNOWN_CLASS_NAMES,
    BouncingConfig,
    DampedConfig,
    GeneratorConfig,
    Range,
    SceneConfig,
    SwitchingConfig,
)
from generator.render.arith import norm3

MAX_TRIES = 1000


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r.lo, r.hi))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors, the same products and differences, at a tenth of its cost."""
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / norm3(v)


def _plane_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two orthonormal vectors spanning the plane perpendicular to ``normal``."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = _cross(normal, helper)
    a /= norm3(a)
    return a, _cross(normal, a)


def _circle(centre: np.ndarray, normal: np.ndarray, radius: float, angle: np.ndarray) -> np.ndarray:
    """Points at ``angle`` (T,) on the circle of ``radius`` about ``centre`` perpendicular to ``normal``."""
    a, b = _plane_basis(normal)
    return centre + radius * (np.outer(np.cos(angle), a) + np.outer(np.sin(angle), b))


def _random_point(rng: np.random.Generator, scene: SceneConfig) -> np.ndarray:
    return np.array([_u(rng, scene.x), _u(rng, scene.y), _u(rng, scene.z)])


def linear(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Constant velocity: p(t) = c + v (t - t_mid)."""
    c_cfg = cfg.linear
    heading = rng.uniform(0, 2 * np.pi)
    climb = rng.uniform(-1.0, 1.0) * math.asin(c_cfg.max_vertical_fraction)
    d = np.array([np.cos(climb) * np.cos(heading), np.cos(climb) * np.sin(heading), np.sin(climb)])
    speed = _u(rng, c_cfg.speed)
    centre = _random_point(rng, cfg.scene)
    v = d * speed
    t_mid = t[len(t) // 2]
    pos = centre + np.outer(t - t_mid, v)
    return pos, {"start": pos[0].tolist(), "velocity": v.tolist(), "speed": speed}


def circular(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Uniform circular motion in a randomly oriented plane."""
    c_cfg = cfg.circular
    normal = _unit(rng)
    radius = _u(rng, c_cfg.radius)
    turns = _u(rng, c_cfg.swept_turns)
    omega = 2 * np.pi * turns / (t[cfg.frames - 1] - t[0])
    phase = rng.uniform(0, 2 * np.pi)
    centre = _random_point(rng, cfg.scene)
    pos = _circle(centre, normal, radius, phase + omega * t)
    params = {
        "centre": centre.tolist(),
        "normal": normal.tolist(),
        "radius": radius,
        "angular_speed": omega,
        "phase": phase,
        "turns_observed": turns,
    }
    return pos, params


def helical(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Circular motion about an axis plus a steady drift along it."""
    h_cfg = cfg.helical
    axis = _unit(rng)
    radius = _u(rng, h_cfg.radius)
    turns = _u(rng, h_cfg.swept_turns)
    duration = t[cfg.frames - 1] - t[0]
    omega = 2 * np.pi * turns / duration
    drift_speed = _u(rng, h_cfg.drift) / duration
    phase = rng.uniform(0, 2 * np.pi)
    centre = _random_point(rng, cfg.scene)
    tc = t - t[len(t) // 2]
    pos = _circle(centre, axis, radius, phase + omega * t) + np.outer(tc * drift_speed, axis)
    params = {
        "centre": centre.tolist(),
        "axis": axis.tolist(),
        "radius": radius,
        "angular_speed": omega,
        "drift_speed": drift_speed,
        "phase": phase,
        "turns_observed": turns,
    }
    return pos, params


def parabolic(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Projectile under gravity: p(t) = p0 + v0 t - g t^2 / 2 ez, apex inside the observed window."""
    p_cfg = cfg.parabolic
    g = p_cfg.gravity
    t_apex = _u(rng, p_cfg.apex_fraction) * (t[cfg.frames - 1] - t[0])
    vz = g * t_apex
    heading = rng.uniform(0, 2 * np.pi)
    vh = _u(rng, p_cfg.horizontal_speed)
    v0 = np.array([vh * np.cos(heading), vh * np.sin(heading), vz])
    p0 = np.array([_u(rng, cfg.scene.x), _u(rng, cfg.scene.y), _u(rng, p_cfg.start_height)])
    tt = t - t[0]
    pos = p0 + np.outer(tt, v0)
    pos[:, 2] -= 0.5 * g * tt**2
    return pos, {"start": p0.tolist(), "velocity": v0.tolist(), "gravity": g, "apex_time": t_apex}


def bouncing(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Thrown under gravity, bouncing off the floor (``scene.z.lo``), keeping ``restitution``
    of its vertical speed at each bounce; the first bounce falls inside the observed window.
    A bounce whose flight would be shorter than a frame ends it: the ball then rolls on."""
    b_cfg = cfg.bouncing or BouncingConfig()
    g = b_cfg.gravity
    floor = cfg.scene.z.lo
    t_hit = _u(rng, b_cfg.first_bounce_fraction) * (t[cfg.frames - 1] - t[0])
    height = _u(rng, b_cfg.start_height)
    heading = rng.uniform(0, 2 * np.pi)
    vh = _u(rng, b_cfg.horizontal_speed)
    e = _u(rng, b_cfg.restitution)
    p0 = np.array([_u(rng, cfg.scene.x), _u(rng, cfg.scene.y), floor + height])
    vz = (0.5 * g * t_hit * t_hit - height) / t_hit  # so that it reaches the floor at t_hit
    v0 = np.array([vh * np.cos(heading), vh * np.sin(heading), vz])
    tt = t - t[0]
    # Impact times and the upward speed after each: flights of 2 v / g, v shrinking by e
    # (so at most frames + horizon flights of a frame or more fit in the clip).
    hits, speeds = [t_hit], [e * (g * t_hit - vz)]
    while hits[-1] <= tt[-1] and 2 * speeds[-1] / g >= 1 / cfg.fps:
        hits.append(hits[-1] + 2 * speeds[-1] / g)
        speeds.append(e * speeds[-1])
    if 2 * speeds[-1] / g < 1 / cfg.fps:
        speeds[-1] = 0.0
    pos = p0 + np.outer(tt, v0)
    pos[:, 2] -= 0.5 * g * tt**2  # the first flight
    segment = np.searchsorted(np.asarray(hits), tt, side="right")  # bounces before each time
    for k in range(1, int(segment.max()) + 1):
        at = segment == k
        tau = tt[at] - hits[k - 1]
        pos[at, 2] = floor + speeds[k - 1] * tau - 0.5 * g * tau**2
    np.maximum(pos[:, 2], floor, out=pos[:, 2])  # at rest (speed 0) it lies on the floor
    params = {
        "start": p0.tolist(),
        "velocity": v0.tolist(),
        "gravity": g,
        "restitution": e,
        "floor": floor,
        "bounce_times": [float(h) for h in hits if h <= tt[-1]],
    }
    return pos, params


def damped(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Damped oscillation along a direction: p(t) = c + d A exp(-k t) cos(w t + phase)."""
    d_cfg = cfg.damped or DampedConfig()
    direction = _unit(rng)
    amplitude = _u(rng, d_cfg.amplitude)
    cycles = _u(rng, d_cfg.swept_cycles)
    omega = 2 * np.pi * cycles / (t[cfg.frames - 1] - t[0])
    damping = _u(rng, d_cfg.damping)
    phase = rng.uniform(0, 2 * np.pi)
    centre = _random_point(rng, cfg.scene)
    tt = t - t[0]
    offset = amplitude * np.exp(-damping * tt) * np.cos(omega * tt + phase)
    pos = centre + np.outer(offset, direction)
    params = {
        "centre": centre.tolist(),
        "direction": direction.tolist(),
        "amplitude": amplitude,
        "angular_frequency": omega,
        "damping": damping,
        "phase": phase,
        "cycles_observed": cycles,
    }
    return pos, params


def switching(
    rng: np.random.Generator, t: np.ndarray, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """A line, then at ``switch_frame`` a circular arc tangent to it (or the arc first, then
    its tangent line): position and velocity are continuous, the law is not."""
    s_cfg = cfg.switching or SwitchingConfig()
    heading = rng.uniform(0, 2 * np.pi)
    climb = rng.uniform(-1.0, 1.0) * math.asin(s_cfg.max_vertical_fraction)
    d = np.array([np.cos(climb) * np.cos(heading), np.cos(climb) * np.sin(heading), np.sin(climb)])
    speed = _u(rng, s_cfg.speed)
    radius = _u(rng, s_cfg.radius)
    a, b = _plane_basis(d)
    turn = rng.uniform(0, 2 * np.pi)
    inward = np.cos(turn) * a + np.sin(turn) * b  # from the arc towards its centre
    last = cfg.frames - 1
    # Both laws show: the switch is strictly inside the observed frames.
    first = min(max(math.ceil(s_cfg.switch_fraction.lo * last), 1), last - 1)
    final = max(min(math.floor(s_cfg.switch_fraction.hi * last), last - 1), first)
    k = int(rng.integers(first, final + 1))
    arc_first = bool(rng.integers(2))
    at = _random_point(rng, cfg.scene)  # where it switches
    s = t - t[k]
    omega = speed / radius
    line = at + np.outer(speed * s, d)
    arc = at + radius * (np.outer(1 - np.cos(omega * s), inward) + np.outer(np.sin(omega * s), d))
    before = (s < 0)[:, None]
    pos = np.where(before, arc, line) if arc_first else np.where(before, line, arc)
    params = {
        "switch_frame": k,
        "first": "arc" if arc_first else "line",
        "switch_point": at.tolist(),
        "direction": d.tolist(),
        "inward": inward.tolist(),
        "speed": speed,
        "radius": radius,
        "angular_speed": omega,
    }
    return pos, params


# One per name of ``KNOWN_CLASS_NAMES``, in its order.
SAMPLERS: tuple[Callable[..., tuple[np.ndarray, dict]], ...] = (
    linear,
    circular,
    helical,
    parabolic,
    bouncing,
    damped,
    switching,
)
assert len(SAMPLERS) == len(KNOWN_CLASS_NAMES)


def sample_trajectory(
    rng: np.random.Generator, class_id: int, cfg: GeneratorConfig
) -> tuple[np.ndarray, dict]:
    """Draw a path of class ``class_id`` (an index of ``cfg.class_names``) that stays in the
    scene box (redrawn until it does)."""
    t = np.arange(cfg.frames + cfg.horizon) / cfg.fps
    name = cfg.class_names[class_id]
    sampler = SAMPLERS[KNOWN_CLASS_NAMES.index(name)]
    scene = cfg.scene
    lo = np.array([scene.x.lo, scene.y.lo, scene.z.lo])
    hi = np.array([scene.x.hi, scene.y.hi, scene.z.hi])
    for _ in range(MAX_TRIES):
        pos, params = sampler(rng, t, cfg)
        if (pos.min(axis=0) >= lo).all() and (pos.max(axis=0) <= hi).all():
            return pos, params
    raise ValueError(
        f"could not fit a {name} path in the scene box after {MAX_TRIES} draws: "
        "widen scene or narrow that family's ranges"
    )
