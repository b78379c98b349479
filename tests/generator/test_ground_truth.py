"""Per-frame ground truth: checked against K (R X + t) independently, and against the rendered pixels."""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from generator.config import GeneratorConfig, Range
from generator.pipeline.metadata import rig_metadata
from generator.render.ground_truth import (
    OCCLUDED,
    OUT_OF_FRAME,
    VISIBLE,
    check_ground_truth,
    decode_mask,
    encode_mask,
)

SCENE = {
    "occluders": {"count": 3, "width": {"lo": 0.6, "hi": 1.0}, "height": {"lo": 2.0, "hi": 3.0}},
    "distractors": {"count": 2},
    "cameras": {"fov_deg": 35.0},  # narrow: the ball leaves some views
    "ground_truth": {"enabled": True, "masks": True},
}


def _meta(cfg: GeneratorConfig) -> dict:
    return {
        "config": cfg.model_dump(mode="json"),
        "cameras": rig_metadata(cfg),
        "frames": cfg.frames,
        "video_shape": list(cfg.video_shape),
    }


@pytest.fixture(scope="module")
def rendered():
    from generator.render.sample import SampleMaker

    cfg = GeneratorConfig.model_validate(SCENE)
    # The same samples with a target too small to see: same streams (one uniform draw for
    # the radius either way), so every other pixel, noise included, is the same.
    # (A config refuses a ball this small, so it is swapped in unvalidated.)
    tiny = Range(lo=0.001, hi=0.001)
    ghost_cfg = cfg.model_copy(
        update={"appearance": cfg.appearance.model_copy(update={"ball_radius": tiny})}
    )
    maker, ghost = SampleMaker(cfg), SampleMaker(ghost_cfg)
    samples = []
    for index in range(12):
        video, label = maker.make(4, index)
        samples.append((video, label, ghost.make(4, index)[0]))
    return cfg, samples


def test_ground_truth_of_rendered_samples_checks_clean(rendered):
    cfg, samples = rendered
    meta = _meta(cfg)
    flags = set()
    for _, label, _ in samples:
        assert check_ground_truth(label, meta) == []
        for cam in label["ground_truth"]["cameras"]:
            flags.update(cam["visibility"])
    assert flags == {VISIBLE, OCCLUDED, OUT_OF_FRAME}  # the samples exercise all three


def test_visibility_agrees_with_the_pixels(rendered):
    """A visible ball changes the pixel at (u, v); a wholly hidden one leaves it as without it."""
    _, samples = rendered
    seen = hidden = 0
    for video, label, ghost in samples:
        for c, cam in enumerate(label["ground_truth"]["cameras"]):
            for f, (status, fraction) in enumerate(
                zip(cam["visibility"], cam["visible_fraction"], strict=True)
            ):
                u, v = np.round(cam["uv"][f]).astype(int)
                if status == OUT_OF_FRAME:
                    continue
                diff = np.abs(video[c, f, :, v, u].astype(int) - ghost[c, f, :, v, u]).sum()
                if status == VISIBLE and fraction > 0.95:
                    assert diff > 30, (label["index"], c, f)
                    seen += 1
                elif status == OCCLUDED and fraction == 0.0:
                    assert diff <= 3, (label["index"], c, f)
                    hidden += 1
    assert seen > 100 and hidden > 0


def _label_and_meta(rendered):
    cfg, samples = rendered
    index = next(
        i
        for i, (_, label, _) in enumerate(samples)
        if any(OCCLUDED in cam["visibility"] for cam in label["ground_truth"]["cameras"])
    )
    return copy.deepcopy(samples[index][1]), _meta(cfg)


def test_a_wrong_projection_is_caught(rendered):
    label, meta = _label_and_meta(rendered)
    label["ground_truth"]["cameras"][2]["uv"][7][0] += 0.01
    (problem,) = check_ground_truth(label, meta)
    assert "camera 2 frame 7" in problem and "K (R X + t)" in problem
    label, meta = _label_and_meta(rendered)
    meta["cameras"][1]["t"][0] += 0.05  # the metadata's camera, not the label, moved
    assert any("camera 1" in p for p in check_ground_truth(label, meta))
    label, meta = _label_and_meta(rendered)
    label["ground_truth"]["cameras"][0]["depth"][3] *= 1.01
    assert any("depth" in p for p in check_ground_truth(label, meta))


