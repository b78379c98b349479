"""The ball is drawn where K (R X + t) projects, and the paths obey their physics."""

import numpy as np
import pytest

from generator.config import GeneratorConfig, load_config
from generator.render.sample import SampleMaker, class_of
from generator.render.trajectories import sample_trajectory
from tests.generator.conftest import ROOT


@pytest.mark.parametrize("index", range(8))
def test_ball_centroid_matches_projection_within_half_a_pixel(index):
    cfg = GeneratorConfig()
    maker = SampleMaker(cfg)
    alpha = np.zeros((cfg.num_cameras, cfg.frames, cfg.image_size, cfg.image_size), np.float32)
    video, label = maker.make(0, index, alpha_out=alpha)
    positions = np.asarray(label["positions"])[: cfg.frames]
    checked = 0
    size = cfg.image_size
    for c, cam in enumerate(maker.cams):
        uv, depth = cam.project(positions)
        radius = cam.K[0, 0] * label["appearance"]["ball_radius"] / depth
        for f in range(cfg.frames):
            u, v = uv[f]
            r = radius[f]
            if not (r + 1 < u < size - 1 - r - 1 and r + 1 < v < size - 1 - r - 1):
                continue  # only where the ball is in full view
            a = alpha[c, f]
            rows, cols = np.mgrid[0:size, 0:size]
            cu, cv = (a * cols).sum() / a.sum(), (a * rows).sum() / a.sum()
            assert abs(cu - u) < 0.5 and abs(cv - v) < 0.5, (c, f, cu, u, cv, v)
            # The picture itself changes exactly where the ball covers pixels.
            assert a.sum() == pytest.approx(np.pi * r * r, rel=0.15)
            checked += 1
    assert checked > 50


