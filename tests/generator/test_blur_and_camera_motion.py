"""Motion blur and camera motion: opt-in, deterministic, visible in the pixels, and used by ground truth."""

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from generator.config import ConfigError, GeneratorConfig, load_config
from generator.dataformat.dataset import read_metadata
from generator.dataformat.sources import DatasetError, check_label, open_source
from generator.dataformat.validate import validate
from generator.pipeline.metadata import rig_metadata
from generator.pipeline.stream import RenderedSource
from generator.render.blur import instants, shutter_offsets
from generator.render.ground_truth import check_ground_truth
from generator.render.sample import SampleMaker
from trajkit.files import sha256_bytes

BLUR = {"samples": 8, "shutter": 1.0}
MOTION = {"jitter_deg": 0.8, "jitter_m": 0.03, "orbit_deg": 30.0}
SMALL = {"image_size": 32, "frames": 8, "horizon": 2}


def _cfg(**sections) -> GeneratorConfig:
    return GeneratorConfig.model_validate(sections)


def _meta(cfg: GeneratorConfig) -> dict:
    return {
        "config": cfg.model_dump(mode="json"),
        "cameras": rig_metadata(cfg),
        "frames": cfg.frames,
        "video_shape": list(cfg.video_shape),
    }


def _linear_index(seed: int) -> int:
    maker = SampleMaker(GeneratorConfig())
    return next(i for i in range(8) if maker.label(seed, i)["class_name"] == "Linear")


# --- config ----------------------------------------------------------------------------------


def test_off_by_default_absent_from_the_dump_and_recorded_when_on():
    assert not {"motion_blur", "camera_motion"} & set(GeneratorConfig().model_dump(mode="json"))
    on = json.loads(_cfg(motion_blur={}, camera_motion={"jitter_deg": 0.5}).model_dump_json())
    assert on["motion_blur"] == {"samples": 5, "shutter": 0.5}
    assert on["camera_motion"] == {"jitter_deg": 0.5, "jitter_m": 0.0, "orbit_deg": 0.0}


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"motion_blur": {"samples": 1}}, "motion_blur.samples"),
        ({"motion_blur": {"shutter": 0}}, "motion_blur.shutter"),
        ({"camera_motion": {}}, "camera_motion"),
        ({"camera_motion": {"jitter_deg": -1}}, "camera_motion.jitter_deg"),
        ({"camera_motion": {"spin": 1}}, "camera_motion.spin"),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_field(tmp_path, section, field):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(section))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_an_orbit_that_takes_a_camera_into_the_scene_is_refused():
    # A long scene box: cameras beside its long sides are outside it, at its ends inside.
    long_box = {
        "scene": {"x": {"lo": -9.0, "hi": 9.0}},
        "cameras": {"azimuths_deg": [90.0, 270.0], "elevations_deg": [12.0, 12.0]},
    }
    GeneratorConfig.model_validate({**long_box, "camera_motion": {"orbit_deg": 20}})
    with pytest.raises(ValueError, match="camera_motion.orbit_deg") as e:
        GeneratorConfig.model_validate({**long_box, "camera_motion": {"orbit_deg": 180}})
    assert "at -90 degrees of orbit, camera 0" in str(e.value)


# --- determinism and independence ------------------------------------------------------------


@pytest.mark.parametrize("sections", [{"motion_blur": BLUR}, {"camera_motion": MOTION}])
def test_a_sample_is_a_function_of_seed_and_index(sections):
    cfg = GeneratorConfig.model_validate({**SMALL, **sections})
    a, b = SampleMaker(cfg), SampleMaker(cfg)
    b.make(3, 9)  # another sample first: nothing carries over
    for index in (0, 1):
        va, la = a.make(3, index)
        vb, lb = b.make(3, index)
        assert np.array_equal(va, vb) and la == lb
    assert not np.array_equal(a.make(3, 0)[0], a.make(3, 1)[0])


