"""The renderer draws every camera at once; it must match a plain per-camera drawing bit for bit."""

import warnings

import numpy as np
import pytest

import generator.render.renderer as render
from generator.config import CameraRigConfig, GeneratorConfig
from generator.render.arith import exp32, int_power, matvec, norm3
from generator.render.sample import SampleMaker, class_of
from generator.render.trajectories import sample_trajectory


def _background(geo, look):
    lit = look.ambient + (1 - look.ambient) * max(look.light_dir[2], 0.0)
    colours = np.stack(
        [lit * (look.ground_a + look.ground_b) / 2, look.sky_horizon, look.sky_zenith], axis=1
    )
    frame = matvec((colours * 255.0).astype(np.float32), geo.weights.T).T
    parity = (
        np.floor(geo.ground_x / look.checker_size) + np.floor(geo.ground_y / look.checker_size)
    ) % 2
    sign = (2 * parity - 1) * geo.contrast
    half_difference = (lit * 255.0 / 2 * (look.ground_a - look.ground_b)).astype(np.float32)
    frame += half_difference[:, None] * sign[None, :]
    return frame


def _patch(u, v, patch, size):
    patch = min(patch, size)

    def corner(x):
        x = np.nan_to_num(x, nan=-1e6, posinf=1e6, neginf=-1e6)
        return np.clip(np.round(x).astype(np.int64) - patch // 2, 0, size - patch)

    ar = np.arange(patch)
    rows = corner(v)[:, None] + np.repeat(ar, patch)[None, :]
    cols = corner(u)[:, None] + np.tile(ar, patch)[None, :]
    return rows, cols, rows * size + cols


def _frame_index(pix, size):
    hw = size * size
    return (
        np.arange(len(pix))[:, None, None] * (3 * hw) + (np.arange(3) * hw)[:, None] + pix[:, None]
    )


def _draw_camera(frames, size, geo, cam, pos, look, alpha):
    """One camera's shadow then ball, one numpy expression at a time."""
    flat = frames.reshape(-1)
    foot = pos.copy()
    foot[:, 2] = 0.0
    uv, depth = cam.project(foot)
    spread = (look.ball_radius * (1.0 + 0.15 * pos[:, 2])).astype(np.float32)
    strength = (0.6 * np.exp(-pos[:, 2] / 3.0)).astype(np.float32)
    patch = int(2 * np.ceil(np.max(cam.K[0, 0] * 2.0 * spread / np.maximum(depth, 1e-3))) + 3)
    _, _, pix = _patch(uv[:, 0], uv[:, 1], patch, size)
    dx = geo.ground_x[pix] - pos[:, 0:1].astype(np.float32)
    dy = geo.ground_y[pix] - pos[:, 1:2].astype(np.float32)
    dark = 1.0 - strength[:, None] * exp32(-(dx * dx + dy * dy) / np.square(spread)[:, None])
    idx = _frame_index(pix, size)
    flat[idx] = np.take(flat, idx) * dark[:, None, :]

    uv, depth = cam.project(pos)
    radius = cam.K[0, 0] * look.ball_radius / depth
    rows, cols, pix = _patch(uv[:, 0], uv[:, 1], int(2 * np.ceil(radius.max()) + 3), size)
    r = radius[:, None].astype(np.float32)
    dx = (cols - uv[:, 0:1]).astype(np.float32)
    dy = (rows - uv[:, 1:2]).astype(np.float32)
    dist = np.sqrt(dx * dx + dy * dy)
    a = np.clip(r + 0.5 - dist, 0.0, 1.0)
    nx, ny = dx / np.maximum(r, dist), dy / np.maximum(r, dist)
    nz = -np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    light = matvec(cam.R, look.light_dir).astype(np.float32)
    lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, None)
    half = light + np.array([0.0, 0.0, -1.0], dtype=np.float32)
    half /= norm3(half)
    spec = int_power(
        np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0.0, None), render.SPECULAR_POWER
    )
    shade = look.ambient + (1 - look.ambient) * lambert
    colour = (look.ball_rgb * 255.0).astype(np.float32)[None, :, None] * shade[
        :, None, :
    ] + 128.0 * spec[:, None, :]
    idx = _frame_index(pix, size)
    values = np.take(flat, idx)
    flat[idx] = values + (colour - values) * a[:, None, :]
    alpha.reshape(len(pos), -1)[np.arange(len(pos))[:, None], pix] = a


def _reference_render(renderer, positions, look, rng, alpha_out):
    size, views, count = renderer.size, len(renderer.cams), len(positions)
    shape = (views, count, 3, size * size)
    noise = render.pixel_noise(shape, renderer.noise_std, rng) if renderer.noise_std > 0 else None
    out = np.empty(shape, dtype=np.uint8)
    for i, cam in enumerate(renderer.cams):
        geo = render._ray_geometry(cam, size)
        frames = np.empty(shape[1:], dtype=np.float32)
        frames[:] = _background(geo, look)
        _draw_camera(frames, size, geo, cam, positions, look, alpha_out[i])
        if noise is not None:
            frames += noise[i]
        frames += 0.5
        np.clip(frames, 0.0, 255.0, out=frames)
        out[i] = frames
    return out.reshape(views, count, 3, size, size)