def test_ball_pixels_carry_the_ball_colour():
    cfg = GeneratorConfig(appearance={"noise_std": 0.0})
    maker = SampleMaker(cfg)
    alpha = np.zeros((cfg.num_cameras, cfg.frames, cfg.image_size, cfg.image_size), np.float32)
    video, label = maker.make(3, 5, alpha_out=alpha)
    ball = np.asarray(label["appearance"]["ball_rgb"]) * 255
    full = alpha == 1.0
    pixels = video.transpose(0, 1, 3, 4, 2)[full].astype(float)
    # Diffuse shading scales the ball's colour (the brightest pixels add a white highlight).
    order = pixels.sum(1).argsort()
    diffuse = pixels[order[len(order) // 4 : len(order) // 2]]
    cos = (diffuse @ ball) / (np.linalg.norm(diffuse, axis=1) * np.linalg.norm(ball))
    assert np.median(cos) > 0.97


def _fit_acceleration(pos: np.ndarray, fps: float) -> np.ndarray:
    return np.diff(pos, 2, axis=0) * fps**2


SEVEN = {
    "classes": ["Linear", "Circular", "Helical", "Parabolic", "Bouncing", "Damped", "Switching"]
}
CONFIGS = {
    "default": lambda: GeneratorConfig(),
    "seven": lambda: GeneratorConfig.model_validate(SEVEN),
    "hard": lambda: load_config(ROOT / "configs" / "generator" / "hard.yaml"),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("index", range(0, 42))
def test_paths_follow_their_law_and_stay_in_the_box(index, config):
    cfg = CONFIGS[config]()
    rng = np.random.default_rng([0, index])
    cls = class_of(0, index, len(cfg.class_names))
    pos, params = sample_trajectory(rng, cls, cfg)
    assert pos.shape == (cfg.frames + cfg.horizon, 3)
    for axis, bounds in enumerate((cfg.scene.x, cfg.scene.y, cfg.scene.z)):
        assert pos[:, axis].min() >= bounds.lo and pos[:, axis].max() <= bounds.hi, "xyz"[axis]
    LAWS[cfg.class_names[cls]](pos, params, cfg)


def _linear(pos, params, cfg):
    assert np.abs(_fit_acceleration(pos, cfg.fps)).max() < 1e-6  # no acceleration


def _parabolic(pos, params, cfg):
    acc = _fit_acceleration(pos, cfg.fps)  # exactly gravity
    np.testing.assert_allclose(
        acc, np.tile([0, 0, -cfg.parabolic.gravity], (len(acc), 1)), atol=1e-6
    )


def _circular(pos, params, cfg):
    r = np.linalg.norm(pos - params["centre"], axis=1)  # constant distance, in a plane
    np.testing.assert_allclose(r, params["radius"], rtol=1e-9)
    assert np.abs((pos - params["centre"]) @ np.asarray(params["normal"])).max() < 1e-9
    assert params["turns_observed"] >= cfg.circular.swept_turns.lo


def _helical(pos, params, cfg):
    axis = np.asarray(params["axis"])  # constant distance from the axis, steady drift along it
    rel = pos - params["centre"]
    along = rel @ axis
    radial = np.linalg.norm(rel - np.outer(along, axis), axis=1)
    np.testing.assert_allclose(radial, params["radius"], rtol=1e-9)
    np.testing.assert_allclose(np.diff(along), params["drift_speed"] / cfg.fps, rtol=1e-9)
    assert params["turns_observed"] >= cfg.helical.swept_turns.lo


def _bouncing(pos, params, cfg):
    """Gravity between bounces, steady horizontal motion, never under the floor, and each
    bounce keeps the restitution's share of the vertical speed."""
    g, e, floor, dt = params["gravity"], params["restitution"], params["floor"], 1 / cfg.fps
    acc = _fit_acceleration(pos, cfg.fps)
    assert np.abs(acc[:, :2]).max() < 1e-6
    assert pos[:, 2].min() >= floor
    t = np.arange(len(pos)) * dt
    hits = params["bounce_times"]
    assert hits and hits[0] <= (cfg.frames - 1) * dt, "no bounce in the observed frames"
    assert not hits or hits[0] >= cfg.bouncing.first_bounce_fraction.lo * (cfg.frames - 1) * dt
    free = [k for k in range(len(acc)) if not any(t[k] <= h <= t[k + 2] for h in hits)]
    free = [k for k in free if pos[k : k + 3, 2].min() > floor]  # not rolling on the floor
    assert free, "no flight"
    np.testing.assert_allclose(acc[free, 2], -g, atol=1e-6)
    v0 = np.asarray(params["velocity"])
    start = np.asarray(params["start"])
    assert start[2] + v0[2] * hits[0] - 0.5 * g * hits[0] ** 2 == pytest.approx(floor, abs=1e-9)
    impact = g * hits[0] - v0[2]
    if len(hits) > 1:  # the second flight lasts 2 e v / g
        assert hits[1] - hits[0] == pytest.approx(2 * e * impact / g, rel=1e-9)


def _damped(pos, params, cfg):
    """On one line through the centre, inside the decaying envelope, and obeying the damped
    oscillator's equation (finite differences, to their truncation error)."""
    c, d = np.asarray(params["centre"]), np.asarray(params["direction"])
    rel = pos - c
    s = rel @ d
    assert np.abs(rel - np.outer(s, d)).max() < 1e-9
    t = np.arange(len(pos)) / cfg.fps
    k, w = params["damping"], params["angular_frequency"]
    assert (np.abs(s) <= params["amplitude"] * np.exp(-k * t) + 1e-9).all()
    h = 1 / cfg.fps
    s1 = (s[2:] - s[:-2]) / (2 * h)
    s2 = (s[2:] - 2 * s[1:-1] + s[:-2]) / h**2
    residual = s2 + 2 * k * s1 + (w * w + k * k) * s[1:-1]
    assert np.abs(residual).max() < 0.02 * params["amplitude"] * (w * w + k * k)


def _switching(pos, params, cfg):
    """A straight piece and a circular arc meeting at the switch frame, at one speed."""
    k, v, r = params["switch_frame"], params["speed"], params["radius"]
    assert 1 <= k <= cfg.frames - 2
    at, d, inward = (np.asarray(params[x]) for x in ("switch_point", "direction", "inward"))
    np.testing.assert_allclose(pos[k], at, atol=1e-12)
    line, arc = (pos[: k + 1], pos[k:]) if params["first"] == "line" else (pos[k:], pos[: k + 1])
    assert np.abs(_fit_acceleration(line, cfg.fps)).max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(arc - (at + r * inward), axis=1), r, rtol=1e-9)
    assert abs(d @ inward) < 1e-12  # tangent: the line meets the arc without a kink
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1) * cfg.fps
    np.testing.assert_allclose(step, v, rtol=5e-3)  # chords of the arc are a bit shorter


LAWS = {
    "Linear": _linear,
    "Circular": _circular,
    "Helical": _helical,
    "Parabolic": _parabolic,
    "Bouncing": _bouncing,
    "Damped": _damped,
    "Switching": _switching,
}


def test_cross_gives_numpys_bits():
    """Paths are made with a faster np.cross: the same products and differences, so the same bits."""
    from generator.render.trajectories import _cross

    rng = np.random.default_rng(3)
    for _ in range(2000):
        a, b = rng.standard_normal(3) * rng.uniform(1e-3, 1e3), rng.standard_normal(3)
        assert _cross(a, b).tobytes() == np.cross(a, b).tobytes()