def test_camera_poses_differ_per_frame_and_per_sample_and_orbit_about_the_nominal_rig():
    cfg = _cfg(camera_motion={"orbit_deg": 40.0})
    maker = SampleMaker(cfg)
    label0 = maker.label(0, 0)
    nominal = rig_metadata(cfg)
    for cam, rig in zip(label0["cameras"], nominal, strict=True):
        R, t = np.asarray(cam["R"]), np.asarray(cam["t"])
        assert R.shape == (cfg.frames, 3, 3) and t.shape == (cfg.frames, 3)
        assert cam["K"] == rig["K"]
        centres = -np.einsum("fji,fj->fi", R, t)
        nominal_centre = -np.asarray(rig["R"]).T @ np.asarray(rig["t"])
        look_at = np.asarray(cfg.cameras.look_at)
        # An orbit keeps distance and height, sweeps 40 degrees, and passes the nominal pose.
        assert np.allclose(np.linalg.norm(centres - look_at, axis=1), cfg.cameras.distance)
        assert np.allclose(centres[:, 2], nominal_centre[2])
        ends = centres[[0, -1], :2] - look_at[:2]
        turned = np.degrees(np.arccos(ends[0] @ ends[1] / np.prod(np.linalg.norm(ends, axis=1))))
        assert turned == pytest.approx(40.0)
        assert np.linalg.norm(centres[:, :2] - nominal_centre[:2], axis=1).min() < 0.1
        assert np.allclose(np.einsum("fij,fkj->fik", R, R), np.eye(3))  # rotations
    # Orbits run either way round, sample by sample; jitter makes every sample's poses its own.
    starts = {json.dumps(maker.label(0, i)["cameras"][0]["t"][0]) for i in range(8)}
    assert len(starts) == 2
    shaken = SampleMaker(_cfg(camera_motion=MOTION))
    assert shaken.label(0, 0)["cameras"] != shaken.label(0, 1)["cameras"]
    R = np.asarray(shaken.label(0, 0)["cameras"][0]["R"])
    assert not np.allclose(R[0], R[1])


def test_options_keep_the_path_look_and_noise_of_the_sample():
    """Blur draws nothing and poses come from their own stream: the rest is the default's."""
    base = SampleMaker(GeneratorConfig())
    both = SampleMaker(_cfg(motion_blur=BLUR, camera_motion=MOTION))
    _, label0 = base.make(5, 2)
    _, label = both.make(5, 2)
    assert {k: v for k, v in label.items() if k != "cameras"} == label0


def test_a_still_camera_through_the_moving_path_renders_the_static_bytes():
    """The per-frame background and pillar passes against the static renderer's."""
    static = SampleMaker(_cfg(occluders={"count": 3}))
    still = SampleMaker(_cfg(occluders={"count": 3}, camera_motion={"jitter_m": 1e-12}))
    for index in range(3):
        video, _ = static.make(1, index)
        moved, _ = still.make(1, index)
        assert np.array_equal(video, moved), index
    shaken = SampleMaker(_cfg(occluders={"count": 3}, camera_motion=MOTION)).make(1, 0)[0]
    assert not np.array_equal(static.make(1, 0)[0], shaken)


# --- motion blur -----------------------------------------------------------------------------


def test_instants_are_centred_on_the_frame_and_exact_for_a_parabola():
    blur = GeneratorConfig.model_validate({"motion_blur": {"samples": 5, "shutter": 0.5}})
    offsets = shutter_offsets(blur.motion_blur)
    assert np.allclose(offsets, [-0.2, -0.1, 0.0, 0.1, 0.2])
    t = np.arange(12.0)
    path = np.stack([2.0 * t + 1.0, -0.5 * t, 3.0 - 0.25 * t * t], -1)
    at = instants(path, 10, blur.motion_blur)
    times = t[:10] + offsets[:, None]
    expected = np.stack([2.0 * times + 1.0, -0.5 * times, 3.0 - 0.25 * times * times], -1)
    assert np.allclose(at, expected, atol=1e-12)
    assert np.array_equal(at[2], path[:10])  # the middle instant is the frame itself


