"""Each figure and promise of README.md's generator sections, checked against the code's output.

The README is parsed where practical (the ranges table, the camera rig sentence, the metadata
and label key lists, the size per sample), so the README and the code cannot drift apart:
editing either alone fails here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.__main__ import INTERRUPTED
from generator.config import ConfigError, GeneratorConfig, load_config
from generator.dataformat.layout import label_bytes
from generator.render.cameras import build_rig
from generator.render.sample import RENDER_VERSION, SampleMaker
from trajkit.files import TMP_PREFIX

ROOT = Path(__file__).resolve().parents[2]
README = " ".join((ROOT / "README.md").read_text().split())  # one line: sentences wrap anywhere
NUM = r"(-?[\d.]+)"


def readme(pattern: str) -> tuple[str, ...]:
    """The groups of ``pattern``'s one match in the README; fails if the sentence is gone."""
    found = re.findall(pattern, README)
    assert len(found) == 1, f"README should say {pattern!r} once, found {len(found)}"
    return found[0] if isinstance(found[0], tuple) else (found[0],)


def floats(*groups: str) -> list[float]:
    return [float(g) for g in groups]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Four default samples, as ``python -m generator`` writes them."""
    from generator.__main__ import main

    root = tmp_path_factory.mktemp("promises") / "ds"
    assert main(["--n", "4", "--out", str(root), "--workers", "1", "--quiet"]) == 0
    return root


# --- What it renders -------------------------------------------------------------------


def test_scene_box_frames_and_future_frame():
    cfg = GeneratorConfig()
    x_lo, x_hi, z_lo, z_hi = floats(
        *readme(rf"x, y in \[{NUM}, {NUM}\] m, z in \[{NUM}, {NUM}\] m")
    )
    s = cfg.scene
    assert (s.x.lo, s.x.hi, s.y.lo, s.y.hi, s.z.lo, s.z.hi) == (x_lo, x_hi, x_lo, x_hi, z_lo, z_hi)
    frames, fps = readme(r"(\d+) frames at (\d+) fps are observed")
    future = int(readme(r"`frames - 1 \+ horizon` = (\d+)")[0])
    assert (cfg.frames, cfg.fps) == (int(frames), float(fps))
    label = SampleMaker(cfg).label(0, 0)
    assert label["future_frame"] == future == cfg.frames - 1 + cfg.horizon
    assert len(label["positions"]) == future + 1
    assert label["future_position"] == label["positions"][future]


def test_camera_rig_is_where_the_readme_puts_it():
    """Distance, azimuths, elevations and field of view, measured on the built cameras."""
    count, distance, point, azimuths, elevations, fov = readme(
        rf"seen by (\d+) pinhole cameras {NUM} m from the point \(([^)]*)\) at azimuths "
        r"([\d/]+) degrees and elevations ([\d/]+) degrees \(([\d.]+) degree field of view\)"
    )
    cfg = GeneratorConfig()
    cams = build_rig(cfg)
    target = np.array(floats(*point.split(",")))
    assert len(cams) == int(count) == cfg.num_cameras
    for cam, az, el in zip(cams, azimuths.split("/"), elevations.split("/"), strict=True):
        offset = cam.centre - target
        assert np.linalg.norm(offset) == pytest.approx(float(distance))
        assert math.degrees(math.atan2(offset[1], offset[0])) % 360 == pytest.approx(float(az))
        assert math.degrees(math.asin(offset[2] / np.linalg.norm(offset))) == pytest.approx(
            float(el)
        )
        (u, v), depth = cam.project(target)  # looking straight at it
        centre = (cfg.image_size - 1) / 2
        assert depth > 0 and u == pytest.approx(centre) and v == pytest.approx(centre)
        measured_fov = 2 * math.degrees(math.atan(cfg.image_size / 2 / cam.K[0, 0]))
        assert measured_fov == pytest.approx(float(fov))


def _table_row(name: str) -> str:
    return readme(rf"\| \d {name} \| ([^|]*\|[^|]*) \|")[0]


def test_parameter_ranges_table_matches_the_config_and_the_drawn_paths():
    """Each range in the table is the config's default, and 400 drawn labels stay inside it."""
    cfg = GeneratorConfig()
    lin = _table_row("Linear")
    speed = floats(*re.search(rf"speed {NUM}-{NUM} m/s", lin).groups())
    vertical = float(re.search(rf"±asin\({NUM}\)", lin).group(1))
    circ = _table_row("Circular")
    c = re.search(rf"radius {NUM}-{NUM} m, {NUM}-{NUM} turns over the (\d+) observed", circ)
    c_radius, c_turns, observed = floats(*c.groups()[:2]), floats(*c.groups()[2:4]), c.group(5)
    hel = _table_row("Helical")
    h = re.search(rf"radius {NUM}-{NUM} m, {NUM}-{NUM} turns, drift {NUM}-{NUM} m", hel)
    h_radius, h_turns, h_drift = (
        floats(*h.groups()[:2]),
        floats(*h.groups()[2:4]),
        floats(*h.groups()[4:]),
    )
    par = _table_row("Parabolic")
    gravity = float(re.search(rf"gravity \({NUM} m/s²\)", par).group(1))
    p = re.search(
        rf"start height {NUM}-{NUM} m, apex at (\d+)-(\d+)% of the observed window, "
        rf"horizontal speed {NUM}-{NUM} m/s",
        par,
    )
    start, apex, h_speed = (
        floats(*p.groups()[:2]),
        floats(*p.groups()[2:4]),
        floats(*p.groups()[4:]),
    )
    apex = [a / 100 for a in apex]

    def pair(r):
        return [r.lo, r.hi]

    assert pair(cfg.linear.speed) == speed and cfg.linear.max_vertical_fraction == vertical
    assert pair(cfg.circular.radius) == c_radius and pair(cfg.circular.swept_turns) == c_turns
    assert int(observed) == cfg.frames
    assert pair(cfg.helical.radius) == h_radius and pair(cfg.helical.swept_turns) == h_turns
    assert pair(cfg.helical.drift) == h_drift
    assert cfg.parabolic.gravity == gravity and pair(cfg.parabolic.start_height) == start
    assert pair(cfg.parabolic.apex_fraction) == apex
    assert pair(cfg.parabolic.horizontal_speed) == h_speed

    def within(value, bounds):
        return bounds[0] - 1e-9 <= value <= bounds[1] + 1e-9

    maker, observed_time = SampleMaker(cfg), (cfg.frames - 1) / cfg.fps
    seen = set()
    for i in range(400):
        label = maker.label(0, i)
        q, cls = label["trajectory_params"], label["class_name"]
        seen.add(cls)
        if cls == "Linear":
            assert within(q["speed"], speed)
            assert abs(q["velocity"][2]) / q["speed"] <= vertical + 1e-9
        elif cls == "Circular":
            assert within(q["radius"], c_radius) and within(q["turns_observed"], c_turns)
        elif cls == "Helical":
            assert within(q["radius"], h_radius) and within(q["turns_observed"], h_turns)
            assert within(q["drift_speed"] * observed_time, h_drift)
        else:
            assert q["gravity"] == gravity and within(q["start"][2], start)
            assert within(q["apex_time"] / observed_time, apex)
            assert within(math.hypot(*q["velocity"][:2]), h_speed)
    assert seen == {"Linear", "Circular", "Helical", "Parabolic"}


