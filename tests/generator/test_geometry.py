"""The ball is drawn where K (R X + t) projects, and the paths obey their physics."""

import numpy as np
import pytest

from generator.config import GeneratorConfig
from generator.render.sample import SampleMaker, class_of
from generator.render.trajectories import sample_trajectory


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


@pytest.mark.parametrize("index", range(0, 40))
def test_paths_follow_their_law_and_stay_in_the_box(index):
    cfg = GeneratorConfig()
    rng = np.random.default_rng([0, index])
    cls = class_of(0, index)
    pos, params = sample_trajectory(rng, cls, cfg)
    assert pos.shape == (cfg.frames + cfg.horizon, 3)
    for axis, bounds in enumerate((cfg.scene.x, cfg.scene.y, cfg.scene.z)):
        assert pos[:, axis].min() >= bounds.lo and pos[:, axis].max() <= bounds.hi, "xyz"[axis]
    acc = _fit_acceleration(pos, cfg.fps)
    if cls == 0:  # Linear: no acceleration
        assert np.abs(acc).max() < 1e-6
    elif cls == 3:  # Parabolic: exactly gravity
        np.testing.assert_allclose(
            acc, np.tile([0, 0, -cfg.parabolic.gravity], (len(acc), 1)), atol=1e-6
        )
    elif cls == 1:  # Circular: constant distance from the centre, in a plane
        r = np.linalg.norm(pos - params["centre"], axis=1)
        np.testing.assert_allclose(r, params["radius"], rtol=1e-9)
        assert np.abs((pos - params["centre"]) @ np.asarray(params["normal"])).max() < 1e-9
        assert params["turns_observed"] >= 0.5
    else:  # Helical: constant distance from the axis, steady drift along it
        axis = np.asarray(params["axis"])
        rel = pos - params["centre"]
        along = rel @ axis
        radial = np.linalg.norm(rel - np.outer(along, axis), axis=1)
        np.testing.assert_allclose(radial, params["radius"], rtol=1e-9)
        np.testing.assert_allclose(np.diff(along), params["drift_speed"] / cfg.fps, rtol=1e-9)
        assert params["turns_observed"] >= 0.5


def test_cross_gives_numpys_bits():
    """Paths are made with a faster np.cross: the same products and differences, so the same bits."""
    from generator.render.trajectories import _cross

    rng = np.random.default_rng(3)
    for _ in range(2000):
        a, b = rng.standard_normal(3) * rng.uniform(1e-3, 1e3), rng.standard_normal(3)
        assert _cross(a, b).tobytes() == np.cross(a, b).tobytes()