def _footprint(coverage: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    """Extent (pixels) of the covered pixels along ``direction`` and across it."""
    rows, cols = np.nonzero(coverage > 0.02)
    pts = np.stack([cols, rows], -1).astype(float)
    along, across = pts @ direction, pts @ np.array([-direction[1], direction[0]])
    return np.ptp(along), np.ptp(across)


def test_blur_smears_the_ball_along_its_motion_and_keeps_its_centre():
    # At 30 fps the ball moves about a pixel a frame; at 8 fps, three to four.
    fast = {
        "fps": 8.0,
        "frames": 10,
        "horizon": 2,
        "linear": {"speed": {"lo": 3.2, "hi": 3.2}},
        "ground_truth": {},
    }
    sharp, blurred = SampleMaker(_cfg(**fast)), SampleMaker(_cfg(**fast, motion_blur=BLUR))
    index = _linear_index(0)
    shape = sharp.cfg.video_shape[:2] + sharp.cfg.video_shape[3:]
    a0, a1 = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    v0, l0 = sharp.make(0, index, alpha_out=a0)
    v1, l1 = blurred.make(0, index, alpha_out=a1)
    assert l0 == l1  # the same labels, ground truth's centres included
    grown = 0
    for cam, rec in enumerate(l0["ground_truth"]["cameras"]):
        uv = np.asarray(rec["uv"])
        for f in range(1, sharp.cfg.frames - 1):
            step = (uv[f + 1] - uv[f - 1]) / 2  # pixels per frame
            inside = (uv[f - 1 : f + 2] > 4).all() and (uv[f - 1 : f + 2] < 60).all()
            if np.linalg.norm(step) < 2.5 or not inside:
                continue
            along0, across0 = _footprint(a0[cam, f], step / np.linalg.norm(step))
            along1, across1 = _footprint(a1[cam, f], step / np.linalg.norm(step))
            # A full-frame shutter drags the disc over about one frame's step.
            assert along1 - along0 >= 0.6 * np.linalg.norm(step) - 1, (cam, f)
            assert abs(across1 - across0) <= 1.5, (cam, f)
            assert a1[cam, f].sum() == pytest.approx(a0[cam, f].sum(), rel=0.1)  # same ink
            grown += 1
    assert grown >= 5, "too few fast frames to judge"
    assert not np.array_equal(v0, v1)


def test_blur_also_smears_distractors():
    cfg = {"distractors": {"count": 3}}
    sharp, blurred = SampleMaker(_cfg(**cfg)), SampleMaker(_cfg(**cfg, motion_blur=BLUR))
    v0, l0 = sharp.make(2, 0)
    v1, l1 = blurred.make(2, 0)
    assert l0 == l1
    # The target's pixels aside (it is red), blur changes pixels only where distractors pass.
    changed = np.abs(v0.astype(int) - v1.astype(int)).max(axis=2) > 8
    assert changed.any()


# --- ground truth with moving cameras --------------------------------------------------------


def test_ground_truth_uses_each_frames_pose_and_its_check_does_too():
    cfg = _cfg(camera_motion=MOTION, motion_blur=BLUR, occluders={}, ground_truth={"masks": True})
    maker, meta = SampleMaker(cfg), _meta(cfg)
    for index in range(6):
        _, label = maker.make(7, index)
        label = json.loads(json.dumps(label))
        assert check_ground_truth(label, meta) == []
        # With the rig's nominal pose instead of the frame's, the stored uv no longer fit.
        nominal = copy.deepcopy(label)
        del nominal["cameras"]
        assert any("px from K (R X + t)" in p for p in check_ground_truth(nominal, meta))
        swapped = copy.deepcopy(label)
        swapped["cameras"][0]["R"] = swapped["cameras"][0]["R"][::-1]
        assert check_ground_truth(swapped, meta)
    # The stored uv are each frame's own projection, not the nominal camera's.
    cam = label["cameras"][1]
    X = np.asarray(label["positions"])[: cfg.frames]
    Xc = np.einsum("fij,fj->fi", np.asarray(cam["R"]), X) + np.asarray(cam["t"])
    uvw = Xc @ np.asarray(cam["K"]).T
    assert np.allclose(label["ground_truth"]["cameras"][1]["uv"], uvw[:, :2] / uvw[:, 2:])


def test_malformed_poses_are_one_problem_each():
    cfg = _cfg(camera_motion=MOTION, ground_truth={})
    _, label = SampleMaker(cfg).make(0, 0)
    label = json.loads(json.dumps(label))
    short = copy.deepcopy(label)
    short["cameras"][2]["R"] = short["cameras"][2]["R"][:3]
    (problem,) = check_ground_truth(short, _meta(cfg))
    assert "unreadable" in problem
    fewer = copy.deepcopy(label)
    fewer["cameras"].pop()
    assert check_ground_truth(fewer, _meta(cfg)) == ["label 0: poses for 3 cameras, metadata has 4"]


# --- on disk, both layouts, and on the fly ---------------------------------------------------


@pytest.fixture(scope="module", params=["pt", "shards"])
def moving_dataset(request, tmp_path_factory):
    from tests.generator.conftest import run_cli

    tmp = tmp_path_factory.mktemp(f"moving_{request.param}")
    config = tmp / "c.yaml"
    raw = {**SMALL, "motion_blur": {"samples": 3}, "camera_motion": MOTION, "ground_truth": {}}
    config.write_text(yaml.safe_dump(raw))
    root = tmp / "ds"
    args = ["--n", 8, "--out", root, "--config", config, "--workers", 1, "--quiet"]
    if request.param == "shards":
        args += ["--format", "shards", "--shard-size", 4]
    assert run_cli(*args) == 0
    return root, load_config(config)


def test_datasets_record_the_options_validate_and_read_back(moving_dataset):
    root, cfg = moving_dataset
    meta = read_metadata(root)
    assert meta["config"]["motion_blur"] == {"samples": 3, "shutter": 0.5}
    assert meta["config"]["camera_motion"] == MOTION
    fingerprint = json.loads((root / "checkpoints" / "fingerprint.json").read_text())
    assert fingerprint["config"]["camera_motion"] == MOTION
    assert meta["cameras"] == json.loads(json.dumps(rig_metadata(cfg)))  # the nominal rig
    rep = validate(root)
    assert rep.failed == 0, "\n".join(rep.lines)
    source = open_source(root, meta)
    for index in (0, 7):
        _, label = source.read(index)
        assert np.asarray(label["cameras"][0]["R"]).shape == (cfg.frames, 3, 3)
        assert check_ground_truth(label, meta) == []


def test_rendered_on_the_fly_equals_the_disk_with_both_options(moving_dataset):
    root, cfg = moving_dataset
    meta = read_metadata(root)
    disk, rendered = open_source(root, meta), RenderedSource(cfg, meta["seed"])
    for index in (0, 3, 7):
        video, label = disk.read(index)
        r_video, r_label = rendered.read(index)
        assert torch.equal(video, r_video)
        stored = {k: v for k, v in label.items() if k != "video_sha256"}
        assert json.dumps(stored, sort_keys=True) == json.dumps(r_label, sort_keys=True)


def test_labels_with_wrong_or_missing_poses_are_named(tmp_path, moving_dataset):
    """The reader (either layout) refuses them; validate names them."""
    root, _ = moving_dataset
    meta = read_metadata(root)
    _, label = open_source(root, meta).read(2)

    def drop_frame(label):
        label["cameras"][1]["R"].pop()
        label["cameras"][1]["t"].pop()

    def drop_cameras(label):
        label.pop("cameras")

    def bad_matrix(label):
        label["cameras"][0]["K"][1] = [1.0, 2.0]

    said = {
        drop_frame: "camera poses must be one per frame (8)",
        drop_cameras: "no per-frame cameras, the config has camera_motion",
        bad_matrix: "K must be 3 x 3",
    }
    for edit, message in said.items():
        damaged = copy.deepcopy(label)
        edit(damaged)
        data = json.dumps(damaged).encode()
        with pytest.raises(DatasetError, match=re.escape(message)):
            shas = sha256_bytes(data).encode(), label["video_sha256"].encode()
            check_label(Path("sample_0002.json"), data, 2, *shas, meta)
        if (root / "labels").is_dir():  # the pt layout: the same edit on disk, for validate
            copy_root = tmp_path / edit.__name__
            shutil.copytree(root, copy_root)
            (copy_root / "labels" / "sample_0002.json").write_bytes(data)
            text = "\n".join(validate(copy_root, quick=True).lines)
            found = re.search(rf"sample_0002\.json: {re.escape(message)}", text)
            assert found, text


def test_preview_draws_the_path_through_each_frames_pose(moving_dataset, tmp_path):
    from generator.preview import _projected
    from tests.generator.conftest import run_cli

    root, cfg = moving_dataset
    meta = read_metadata(root)
    _, label = open_source(root, meta).read(1)
    for f in (0, cfg.frames - 1):
        for c, uv in enumerate(_projected(meta, label, f)):
            assert np.allclose(uv[f], label["ground_truth"]["cameras"][c]["uv"][f])
    out = tmp_path / "p.png"
    assert run_cli("preview", root, "--index", 1, "--out", out) == 0
    assert out.stat().st_size > 0