@pytest.mark.parametrize("flag", [VISIBLE, OCCLUDED, OUT_OF_FRAME])
def test_a_wrong_visibility_flag_is_caught(rendered, flag):
    label, meta = _label_and_meta(rendered)
    for c, cam in enumerate(label["ground_truth"]["cameras"]):
        for f, status in enumerate(cam["visibility"]):
            if status != flag:
                cam["visibility"][f] = flag
                problems = check_ground_truth(label, meta)
                assert len(problems) == 1 and f"camera {c} frame {f}" in problems[0]
                assert f"visibility {flag!r}, geometry" in problems[0]  # plain names, no np.str_
                assert "np." not in problems[0] and f"say {status!r}" in problems[0], problems[0]
                return
    pytest.fail("every flag already equal")


def test_a_wrong_mask_is_caught(rendered):
    label, meta = _label_and_meta(rendered)
    cam = label["ground_truth"]["cameras"][0]
    f = cam["visibility"].index(VISIBLE)
    size = meta["video_shape"][-1]
    mask = decode_mask(cam["mask_rle"][f], size)
    cam["mask_rle"][f] = encode_mask(np.roll(mask, 12, axis=1))
    assert any("mask reaches" in p for p in check_ground_truth(label, meta))
    cam["mask_rle"][f] = [size * size - 1]
    assert any("mask_rle unreadable" in p for p in check_ground_truth(label, meta))


def test_missing_ground_truth_is_a_problem_only_when_the_config_asks(rendered):
    label, meta = _label_and_meta(rendered)
    del label["ground_truth"]
    assert check_ground_truth(label, meta) == [f"label {label['index']}: no ground_truth.cameras"]
    meta["config"].pop("ground_truth")
    assert check_ground_truth(label, meta) == []


def test_an_unreadable_label_is_one_problem_not_a_traceback(rendered):
    label, meta = _label_and_meta(rendered)
    label["positions"] = label["positions"][:5]
    (problem,) = check_ground_truth(label, meta)
    assert "cannot check ground truth" in problem
    label, meta = _label_and_meta(rendered)
    del label["appearance"]
    (problem,) = check_ground_truth(label, meta)
    assert "cannot check ground truth" in problem


@given(arrays(np.bool_, (9, 9)))
def test_masks_round_trip(mask):
    runs = encode_mask(mask)
    assert sum(runs) == 81 and all(r > 0 for r in runs[1:])
    assert np.array_equal(decode_mask(runs, 9), mask)


@given(st.integers(1, 80))
def test_runs_that_do_not_cover_the_image_are_refused(total):
    with pytest.raises(ValueError):
        decode_mask([total], 9 if total != 81 else 8)


@pytest.mark.parametrize(
    "runs, message",
    [
        ([-5, 1029], "run 0 is -5, a negative number of pixels"),
        ([3, -1, 1022], "run 1 is -1, a negative number of pixels"),
        ([0.5, 1023.5], "run 0 is 0.5, not a whole number of pixels"),
        ([True, 1023], "run 0 is True, not a whole number of pixels"),
        (["1024"], "run 0 is '1024', not a whole number of pixels"),
        (1024, "1024 is not a list of runs"),
        ([1000, 23], "runs sum to 1023, not 1024"),
    ],
)
def test_unreadable_runs_say_what_is_wrong(runs, message):
    """A negative run was reported as "runs sum to 1024, not 1024": true, and no help."""
    with pytest.raises(ValueError) as e:
        decode_mask(runs, 32)
    assert str(e.value) == message


def test_a_negative_mask_run_is_named_in_the_label_check(rendered):
    label, meta = _label_and_meta(rendered)
    size = meta["video_shape"][-1]
    label["ground_truth"]["cameras"][1]["mask_rle"][2] = [-5, size * size + 5]
    (problem,) = check_ground_truth(label, meta)
    assert problem.endswith(
        "camera 1 frame 2: mask_rle unreadable (run 0 is -5, a negative number of pixels)"
    )
