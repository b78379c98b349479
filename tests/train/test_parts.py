"""The trainer's small parts: schedule, RNG checkpointing, metrics, future scaling, inputs, config."""

import random

import numpy as np
import pytest
import torch

from generator.__main__ import main as generate
from generator.dataformat.dataset import DatasetError
from train.checkpoint import restore_rng_state, rng_state
from train.distributed import DistContext
from train.trajectory.config import (
    TrainConfigError,
    build_config,
    refuse_file_changes,
    resumed_config,
)
from train.trajectory.evaluate import (
    FutureScale,
    evaluate,
    summarise,
    task_loss,
    trajectory_target,
)
from train.trajectory.inputs import prepare_video
from train.trajectory.loop import improves_on, lr_factor


def test_schedule_warms_up_linearly_then_decays_to_the_floor():
    f = [lr_factor(s, warmup=10, total=110, min_ratio=0.01) for s in range(111)]
    assert f[0] == pytest.approx(0.1) and f[4] == pytest.approx(0.5) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[60] == pytest.approx(0.505)
    assert f[110] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False)), "cosine part must not rise"


def test_rng_state_round_trips_through_tensors():
    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_summarise_reads_accuracy_per_class_and_rmse_from_the_confusion_matrix():
    confusion = torch.tensor([[3, 1, 0, 0], [0, 4, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]])
    m = summarise(confusion, sq_err=40.0, loss_sum=10.0, n=10)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_class_accuracy"] == [0.75, 1.0, None, 0.5]
    assert m["future_rmse"] == pytest.approx(2.0) and m["loss"] == pytest.approx(1.0)


def test_an_empty_split_has_no_accuracy_loss_or_rmse_not_a_perfect_zero():
    """An empty validation split scored accuracy 0, loss 0 and RMSE 0.0 (read as perfect),
    so epoch 1 stayed "best" for ever: its numbers are None."""
    model = torch.nn.Linear(3, 4)
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    scale = FutureScale(torch.tensor([[-1.0, 1.0]] * 3))
    empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(0)))
    m = evaluate(model, empty, scale, ctx, num_classes=4, future_weight=1.0, beta=0.1)
    assert m["accuracy"] is None and m["loss"] is None and m["future_rmse"] is None
    assert m["samples"] == 0 and m["per_class_accuracy"] == [None] * 4


def test_future_scale_maps_the_scene_box_to_minus_one_one_and_back():
    scale = FutureScale(torch.tensor([[-2.5, 2.5], [-2.5, 2.5], [0.35, 3.0]]))
    world = torch.tensor([[-2.5, 2.5, 0.35], [0.0, 0.0, 1.675]])
    norm = scale.normalise(world)
    assert torch.allclose(norm, torch.tensor([[-1.0, 1.0, -1.0], [0.0, 0.0, 0.0]]), atol=1e-6)
    assert torch.allclose(scale.to_world(norm), world, atol=1e-6)


def test_task_loss_is_cross_entropy_plus_weighted_smooth_l1_plus_aux():
    out = {
        "logits": torch.tensor([[2.0, 0.0, 0.0, 0.0]]),
        "future": torch.tensor([[0.5, 0.0, 0.0]]),
    }
    labels, target = torch.tensor([0]), torch.zeros(1, 3)
    ce = torch.nn.functional.cross_entropy(out["logits"], labels)
    reg = (0.5 - 0.05) / 3  # |x| - beta/2 on one of three coordinates, beta 0.1
    assert task_loss(out, labels, target, 2.0, 0.1).item() == pytest.approx(ce.item() + 2 * reg)
    out["aux_loss"] = torch.tensor(-0.25)
    assert task_loss(out, labels, target, 2.0, 0.1).item() == pytest.approx(
        ce.item() + 2 * reg - 0.25
    )


def test_trajectory_target_is_the_mean_position_of_each_span():
    positions = torch.arange(8.0).view(1, 8, 1).expand(2, 8, 3)
    target = trajectory_target(positions, 4)
    assert target.shape == (2, 4, 3)
    assert target[0, :, 0].tolist() == [0.5, 2.5, 4.5, 6.5]