def test_sensor_noise_std():
    """'Gaussian-like sensor noise (std 2 on 0..255)': the rendered noise, measured."""
    std = float(readme(rf"sensor noise \(std {NUM} on 0\.\.255\)")[0])
    cfg = GeneratorConfig()
    assert cfg.appearance.noise_std == std
    noisy = SampleMaker(cfg).make(0, 1)[0].astype(np.int16)
    clean = SampleMaker(GeneratorConfig(appearance={"noise_std": 0.0})).make(0, 1)[0]
    clean = clean.astype(np.int16)
    unclipped = (clean > 16) & (clean < 239)
    assert (noisy - clean)[unclipped].std() == pytest.approx(std, abs=0.05)


# --- Dataset format ----------------------------------------------------------------------


def _backticked(sentence: str) -> set[str]:
    return set(re.findall(r"`([a-z_0-9]+)`", sentence))


def test_metadata_of_the_default_config(dataset):
    keys = _backticked(readme(r"`metadata.json` holds (.*?) for each its `K`")[0])
    keys |= {"config", "cameras"}
    meta = json.loads((dataset / "metadata.json").read_text())
    assert set(meta) == keys
    cfg = GeneratorConfig()
    extent = float(readme(rf"\(the box diagonal, {NUM} m\)")[0])
    assert round(meta["scene_extent"], 2) == extent
    shape = [
        int(n) for n in readme(r"torch uint8 \(cameras=(\d+), frames=(\d+), (\d+), (\d+), (\d+)\)")
    ]
    assert meta["video_shape"] == shape == list(cfg.video_shape) and meta["dtype"] == "uint8"
    assert meta["format_version"] == 1 and meta["render_version"] == RENDER_VERSION
    assert (meta["frames"], meta["horizon"], meta["fps"]) == (cfg.frames, cfg.horizon, cfg.fps)
    assert meta["future_frame_index"] == cfg.frames - 1 + cfg.horizon
    assert meta["total_samples"] == 4 and meta["stem_width"] >= 4
    assert GeneratorConfig.model_validate(meta["config"]) == cfg
    assert len(meta["cameras"]) == cfg.num_cameras
    video = torch.load(dataset / "videos" / "sample_0000.pt", weights_only=True)
    assert list(video.shape) == shape and video.dtype == torch.uint8
    label = json.loads((dataset / "labels" / "sample_0000.json").read_text())
    # pixel = K (R X + t), u = column, v = row: the metadata's cameras put the ball where drawn
    for cam, built in zip(meta["cameras"], build_rig(cfg), strict=True):
        X = np.array(label["positions"][0])
        uvw = np.array(cam["K"]) @ (np.array(cam["R"]) @ X + np.array(cam["t"]))
        np.testing.assert_allclose(uvw[:2] / uvw[2], built.project(X)[0], atol=1e-9)
    label_keys = _backticked(readme(r"A label holds (.*?) and `video_sha256`")[0])
    assert set(label) == label_keys | {"video_sha256", "future_frame"}