def _assert_same_as_reference(maker, positions, look_seed):
    cfg = maker.cfg
    shape = (cfg.num_cameras, len(positions), cfg.image_size, cfg.image_size)
    alpha, alpha_ref = np.full(shape, -1.0, np.float32), np.full(shape, -1.0, np.float32)
    look = render.sample_look(np.random.default_rng(look_seed), cfg.appearance)
    with np.errstate(all="ignore"):
        video = maker.renderer.render(positions, look, np.random.default_rng(look_seed), alpha)
        ref = _reference_render(
            maker.renderer, positions, look, np.random.default_rng(look_seed), alpha_ref
        )
    np.testing.assert_array_equal(video, ref)
    assert alpha.tobytes() == alpha_ref.tobytes()
    return alpha


def _world_point(cam, u, v, depth):
    """The world point seen at pixel (u, v) at ``depth`` along the camera's axis."""
    ray = np.linalg.inv(cam.K) @ np.array([u, v, 1.0])
    return cam.R.T @ (ray * depth - cam.t)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"image_size": 24, "frames": 6, "appearance": {"noise_std": 3.5}},
        {"image_size": 20, "frames": 4, "appearance": {"noise_std": 0.0}},
        {"frames": 5},
    ],
)
def test_sampled_clips_match_per_camera_drawing(config):
    maker = SampleMaker(GeneratorConfig.model_validate(config))
    for index in range(6):
        rng = np.random.default_rng([1, index])
        positions, _ = sample_trajectory(rng, class_of(1, index), maker.cfg)
        _assert_same_as_reference(maker, positions[: maker.cfg.frames], [2, index])


def test_ball_partly_outside_behind_and_near_the_camera_plane_match_per_camera_drawing():
    cfg = GeneratorConfig(image_size=32, frames=8)
    maker = SampleMaker(cfg)
    cam = maker.cams[1]
    size = cfg.image_size
    # Centres on and beyond each image edge (as seen from camera 1), at several depths.
    edge = np.array(
        [
            _world_point(cam, u, v, depth)
            for u, v, depth in [
                (-1.0, 10.0, 6.0),
                (size + 0.7, 20.0, 4.0),
                (15.0, -2.5, 8.0),
                (3.0, size - 0.2, 3.0),
                (-4.0, -4.0, 7.0),
                (size / 2, size / 2, 5.0),
                (size + 6.0, 5.0, 5.0),
                (0.0, 0.0, 6.0),
            ]
        ]
    )
    alpha = _assert_same_as_reference(maker, edge, 3)
    cut = alpha[1, :, [0, -1], :].max() > 0, alpha[1, :, :, [0, -1]].max() > 0
    assert all(cut)  # the ball really is cut by the image's borders

    # Behind camera 1, and within a millimetre of its image plane on either side.
    behind = np.array([_world_point(cam, 16.0, 16.0, -d) for d in np.linspace(0.3, 3.0, 8)])
    _assert_same_as_reference(maker, behind, 4)
    plane = np.array([_world_point(cam, 16.0 + 50 * k, 16.0, 1e-3 * (k - 3.5)) for k in range(8)])
    _assert_same_as_reference(maker, plane, 5)

    # Behind the only camera of a one-camera rig: no camera draws a ball at all.
    rig = {"azimuths_deg": [110.0], "elevations_deg": [25.0]}
    solo = SampleMaker(GeneratorConfig(image_size=32, frames=8, cameras=rig))
    behind = np.array([_world_point(solo.cams[0], 16.0, 16.0, -d) for d in np.linspace(0.3, 3, 8)])
    assert (_assert_same_as_reference(solo, behind, 6) == -1.0).all()


def test_a_ball_under_a_pixel_wide_leaves_the_pixels_it_does_not_cover_alone(monkeypatch):
    # 2 km away through a 10-degree lens the ball is ~0.01 px: its highlight overflowed to
    # inf, and inf * 0 coverage made NaN, i.e. black pixels beside it (and a RuntimeWarning).
    # A config refuses a ball that small now; the renderer must still draw it cleanly.
    far = CameraRigConfig(distance=2000.0, fov_deg=10.0)
    cfg = GeneratorConfig(image_size=32, frames=8).model_copy(update={"cameras": far})
    maker = SampleMaker(cfg)
    shape = (cfg.num_cameras, cfg.frames, cfg.image_size, cfg.image_size)
    shade = render.shade_balls
    for index in range(4):
        alpha = np.zeros(shape, np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            video, _ = maker.make(1, index, alpha_out=alpha)
        assert alpha.max() < 0.6  # no pixel is even two-thirds covered

        def unlit(*args):  # the same coverage, any finite colour
            colour, coverage = shade(*args)
            return np.zeros_like(colour), coverage

        monkeypatch.setattr(render, "shade_balls", unlit)
        plain, _ = maker.make(1, index)
        monkeypatch.setattr(render, "shade_balls", shade)
        uncovered = np.broadcast_to((alpha == 0)[:, :, None], video.shape)
        np.testing.assert_array_equal(video[uncovered], plain[uncovered])