def test_trajectory_loss_adds_its_weighted_smooth_l1_only_when_asked():
    out = {
        "logits": torch.tensor([[2.0, 0.0, 0.0, 0.0]]),
        "future": torch.zeros(1, 3),
        "trajectory": torch.zeros(1, 2, 3),
    }
    labels, future = torch.tensor([0]), torch.zeros(1, 3)
    positions = torch.zeros(1, 4, 3)
    positions[0, 2:, 0] = 0.6  # span means: 0 then 0.6 on x
    base = task_loss(out, labels, future, 1.0, 0.1)
    reg = (0.6 - 0.05) / 6  # one of six coordinates off by 0.6, beta 0.1
    with_traj = task_loss(out, labels, future, 1.0, 0.1, positions, 2.0)
    assert with_traj.item() == pytest.approx(base.item() + 2 * reg)
    assert task_loss(out, labels, future, 1.0, 0.1, positions, 0.0).item() == base.item()
    with pytest.raises(ValueError, match="positions"):
        task_loss(out, labels, future, 1.0, 0.1, None, 2.0)


def test_background_subtraction_removes_the_static_scene_and_keeps_the_moving_ball():
    video = torch.rand(1, 1, 3, 1, 8, 8).expand(1, 1, 3, 6, 8, 8).clone()  # static background
    video[0, 0, :, 2, 4, 4] += 5.0  # the ball, in one frame only
    out = prepare_video(video, subtract_background=True)
    assert out[0, 0, :, 2, 4, 4].min() > 4.0
    out[0, 0, :, :, 4, 4] = 0.0
    assert out.abs().max() < 1e-5, "static pixels survived"
    assert prepare_video(video, subtract_background=False) is video


def test_config_presets_flags_and_resume_rules(tmp_path):
    cfg = build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 3, "lr": 0.01})
    assert cfg.lr == 0.01 and cfg.batch_size == 8  # flag over the tiny preset's recipe
    with pytest.raises(TrainConfigError, match="epochs"):
        build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 0})
    saved = cfg.model_dump(mode="json")
    assert resumed_config(saved, {"epochs": 9, "workers": 0}).epochs == 9
    with pytest.raises(TrainConfigError, match="cannot change batch_size"):
        resumed_config(saved, {"batch_size": 4})


def test_disk_check_refuses_a_folder_without_room_for_two_checkpoints(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from train.trajectory import preflight

    usage = namedtuple("usage", "total used free")
    need = preflight.checkpoint_bytes(10_000_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(need * 2, need, need - 1))
    with pytest.raises(preflight.PreflightError, match="free"):
        preflight.check_disk(tmp_path / "run", 10_000_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(need * 2, 0, need))
    preflight.check_disk(tmp_path / "run", 10_000_000)  # exactly enough: no error
    # resuming: the checkpoints already there are replaced in place, so they count as room
    run = tmp_path / "run"
    run.mkdir()
    for name in ("last.pt", "best.pt"):
        with open(run / name, "wb") as f:
            f.truncate(10_000_000 * 12)  # sparse: a checkpoint's size, no disk
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(need * 2, 0, need - 24 * 10**7))
    preflight.check_disk(run, 10_000_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(need * 2, 0, need - 24 * 10**7 - 1))
    with pytest.raises(preflight.PreflightError, match="free"):
        preflight.check_disk(run, 10_000_000)


def test_position_channels_keep_where_the_ball_is_after_spatial_averaging():
    video = torch.zeros(1, 1, 3, 4, 9, 9)
    video[0, 0, :, 1, 2, 7] = 3.0  # the ball at row 2, column 7 in frame 1
    out = prepare_video(video, subtract_background=True, position_channels=True)
    pooled = out.mean(dim=(-1, -2))[0, 0, :, 1]  # what a global average pool keeps of frame 1
    u, v = pooled[1] / pooled[0], pooled[2] / pooled[0]
    assert u.item() == pytest.approx(7 / 8 * 2 - 1) and v.item() == pytest.approx(2 / 8 * 2 - 1)


def test_downsample_keeps_the_ball_centroid():
    from train.trajectory.inputs import downsample

    frame = torch.zeros(1, 1, 8, 8)
    frame[..., 2:4, 5:7] = 4.0  # a 2x2 ball straddling 2x2 blocks: rows 2-3, columns 5-6
    small = downsample(frame, 2)
    assert small.shape == (1, 1, 4, 4)
    weights = small[0, 0]
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    # centroid in small-pixel units: (2.5, 5.5) / 2 - 0.25 = (1.0, 2.5)
    assert (weights * rows).sum() / weights.sum() == pytest.approx(1.0)
    assert (weights * cols).sum() / weights.sum() == pytest.approx(2.5)
    assert small.sum() * 4 == frame.sum()
    with pytest.raises(ValueError, match="downsample"):
        downsample(torch.zeros(1, 3, 3), 4)