def test_bytes_per_sample_and_dataset_size(dataset):
    """'about 16 GB (1.58 MB per sample)', from the files a run writes."""
    total_gb, per_mb = floats(*readme(rf"about {NUM} GB \({NUM} MB per sample\)"))
    files = [*(dataset / "videos").iterdir(), *(dataset / "labels").iterdir()]
    per_sample = sum(f.stat().st_size for f in files) / 4
    assert round(per_sample / 1e6, 2) == per_mb
    assert round(10_000 * per_sample / 1e9) == total_gb


# --- Golden bytes per renderer version -----------------------------------------------------

# SHA-256 of seed 0's first four samples (video array bytes, label bytes) for each renderer
# version this code draws. A byte change without a RENDER_VERSION bump fails here; a bump
# must add its own entry (older versions are read, never drawn, so they have none).
GOLDEN = {
    2: [
        (
            "9192f47183e2fceb81f2ef3e70b8ad10bd4a4f018ec0ee5d58e81ece0b9fb04f",
            "44fb91caaee884bfa4de9ad4d2f6492c3aaa48550e6edab7bfcd138b35ab7cb1",
        ),
        (
            "ab9ab46afb2e2296bcf8fb6099fb946f63f1b9504408f39cd0e924452a0b8476",
            "dd5876a390ac7bee8945bab0146043c165e59ff2732cfa28753267eb96ae38ec",
        ),
        (
            "2e9ea14b053f92c0c221bc04c9ca90c6583d8743473ca18d068ee95e4f5bfc04",
            "ef95c980f85c06c95a396300fc62d74180a54ea8899fc6ef91d937c7f0b6cf48",
        ),
        (
            "275e9460572c98a86e47836d2b0d775b8a31e55e43c27b61eccbfb86ea67e0a2",
            "c505fedae4768c8b3194c6f31c52be1162c6e4394313dbe2656493a313d58c62",
        ),
    ],
}
# The same four samples under each shipped level config, as one digest per file.
GOLDEN_LEVELS = {
    2: {
        "default": "bd9b6190655cfad33b52a00d5a0e0063f48d44b05444cb02d5f699dac2451167",
        "easy": "bd9b6190655cfad33b52a00d5a0e0063f48d44b05444cb02d5f699dac2451167",
        "medium": "4d0aed5c8e379491c4839377fab589659f40d1c5ca0734928777712762e3229c",
        "hard": "ff7ae5e98087d5c660de850ade0cfdeac4bf472a7cba5e9a19cc603e7b0724c5",
    },
}
# The medium and hard presets before motion blur and camera shake joined them (2026-12):
# the same configs without those two sections still give these bytes.
GOLDEN_LEVELS_WITHOUT_BLUR_AND_SHAKE = {
    2: {
        "medium": "4591c17c931ce4ae8fb4b941d6129ca12eb03353f842746a5a212d9d06fdb9c0",
        # hard.yaml lists seven classes since 2026-12: another config, the same renderer.
        "hard": "3841f71af1ffc666768b92c1825680ea797fdb43c040d4534ace9aafae65be64",
    },
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_golden_bytes_of_this_renderer_version():
    assert RENDER_VERSION in GOLDEN, f"renderer version {RENDER_VERSION} has no golden digests"
    maker = SampleMaker(GeneratorConfig())
    for index, (video_sha, label_sha) in enumerate(GOLDEN[RENDER_VERSION]):
        video, label = maker.make(0, index)
        assert (_sha(video.tobytes()), _sha(label_bytes(label))) == (video_sha, label_sha), index


def _levels_digest(cfg: GeneratorConfig) -> str:
    maker = SampleMaker(cfg)
    h = hashlib.sha256()
    for index in range(4):
        video, label = maker.make(0, index)
        h.update(video.tobytes())
        h.update(label_bytes(label))
    return h.hexdigest()


@pytest.mark.parametrize("level", ["default", "easy", "medium", "hard"])
def test_shipped_configs_stay_valid_and_byte_identical(level):
    assert RENDER_VERSION in GOLDEN_LEVELS
    cfg = load_config(ROOT / "configs" / "generator" / f"{level}.yaml")
    assert _levels_digest(cfg) == GOLDEN_LEVELS[RENDER_VERSION][level]


@pytest.mark.parametrize("level", ["medium", "hard"])
def test_presets_without_blur_and_shake_keep_their_earlier_bytes(level):
    raw = yaml.safe_load((ROOT / "configs" / "generator" / f"{level}.yaml").read_text())
    assert raw.pop("motion_blur", None) is not None
    raw.pop("camera_motion", None)
    digest = _levels_digest(GeneratorConfig.model_validate(raw))
    assert digest == GOLDEN_LEVELS_WITHOUT_BLUR_AND_SHAKE[RENDER_VERSION][level]


# --- "a wrong value is refused naming the field" --------------------------------------------

# Each of these crashed a worker with a traceback (or drew clips with nothing to see) before
# the config refused it; the field named in the one-line error comes second.
UNRENDERABLE = [
    ({"image_size": 1024}, "image_size"),
    ({"cameras": {"azimuths_deg": list(range(64)), "elevations_deg": [30] * 64}}, "image_size"),
    ({"fps": float("nan")}, "fps"),
    ({"cameras": {"distance": float("inf")}}, "cameras.distance"),
    ({"cameras": {"look_at": [float("nan"), 0, 0]}}, "cameras.look_at"),
    ({"cameras": {"azimuths_deg": [float("inf")] * 4}}, "cameras.azimuths_deg"),
    ({"cameras": {"azimuths_deg": [], "elevations_deg": []}}, "cameras"),
    ({"cameras": {"distance": 1.5}}, "cameras: camera 0 (azimuth 20, elevation 12) is inside"),
    (
        {"cameras": {"look_at": [0, 0, -5]}},
        "cameras: camera 0 (azimuth 20, elevation 12) is under the ground",
    ),
    (
        {"cameras": {"look_at": [100, 100, 100]}},
        "cameras: camera 1 (azimuth 110, elevation 25) does not see",
    ),
    ({"scene": {"z": {"lo": -1, "hi": 3}}}, "scene.z"),
    ({"scene": {"y": {"lo": 0, "hi": 0}}}, "appearance.ball_radius"),
    ({"scene": {"x": {"lo": 100, "hi": 101}}}, "cameras"),
    ({"scene": {"y": {"lo": -0.1, "hi": 0.1}}}, "appearance.ball_radius"),
    ({"appearance": {"ball_radius": {"lo": 2, "hi": 3}}}, "appearance.ball_radius"),
    ({"appearance": {"ball_radius": {"lo": 0, "hi": 0}}}, "appearance.ball_radius"),
    ({"appearance": {"checker_size": {"lo": 0, "hi": 0}}}, "appearance.checker_size"),
    ({"distractors": {"radius": {"lo": -1, "hi": -1}}}, "distractors.radius"),
    ({"distractors": {"radius": {"lo": 5, "hi": 5}}}, "distractors.radius"),
    ({"occluders": {"width": {"lo": 9, "hi": 9}}}, "occluders.width"),
    ({"occluders": {"width": {"lo": float("nan"), "hi": 1}}}, "occluders.width.lo"),
    ({"linear": {"speed": {"lo": 20, "hi": 20}}}, "linear: only"),
    ({"linear": {"speed": {"lo": -1e9, "hi": 1e9}}}, "linear.speed"),
    ({"circular": {"radius": {"lo": 20, "hi": 20}}}, "circular: only"),
    ({"helical": {"drift": {"lo": 20, "hi": 20}}}, "helical: only"),
    ({"parabolic": {"gravity": 1000}}, "parabolic: only"),
    ({"parabolic": {"apex_fraction": {"lo": -1, "hi": -1}}}, "parabolic.apex_fraction"),
    ({"parabolic": {"start_height": {"lo": 20, "hi": 20}}}, "parabolic: only"),
    ({"fps": 25}, "parabolic: only"),  # flights land under the box before the future frame
    ({"linear": {"speed": {"lo": 3, "hi": 2}}}, "linear.speed"),
    # These drew a whole dataset of nothing to learn from, without a word: a ball under a
    # pixel in every camera, paths that do not move, no pillar in any clip, masks of nothing.
    ({"cameras": {"distance": 1e12}}, "cameras.distance: camera 0 (azimuth 20, elevation 12)"),
    ({"cameras": {"fov_deg": 169}}, "cameras.distance"),
    ({"appearance": {"ball_radius": {"lo": 0.01, "hi": 0.3}}}, "cameras.distance"),
    ({"fps": 1e300}, "linear: Linear paths barely move"),
    ({"linear": {"speed": {"lo": 0, "hi": 0}}}, "linear: Linear paths barely move"),
    ({"circular": {"swept_turns": {"lo": 0, "hi": 0}}}, "circular: Circular paths barely move"),
    # A range from 0 draws some clips that stand still: the median of the probe's paths moved
    # 5.5 px for this speed, and ten random paths rarely hold one of them; slowed to lo, 0 px.
    (
        {"linear": {"speed": {"lo": 0, "hi": 1}}},
        "linear: Linear paths barely move at the low end of speed: a median 0 px",
    ),
    (
        {"helical": {"swept_turns": {"lo": 0, "hi": 1.5}, "drift": {"lo": 0, "hi": 2}}},
        "helical: Helical paths barely move at the low end of radius and swept_turns and drift",
    ),
    ({"occluders": {"clearance": 1e9}}, "occluders.clearance"),
    ({"occluders": {"clearance": 4}}, "occluders.clearance"),
    ({"ground_truth": {"enabled": False, "masks": True}}, "ground_truth.masks"),
]


@pytest.mark.parametrize("raw, field", UNRENDERABLE, ids=lambda v: str(v)[:40])
def test_unrenderable_config_is_refused_naming_the_field(tmp_path, raw, field):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and f": {field}" in message, message


# pydantic's lax int took ``horizon: true`` for 1, and YAML reads yes/no and on/off as booleans.
COUNTS = [
    "frames",
    "horizon",
    "image_size",
    "distractors.count",
    "occluders.count",
    "motion_blur.samples",
]


@pytest.mark.parametrize("field", COUNTS)
def test_a_boolean_where_a_count_goes_is_refused_naming_the_field(tmp_path, field):
    *section, key = field.split(".")
    path = tmp_path / "c.yaml"
    path.write_text(f"{section[0]}: {{{key}: yes}}\n" if section else f"{key}: yes\n")
    why = "true is not a whole number (YAML reads yes/no and on/off as true/false)"
    with pytest.raises(ConfigError, match=re.escape(f": {field}: {why}") + "$"):
        load_config(path)


@pytest.mark.parametrize(
    "value, why",
    [
        ("32.0", "32.0 is not a whole number (write 32)"),
        ("3.5", "3.5 is not a whole number"),
        ("'3'", "'3' is not a whole number"),
        ("1.0e+300", "1e+300 is not a whole number"),  # no 301-digit advice
    ],
)
def test_a_count_that_is_not_an_int_is_one_line_saying_what_to_write(
    tmp_path, cli, capsys, value, why
):
    """pydantic said "Input should be a valid integer" for ``count: 32.0``: not what to write."""
    path = tmp_path / "c.yaml"
    path.write_text(f"occluders: {{count: {value}}}\n")
    assert cli("--n", 4, "--out", tmp_path / "ds", "--config", path) == 2
    err = capsys.readouterr().err
    assert err == f"error: config {path}: occluders.count: {why}\n", err
    assert not (tmp_path / "ds").exists()


EXTREME = st.sampled_from([0.0, -1.0, 1e-9, 0.5, 3.0, 50.0, 1e9, -1e9, 1e300])
FIELDS = {
    "fps": lambda v: {"fps": v},
    "frames": lambda v: {"frames": int(min(abs(v), 600))},
    "horizon": lambda v: {"horizon": int(min(abs(v), 600))},
    "image_size": lambda v: {"image_size": int(min(abs(v), 2000))},
    "distance": lambda v: {"cameras": {"distance": v}},
    "look_at": lambda v: {"cameras": {"look_at": [0.0, v, v]}},
    "fov": lambda v: {"cameras": {"fov_deg": v}},
    "elevation": lambda v: {"cameras": {"azimuths_deg": [0.0], "elevations_deg": [v]}},
    "scene.x": lambda v: {"scene": {"x": {"lo": -abs(v), "hi": abs(v)}}},
    "scene.z": lambda v: {"scene": {"z": {"lo": v, "hi": 3.0}}},
    "ball": lambda v: {"appearance": {"ball_radius": {"lo": v, "hi": abs(v)}}},
    "checker": lambda v: {"appearance": {"checker_size": {"lo": v, "hi": abs(v)}}},
    "noise": lambda v: {"appearance": {"noise_std": v}},
    "speed": lambda v: {"linear": {"speed": {"lo": v, "hi": abs(v)}}},
    "circle": lambda v: {"circular": {"radius": {"lo": v, "hi": abs(v)}}},
    "turns": lambda v: {"helical": {"swept_turns": {"lo": v, "hi": abs(v)}}},
    "gravity": lambda v: {"parabolic": {"gravity": v}},
    "apex": lambda v: {"parabolic": {"apex_fraction": {"lo": v, "hi": abs(v)}}},
    "distractor": lambda v: {"distractors": {"radius": {"lo": v, "hi": abs(v)}}},
    "pillar": lambda v: {"occluders": {"width": {"lo": v, "hi": abs(v)}, "clearance": abs(v)}},
}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.timeout(300)
@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    changes=st.lists(st.tuples(st.sampled_from(sorted(FIELDS)), EXTREME), min_size=1, max_size=3)
)
def test_any_config_either_renders_or_is_refused_in_one_line(changes):
    """Extreme values in up to three fields: refused naming a field, or every class renders."""
    raw: dict = {}
    for field, value in changes:
        raw = _merge(raw, FIELDS[field](value))
    try:
        cfg = GeneratorConfig.model_validate(raw)
    except ValueError as e:
        from trajkit.cli import describe_validation_error

        assert describe_validation_error(e) and len(describe_validation_error(e).splitlines()) == 1
        return
    maker = SampleMaker(cfg)
    for index in range(4):  # one sample of each class
        video, label = maker.make(0, index)
        assert video.shape == cfg.video_shape


