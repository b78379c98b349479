"""Difficulty presets and the options they are made of: each works alone, none touches a default dataset."""

import json

import numpy as np
import pytest

from generator.config import OPTIONAL_SECTIONS, GeneratorConfig, load_config
from generator.pipeline.metadata import rig_metadata
from generator.render.sample import SampleMaker
from generator.render.scene_objects import target_rgb
from tests.generator.conftest import ROOT

PRESETS = ROOT / "configs" / "generator"
OPTIONS = {
    "distractors": {"count": 2},
    "occluders": {"count": 2},
    "lighting": {"drift": 0.3},
    "ground_truth": {"masks": True},
    "motion_blur": {"samples": 4, "shutter": 0.8},
    "camera_motion": {"jitter_deg": 0.5, "orbit_deg": 10.0},
}
# The label keys each option adds (its own section's name unless said here).
ADDED_KEYS = {"lighting": {"lighting_gain"}, "motion_blur": set(), "camera_motion": {"cameras"}}


def _hue(rgb: np.ndarray) -> float:
    import colorsys

    return colorsys.rgb_to_hsv(*rgb)[0]


def test_easy_is_the_default_dump_and_new_options_are_absent_when_off():
    default = GeneratorConfig()
    assert load_config(PRESETS / "easy.yaml").model_dump_json() == default.model_dump_json()
    assert load_config(PRESETS / "default.yaml").model_dump_json() == default.model_dump_json()
    assert not set(OPTIONAL_SECTIONS) & set(default.model_dump(mode="json"))
    on = GeneratorConfig.model_validate(OPTIONS)
    assert set(OPTIONAL_SECTIONS) <= set(json.loads(on.model_dump_json()))


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_option_alone_keeps_the_targets_path_and_stream(option):
    """The target's path, parameters and look are drawn before any option draws."""
    base = SampleMaker(GeneratorConfig())
    maker = SampleMaker(GeneratorConfig.model_validate({option: OPTIONS[option]}))
    for index in (0, 5):
        video0, label0 = base.make(7, index)
        video, label = maker.make(7, index)
        for key in ("class_label", "positions", "future_position", "trajectory_params"):
            assert label[key] == label0[key]
        added = set(label) - set(label0)
        assert added == ADDED_KEYS.get(option, {option})
        if option == "ground_truth":
            assert np.array_equal(video, video0)  # bookkeeping only: not a pixel changes
        else:
            assert not np.array_equal(video, video0)
        again, _ = SampleMaker(maker.cfg).make(7, index)
        assert np.array_equal(video, again)


def test_distractors_have_their_own_paths_and_the_target_keeps_the_cue_colour():
    cfg = GeneratorConfig.model_validate({"distractors": {"count": 3, "min_hue_gap": 0.2}})
    maker = SampleMaker(cfg)
    for index in range(6):
        _, label = maker.make(1, index)
        assert np.allclose(label["appearance"]["ball_rgb"], target_rgb(cfg.distractors))
        assert len(label["distractors"]) == 3
        for ball in label["distractors"]:
            gap = abs(_hue(np.array(ball["rgb"])) - cfg.distractors.target_hue) % 1.0
            assert min(gap, 1.0 - gap) >= 0.2 - 1e-9
            assert np.asarray(ball["positions"]).shape == np.asarray(label["positions"]).shape
            assert ball["positions"] != label["positions"]


def test_pillars_stand_clear_of_the_targets_path():
    cfg = GeneratorConfig.model_validate({"occluders": {"count": 3, "clearance": 0.5}})
    maker = SampleMaker(cfg)
    for index in range(6):
        _, label = maker.make(2, index)
        positions = np.asarray(label["positions"])
        assert label["occluders"], "no pillar placed"
        for p in label["occluders"]:
            c, s = np.cos(p["yaw"]), np.sin(p["yaw"])
            d = positions[:, :2] - p["centre"]
            local = np.abs(np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], 1))
            outside = np.maximum(local - p["half_sides"], 0.0)
            above = np.maximum(positions[:, 2] - p["height"], 0.0)
            assert np.hypot(np.linalg.norm(outside, axis=1), above).min() > 0.5


@pytest.mark.parametrize("level", ["medium", "hard"])
def test_presets_render_and_their_ground_truth_checks(level):
    from generator.render.ground_truth import check_ground_truth

    cfg = load_config(PRESETS / f"{level}.yaml").model_copy(
        update={"ground_truth": GeneratorConfig.model_validate(OPTIONS).ground_truth}
    )
    meta = {
        "config": cfg.model_dump(mode="json"),
        "cameras": rig_metadata(cfg),
        "frames": cfg.frames,
        "video_shape": list(cfg.video_shape),
    }
    maker = SampleMaker(cfg)
    for index in range(4):
        video, label = maker.make(3, index)
        assert video.shape == cfg.video_shape and video.dtype == np.uint8
        assert len(label["distractors"]) == cfg.distractors.count
        assert check_ground_truth(label, meta) == []
        assert label["future_frame"] == cfg.frames - 1 + cfg.horizon


def test_resume_keeps_a_default_dataset_and_refuses_a_changed_option(tmp_path, cli, capsys):
    """easy.yaml resumes a dataset made without --config; adding an option is a different dataset."""
    root = tmp_path / "ds"
    assert cli("--n", 4, "--out", root, "--workers", 1, "--quiet") == 0
    fingerprint = (root / "checkpoints" / "fingerprint.json").read_text()
    assert "distractors" not in fingerprint and "ground_truth" not in fingerprint
    assert cli("--n", 8, "--out", root, "--config", PRESETS / "easy.yaml", "--resume",
               "--workers", 1, "--quiet") == 0  # fmt: skip
    capsys.readouterr()
    opt = tmp_path / "opt.yaml"
    opt.write_text("occluders: {count: 1}\n")
    assert cli("--n", 8, "--out", root, "--config", opt, "--resume", "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "occluders" in err and "Traceback" not in err
    meta = json.loads((root / "metadata.json").read_text())
    assert meta["total_samples"] == 8 and "occluders" not in meta["config"]


def test_a_dataset_with_options_records_them(tmp_path, cli):
    opt = tmp_path / "opt.yaml"
    opt.write_text("image_size: 32\nframes: 8\nhorizon: 2\ndistractors: {count: 1}\n"
                   "ground_truth: {enabled: true}\n")  # fmt: skip
    root = tmp_path / "ds"
    assert cli("--n", 4, "--out", root, "--config", opt, "--workers", 1, "--quiet") == 0
    meta = json.loads((root / "metadata.json").read_text())
    fingerprint = json.loads((root / "checkpoints" / "fingerprint.json").read_text())
    for record in (meta["config"], fingerprint["config"]):
        assert record["distractors"]["count"] == 1 and record["ground_truth"]["enabled"]
    label = json.loads((root / "labels" / "sample_0000.json").read_text())
    assert len(label["ground_truth"]["cameras"][0]["uv"]) == 8


@pytest.mark.parametrize(
    "text, field",
    [
        ("occluders: {count: -1}\n", "occluders.count"),
        ("distractors: {colour: red}\n", "distractors.colour"),
        ("lighting: {drift: 5}\n", "lighting.drift"),
        ("ground_truth: {masks: maybe}\n", "ground_truth.masks"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(tmp_path, cli, capsys, text, field):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert cli("--n", 4, "--out", tmp_path / "a", "--config", bad) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()