def test_input_pipeline_shrinks_before_normalising_to_the_same_result():
    from train.trajectory.inputs import InputPipeline, downsample

    torch.manual_seed(0)
    video = torch.randint(0, 256, (2, 4, 3, 5, 8, 8), dtype=torch.uint8)
    scale = torch.tensor([0.5, 2.0, 3.0]).view(3, 1, 1, 1)

    def normalize(v):
        return v.float() * scale - 1.0

    pipe = InputPipeline(normalize, subtract_background=True, position_channels=True, downsample=2)
    expected = prepare_video(downsample(normalize(video), 2), True, True)
    out = pipe(video)
    assert out.shape == (2, 4, 3, 5, 4, 4)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    raw = InputPipeline(None, subtract_background=False)(video)
    assert raw is video


def test_per_extractor_settings_of_a_preset():
    ours = build_config({"extractor": "transformer", "data": "d", "out": "o", "epochs": 1})
    other = build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 1})
    assert ours.lr == 3e-4 and other.lr == 1e-3  # configs/train/tiny.yaml per_extractor
    flag = build_config(
        {"extractor": "transformer", "data": "d", "out": "o", "epochs": 1, "lr": 0.1}
    )
    assert flag.lr == 0.1


def test_per_extractor_settings_of_a_config_file(tmp_path):
    """One recipe file for train.parallel's four runs, one extractor's settings apart."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "position_channels: false\n"
        "per_extractor:\n  transformer: {extractor_options: {stem: conv}, lr: 0.0005}\n"
    )
    values = {"data": "d", "out": "o", "epochs": 1}
    ours = build_config({"extractor": "transformer", **values}, recipe)
    other = build_config({"extractor": "i3d", **values}, recipe)
    assert ours.extractor_options == {"stem": "conv"} and ours.lr == 5e-4
    assert other.extractor_options == {} and other.lr == 1e-3 and not other.position_channels
    model = ours.build_model(num_cameras=4, num_classes=4)
    assert model.extractor.extractor_config.stem == "conv"
    recipe.write_text("per_extractor: [transformer]\n")
    with pytest.raises(TrainConfigError, match="recipe.yaml: per_extractor must map"):
        build_config({"extractor": "i3d", **values}, recipe)


def test_the_colour_recipe_gives_the_transformer_alone_the_conv_stem():
    """The medium and hard levels' recipe: tubelet tokens stay at chance there."""
    values = {"data": "d", "out": "o", "epochs": 1}
    ours = build_config({"extractor": "transformer", **values}, "colour")
    assert ours.extractor_options == {"stem": "conv"} and ours.lr == 3e-4
    for name in ("i3d", "slowfast", "magvit"):
        other = build_config({"extractor": name, **values}, "colour")
        assert other.extractor_options == {} and not other.position_channels


def test_extractor_options_reach_the_extractor():
    """Through TrainConfig.build_model, the one way the trainer builds its network."""
    values = {"extractor": "i3d", "data": "d", "out": "o", "epochs": 1}
    default = build_config(values).build_model(num_cameras=4, num_classes=4)
    assert type(default.extractor.readout).__name__ != "GlobalReadout"
    cfg = build_config({**values, "extractor_options": {"readout": "global"}})
    model = cfg.build_model(num_cameras=4, num_classes=4)
    assert type(model.extractor.readout).__name__ == "GlobalReadout"


def test_the_best_epoch_is_the_one_of_lowest_validation_loss():
    best = {"val_loss": 0.5, "val_accuracy": 0.985, "val_future_rmse": 0.45}
    assert improves_on({"loss": 0.4, "accuracy": 0.98, "future_rmse": 0.38}, best)
    assert not improves_on({"loss": 0.6, "accuracy": 0.99, "future_rmse": 0.30}, best)
    assert improves_on({"loss": 9.0, "accuracy": 0.0, "future_rmse": 9.0}, None)
    # an empty split ranks nothing: each epoch replaces the best, so the last is tested
    empty = {"loss": None, "accuracy": None, "future_rmse": None}
    assert improves_on(empty, {"val_loss": None, "val_accuracy": None, "val_future_rmse": None})


def test_ctrl_c_while_saving_a_checkpoint_waits_for_the_file(tmp_path, monkeypatch):
    import signal

    import train.checkpoint as checkpoint

    real_save = checkpoint.save_torch_atomic

    def save_interrupted_halfway(state, path):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C arrives in the middle of the save
        real_save(state, path)

    monkeypatch.setattr(checkpoint, "save_torch_atomic", save_interrupted_halfway)
    path = tmp_path / "last.pt"
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, {"epoch": 3, "weights": torch.ones(1000)})
    assert torch.load(path, weights_only=True)["epoch"] == 3, "the checkpoint was not finished"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_preflight_counts_the_model_the_run_builds():
    """The disk check sizes checkpoints from the same model: trajectory head and options in."""
    from train.trajectory.preflight import count_parameters

    def cfg(**values):
        return build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 1, **values})

    plain = count_parameters(cfg(trajectory_weight=0.0), 4, 4)
    assert count_parameters(cfg(trajectory_weight=3.0), 4, 4) > plain
    assert count_parameters(cfg(trajectory_weight=0.0), 4, 7) > plain  # a wider class head
    options = cfg(trajectory_weight=0.0, extractor_options={"readout": "global"})
    assert count_parameters(options, 4, 4) != plain