# --- Promises of the command line -----------------------------------------------------------


def test_a_folder_holding_other_files_is_refused_and_left_untouched(tmp_path):
    from generator.__main__ import main

    (tmp_path / "notes.txt").write_text("mine")
    assert main(["--n", "2", "--out", str(tmp_path), "--workers", "1", "--quiet"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def _whole_samples(root: Path, temporaries: bool = False) -> int:
    """Every label vouches for its video's bytes; no temporary file is left (unless allowed).
    Returns the count."""
    assert temporaries or not list(root.rglob(f"{TMP_PREFIX}*"))
    labels = sorted((root / "labels").glob("*.json"))
    for path in labels:
        video = root / "videos" / f"{path.stem}.pt"
        assert json.loads(path.read_text())["video_sha256"] == _sha(video.read_bytes()), path
    return len(labels)


N_CTRL_C = 300
SLOW = pytest.mark.slow


def _group_gone(pgid: int, wait: float = 20.0) -> bool:
    """Whether every process of the group ``pgid`` has ended (within ``wait`` seconds); the
    group is killed either way, so a failed check leaves nothing running."""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return False


@pytest.mark.parametrize(
    "signum, to_group",
    [
        pytest.param(signal.SIGINT, True, id="ctrl-c-to-the-group"),
        # the same stop by another signal; the endings below send SIGTERM in the default suite
        pytest.param(signal.SIGTERM, False, id="sigterm-to-the-main-process", marks=SLOW),
    ],
)
def test_ctrl_c_is_one_line_exit_130_and_keeps_whole_samples(tmp_path, signum, to_group):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or SIGTERM to the
    main process alone (``kill``, ``timeout``) mid-run: the same stop, and no worker process
    outlives the run."""
    out, tiny = tmp_path / "ds", tmp_path / "tiny.yaml"
    tiny.write_text(
        "frames: 4\nimage_size: 16\ncameras: {azimuths_deg: [20.0], elevations_deg: [30.0]}\n"
    )
    args = ["--n", N_CTRL_C, "--out", out, "--workers", "2", "--checkpoint-every", "20", "--quiet"]
    args += ["--config", tiny]  # small samples: the resume that completes the run is quick
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "generator", *map(str, args)]
    proc = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "labels").is_dir() and len(list((out / "labels").glob("*.json"))) >= 30:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    (os.killpg if to_group else os.kill)(proc.pid, signum)
    try:  # workers left running keep stderr open: communicate() waits for them too
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the run (or a worker it left running) did not end within 60 s")
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [f"interrupted: {INTERRUPTED['generate']}"], err
    assert _group_gone(proc.pid), "worker processes outlived the run"
    # A worker killed mid-write may leave its temporary file (never a sample's own name);
    # the resume removes it.
    kept = _whole_samples(out, temporaries=True)
    assert 30 <= kept < N_CTRL_C and not (out / "metadata.json").exists()
    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _whole_samples(out) == N_CTRL_C
    check = subprocess.run(
        [sys.executable, "-m", "generator", "validate", str(out), "--quick"], env=env
    )
    assert check.returncode == 0


# ``python -m generator`` with a stop sent at its very end: after its last step (which also
# notes any worker process still running), or from its last exit function.
STOP_AT_THE_END = """
import atexit, os, signal, sys
from pathlib import Path
import generator.pipeline.generate as g
how, when = sys.argv.pop(1), sys.argv.pop(1)

def stop():
    os.killpg(0, signal.SIGINT) if how == "ctrl-c" else os.kill(os.getpid(), signal.SIGTERM)

def last_step(*args, real=g.write_metadata, **kwargs):
    out = real(*args, **kwargs)
    kids = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
    if any(b"popen_loky" in Path(f"/proc/{k}/cmdline").read_bytes() for k in kids):
        print("workers still running at the last step", file=sys.stderr)
    stop()
    return out

if when == "exit":
    atexit.register(stop)
else:
    g.write_metadata = last_step
import runpy
runpy.run_module("generator", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "when, how",
    [
        ("last-step", "sigterm"),
        ("exit", "ctrl-c"),
        # each signal at each moment: the default suite has each signal and each moment once
        pytest.param("last-step", "ctrl-c", marks=SLOW),
        pytest.param("exit", "sigterm", marks=SLOW),
    ],
)
def test_a_stop_at_the_very_end_is_one_line_and_130(tmp_path, how, when):
    """A stop as the dataset is finished (Ctrl-C to the whole group, or SIGTERM) is the same
    stop as any other: the workers have ended by then. One after the command has returned
    says so (``tests/test_entry_points.py`` has every command's)."""
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        "frames: 4\nimage_size: 16\ncameras: {azimuths_deg: [20.0], elevations_deg: [30.0]}\n"
    )
    args = ["--n", 4, "--out", tmp_path / "ds", "--workers", 2, "--checkpoint-every", 2]
    proc = subprocess.run(
        [sys.executable, "-c", STOP_AT_THE_END, how, when, *map(str, args), "--quiet"]
        + ["--config", str(tiny)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert proc.returncode == 130, proc.stderr
    said = (
        INTERRUPTED["generate"]
        if when == "last-step"
        else "the command had ended (exit 0) before the stop"
    )
    assert proc.stderr.strip().splitlines() == [f"interrupted: {said}"]


def test_disk_space_is_checked_before_every_chunk(tmp_path, monkeypatch, capsys):
    """The disk 'fills' once the first chunk is sealed: one line, exit 1, the chunk kept whole."""
    import shutil
    from collections import namedtuple

    from generator.__main__ import main

    out = tmp_path / "ds"
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage

    def filling(path):  # full once the first chunk's videos are on disk
        written = (out / "videos").is_dir() and any((out / "videos").glob("*.pt"))
        return usage(1 << 40, 1 << 40, 0) if written else real(path)

    monkeypatch.setattr("generator.pipeline.preflight.shutil.disk_usage", filling)
    args = ["--n", "8", "--out", str(out), "--workers", "1", "--checkpoint-every", "4", "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stopped before samples 4-7" in err, err
    assert "4 whole samples are kept" in err and "--resume" in err
    assert _whole_samples(out) == 4
    assert sorted(p.name for p in (out / "videos").iterdir()) == [
        f"sample_000{i}.pt" for i in range(4)
    ]
    assert not (out / "metadata.json").exists()
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0 and _whole_samples(out) == 8