def test_a_damaged_dataset_with_ground_truth_is_refused_naming_the_failure(tmp_path):
    """The trainer's quick validation skips the ground-truth group; its error names what
    failed, not the skipped group."""
    from train.trajectory import preflight

    (tmp_path / "gt.yaml").write_text("image_size: 32\nframes: 8\nground_truth: {enabled: true}\n")
    root = tmp_path / "ds"
    args = ["--n", "24", "--out", root, "--workers", "1", "--config", tmp_path / "gt.yaml"]
    assert generate([str(a) for a in [*args, "--quiet"]]) == 0
    (root / "labels" / "sample_0003.json").unlink()
    with pytest.raises(DatasetError) as info:  # damage: exit 1, as a read during training
        preflight.check_dataset(root)
    message = str(info.value)
    assert "failed validation: FAIL" in message and "skip" not in message, message


def test_a_config_file_s_preset_is_the_recipe_it_gets(tmp_path):
    """It was only the label: the file said base, the run got tiny's settings."""
    (tmp_path / "c.yaml").write_text("preset: base\n")
    values = {"extractor": "i3d", "data": "d", "out": "o", "epochs": 1}
    from_file = build_config(values, tmp_path / "c.yaml")
    assert from_file == build_config({**values, "preset": "base"})
    assert from_file != build_config(values)


@pytest.mark.parametrize(
    "line", ["extractor: [magvit]", "extractor: {a: 1}", "preset: 5", "preset: [tiny]"]
)
def test_a_config_file_naming_no_extractor_or_preset_is_one_line(tmp_path, line):
    """Both are looked up before validation: a list or a number was a traceback."""
    (tmp_path / "c.yaml").write_text(line + "\n")
    with pytest.raises(TrainConfigError, match=r"c\.yaml: (extractor|preset) must be a name"):
        build_config({"data": "d", "out": "o", "epochs": 1}, tmp_path / "c.yaml")


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "{}\n", "null\n"])
def test_a_config_file_with_no_settings_is_refused(tmp_path, text):
    """It was taken for the preset alone, new run or resume; train.jepa and train.saliency
    refuse an empty config."""
    (tmp_path / "c.yaml").write_text(text)
    values = {"extractor": "i3d", "data": "d", "out": "o", "epochs": 1}
    with pytest.raises(TrainConfigError, match=r"c\.yaml holds no settings"):
        build_config(values, tmp_path / "c.yaml")
    saved = build_config(values).model_dump(mode="json")
    with pytest.raises(TrainConfigError, match=r"c\.yaml holds no settings"):
        refuse_file_changes(saved, tmp_path / "c.yaml")


def test_a_data_run_s_config_from_before_null_render_settings_still_loads(tmp_path):
    """It stored the --render settings' defaults, which --config then refused for --data."""
    (tmp_path / "c.yaml").write_text(
        "extractor: i3d\ndata: d\nepochs: 1\nrender: null\nrender_seed: 0\n"
        "epoch_samples: 1600\neval_samples: 200\n"
    )
    assert build_config({"out": "o"}, tmp_path / "c.yaml").epoch_samples is None
    (tmp_path / "c.yaml").write_text("extractor: i3d\ndata: d\nepochs: 1\nepoch_samples: 8\n")
    with pytest.raises(TrainConfigError, match="for samples rendered on the fly"):
        build_config({"out": "o"}, tmp_path / "c.yaml")


@pytest.mark.parametrize("preset", ["colour", "huge"])
def test_an_unknown_preset_names_the_two_there_are(preset):
    """``colour`` (a --config file beside the presets) was listed as a known preset, then
    refused by validation as neither tiny nor base."""
    values = {"extractor": "i3d", "data": "d", "out": "o", "epochs": 1, "preset": preset}
    with pytest.raises(TrainConfigError) as caught:
        build_config(values)
    assert str(caught.value) == (
        f"unknown training preset {preset!r} (known: tiny, base; other shipped configs go "
        "to --config)"
    )
