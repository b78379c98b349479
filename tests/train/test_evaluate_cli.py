"""python -m train.evaluate: a run's weights scored on its own test split and on other data."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from generator.__main__ import main as generate
from train.__main__ import main as train
from train.checkpoint import load_checkpoint, save_checkpoint
from train.evaluate import main as evaluate

FAST = ["--workers", "0", "--threads", "1", "--quiet"]


def make_dataset(where: Path, name: str, config: str, seed: int = 0, n: int = 48) -> Path:
    (where / f"{name}.yaml").write_text(config)
    root = where / name
    args = ["--n", n, "--out", root, "--workers", 1, "--config", where / f"{name}.yaml"]
    assert generate([str(a) for a in [*args, "--seed", seed, "--quiet"]]) == 0
    return root


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "i3d"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "2", "--out", str(out)]
    assert train([*argv, *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def other(dataset) -> Path:
    """Another seed of the run's dataset's config: the same classes and clip shape."""
    return make_dataset(dataset.parent, "other", "image_size: 32\nframes: 8\n", seed=5, n=40)


def score(*argv) -> int:
    try:
        return evaluate([str(a) for a in [*argv, "--workers", 0, "--quiet"]])
    except SystemExit as e:  # argparse
        return e.code


def record(run: Path, data: Path, split: str, checkpoint: str = "best") -> dict:
    stem = f"{data.name}.{split}" + ("" if checkpoint == "best" else f".{checkpoint}")
    return json.loads((run / "evaluations" / f"{stem}.json").read_text())


def assert_clips_agree(run: Path, got: dict) -> None:
    """The clips file a record names holds the clips it scored (its confusion and RMSE)."""
    from train.trajectory.clips import read_clips

    path = run / "evaluations" / got["clips"]
    clips = read_clips(path)
    # the name's hash is the file's, for anyone to check (it was the rows' in-memory bytes)
    assert path.name.split(".")[-3] == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    confusion = [[0] * len(got["classes"]) for _ in got["classes"]]
    for y, p in zip(clips["label"], clips["predicted"], strict=True):
        confusion[y][p] += 1
    assert confusion == got["confusion"]
    rmse = float((clips["future_error"] ** 2).mean() ** 0.5)
    assert rmse == pytest.approx(got["future_rmse"], rel=1e-4)


def test_own_dataset_defaults_to_the_test_split_and_repeats_the_runs_test_scores(run, dataset):
    assert score(run, "--data", dataset) == 0
    got = record(run, dataset, "test")
    results = json.loads((run / "results.json").read_text())
    assert got["split"] == "test" and got["samples"] == results["split_sizes"]["test"]
    assert got["epoch"] == results["best_epoch"]
    assert got["confusion"] == results["test_confusion"]
    assert got["future_rmse"] == pytest.approx(results["test_future_rmse"], rel=1e-5)


def test_own_dataset_is_known_by_its_samples_not_its_path(run, dataset, tmp_path, in_tmp_path):
    """A copy (or a relative --data from another folder) still deals the run's test split."""
    copy = tmp_path / "moved"
    shutil.copytree(dataset, copy)
    assert score(run, "--data", "moved") == 0
    got = json.loads((run / "evaluations" / "moved.test.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert got["split"] == "test" and got["confusion"] == results["test_confusion"]
    assert got["shares_training_samples"] is False


def test_another_dataset_is_scored_whole(run, other):
    assert score(run, "--data", other) == 0
    got = record(run, other, "all")
    assert got["samples"] == 40 and sum(map(sum, got["confusion"])) == 40
    assert got["data"] == str(other) and got["checkpoint"] == "best"
    assert 0.0 <= got["accuracy"] <= 1.0 and got["future_rmse_fraction"] > 0
    assert score(run, "--data", other, "--split", "val", "--checkpoint", "last") == 0
    val = record(run, other, "val", "last")
    assert 0 < val["samples"] < 40 and val["checkpoint"] == "last"


def test_checkpoint_carries_the_training_inputs(run, dataset):
    from generator.dataformat.dataset import TrajectoryDataset

    inputs = load_checkpoint(run / "best.pt")["inputs"]
    train_ds = TrajectoryDataset(dataset, "train")
    assert torch.equal(inputs["mean"], train_ds.mean) and torch.equal(inputs["std"], train_ds.std)
    assert torch.equal(inputs["scene_bounds"], train_ds.scene_bounds)
    assert inputs["classes"] == ["Linear", "Circular", "Helical", "Parabolic"]
    assert inputs["video_shape"][:2] == [4, 8]


def test_an_older_checkpoint_is_completed_from_the_training_data(run, other, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    state = load_checkpoint(run / "best.pt")
    del state["inputs"]
    save_checkpoint(old / "best.pt", state)
    assert score(run, "--data", other) == 0 and score(old, "--data", other) == 0
    assert record(old, other, "all")["confusion"] == record(run, other, "all")["confusion"]


def test_an_older_checkpoint_without_its_training_data_is_one_line(run, other, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    state = load_checkpoint(run / "best.pt")
    del state["inputs"]
    state["config"]["data"] = str(tmp_path / "gone")
    save_checkpoint(old / "best.pt", state)
    assert score(old, "--data", other) == 2
    err = capsys.readouterr().err.strip()
    assert "predates stored input statistics" in err and len(err.splitlines()) == 1, err


def test_a_dataset_of_other_classes_or_shape_is_refused(run, dataset, capsys):
    """Another frame size too: a run trained on 32 px was scored on 48 px without a word."""
    five = make_dataset(
        dataset.parent, "five", "image_size: 32\nframes: 8\n"
        "classes: [Linear, Circular, Helical, Parabolic, Bouncing]\n",
    )  # fmt: skip
    longer = make_dataset(dataset.parent, "longer", "image_size: 32\nframes: 12\n")
    larger = make_dataset(dataset.parent, "larger", "image_size: 48\nframes: 8\n", n=20)
    for data, expected in (
        (five, "classes"),
        (longer, "12 frames a clip"),
        (larger, "frames of 48x48 pixels; i3d was trained on 32x32"),
    ):
        assert score(run, "--data", data) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
        assert not (run / "evaluations" / f"{data.name}.all.json").exists()


@pytest.mark.parametrize(
    ("damage", "code", "expected"),
    [
        (lambda run: (run / "best.pt").write_bytes(b""), 1, "empty"),
        (lambda run: (run / "best.pt").write_bytes(b"PK\x03\x04 truncated"), 1, "damaged"),
        (lambda run: (run / "best.pt").unlink(), 1, "missing"),
    ],
)
def test_a_damaged_checkpoint_is_one_line(run, other, tmp_path, capsys, damage, code, expected):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "best.pt").write_bytes((run / "best.pt").read_bytes())
    damage(copy)
    assert score(copy, "--data", other) == code
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err


def test_bad_input_is_one_line_exit_2(run, other, tmp_path, capsys):
    fifo = tmp_path / "fifo"

    os.mkfifo(fifo)
    for argv, expected in (
        ([tmp_path / "nope", "--data", other], "does not exist"),
        ([run, "--data", tmp_path / "nope"], "does not exist"),
        ([run, "--data", fifo], "is not a folder"),
        ([fifo, "--data", other], "run folder " + str(fifo) + " is not a folder"),
        ([run, "--data", other, "--split", "holdout"], "--split"),
        ([run, "--data", other, "--batch-size", "0"], "--batch-size"),
        ([run, "--data", other, "--workers", "5000"], "--workers: must be 0..1024"),
        ([run], "--data"),
    ):
        assert score(*argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_a_file_where_the_evaluations_folder_should_be_is_one_line(
    run, other, tmp_path, capsys, kind
):
    """A dangling link was "[Errno 17] File exists", exit 1."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    if kind == "file":
        (copy / "evaluations").write_text("not a folder")
    else:
        (copy / "evaluations").symlink_to(tmp_path / "gone")
    assert score(copy, "--data", other) == 2
    err = capsys.readouterr().err.strip()
    assert "evaluations is not a folder" in err and len(err.splitlines()) == 1, err
    assert os.path.lexists(copy / "evaluations") and not (tmp_path / "gone").exists()


def test_a_dataset_of_a_long_folder_name_is_scored_or_refused_in_one_line(
    run, other, tmp_path, capsys
):
    """A 222-character name, whose clips file's name fits, was "[Errno 36] File name too long:
    '.../evaluations/.tmp-hhh....clips.csv.PID'"; one too long for it was Python's raw errno."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    data = tmp_path / ("h" * 222)
    shutil.copytree(other, data)
    assert score(copy, "--data", data) == 0, capsys.readouterr().err
    got = record(copy, data, "all")
    assert len(got["clips"]) == 249 and (copy / "evaluations" / got["clips"]).is_file()
    data = data.rename(tmp_path / ("h" * 240))
    assert score(copy, "--data", data) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "[Errno" not in err and ".tmp-" not in err, err
    clips = copy / "evaluations" / f"{data.name}.all."
    assert err.startswith(f"python -m train.evaluate: error: File name too long: {clips}"), err


def test_a_dataset_holding_training_samples_is_flagged(run, dataset, other, capsys):
    """The run's seed and config again, even a larger set of them, holds its training samples."""
    bigger = make_dataset(dataset.parent, "bigger", "image_size: 32\nframes: 8\n", seed=0, n=60)
    for data, split, shares in (
        (bigger, "all", True),
        (dataset, "all", True),
        (dataset, "test", False),
        (bigger, "test", False),
        (other, "all", False),
    ):
        assert evaluate([str(run), "--data", str(data), "--split", split, "--workers", "0"]) == 0
        assert record(run, data, split)["shares_training_samples"] is shares, (data.name, split)
        assert ("not a held-out score" in capsys.readouterr().err) is shares, (data.name, split)


def test_weights_that_do_not_fit_the_model_are_one_line(run, other, tmp_path, capsys):
    """A checkpoint whose config names another extractor than its weights were trained as."""
    odd = tmp_path / "odd"
    odd.mkdir()
    state = load_checkpoint(run / "best.pt")
    state["config"]["extractor"] = "magvit"
    save_checkpoint(odd / "best.pt", state)
    assert score(odd, "--data", other) == 2
    err = capsys.readouterr().err.strip()
    assert "weights do not fit magvit" in err and len(err.splitlines()) == 1, err


def test_the_clips_file_holds_every_clip_and_agrees_with_the_record(run, other):
    from generator.dataformat.dataset import load_sample
    from train.trajectory.clips import read_clips

    assert score(run, "--data", other) == 0
    got = record(run, other, "all")
    clips = read_clips(run / "evaluations" / got["clips"])
    assert clips["index"].tolist() == list(range(40))
    assert clips["label"].tolist() == [load_sample(other, i)[1]["class_label"] for i in range(40)]
    right = clips["predicted"] == clips["label"]
    assert right.mean() == pytest.approx(got["accuracy"])
    confusion = [[0] * 4 for _ in range(4)]
    for y, p in zip(clips["label"], clips["predicted"], strict=True):
        confusion[y][p] += 1
    assert confusion == got["confusion"]
    rmse = float((clips["future_error"] ** 2).mean() ** 0.5)
    assert rmse == pytest.approx(got["future_rmse"], rel=1e-4)


def test_runs_scored_together_are_compared_clip_by_clip(run, dataset, other, tmp_path, capsys):
    from train.trajectory.clips import mcnemar_p, read_clips

    second = tmp_path / "second"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", str(second)]
    assert train([*argv, "--seed", "1", *FAST]) == 0
    capsys.readouterr()
    assert evaluate([str(run), str(second), "--data", str(other), "--workers", "0"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    a, b = record(run, other, "all"), record(second, other, "all")
    if a["accuracy"] < b["accuracy"]:
        a, b = b, a
    ca, cb = (read_clips(Path(r["run"]) / "evaluations" / r["clips"]) for r in (a, b))
    ra, rb = ca["predicted"] == ca["label"], cb["predicted"] == cb["label"]
    a_only, b_only = int((ra & ~rb).sum()), int((rb & ~ra).sum())
    assert line.startswith(f"i3d ({a['run']}) over i3d ({b['run']}): ")
    assert f"{100 * (a['accuracy'] - b['accuracy']):+.1f} pts on 40 clips" in line
    assert f"right only in one {a_only} against {b_only}" in line
    assert f"McNemar p {mcnemar_p(a_only, b_only):.3g}" in line


def test_data_given_as_dot_is_named_by_its_folder(run, other, monkeypatch):
    monkeypatch.chdir(other)
    assert score(run, "--data", ".") == 0
    got = record(run, other, "all")
    assert got["clips"].startswith(f"{other.name}.all.") and got["samples"] == 40
    assert not list((run / "evaluations").glob(".all*"))


def test_each_checkpoint_and_dataset_keeps_its_own_record(run, other, tmp_path, capsys):
    """--checkpoint last replaced best.pt's record, and a dataset of the same folder name
    elsewhere replaced the first one's: a researcher's saved scores vanished."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    assert score(copy, "--data", other) == 0
    assert score(copy, "--data", other, "--checkpoint", "last") == 0
    best, last = record(copy, other, "all"), record(copy, other, "all", "last")
    assert (best["checkpoint"], last["checkpoint"]) == ("best", "last")
    assert best["clips"] != last["clips"]
    for got in (best, last):
        assert_clips_agree(copy, got)
    namesake = make_dataset(tmp_path, other.name, "image_size: 32\nframes: 8\n", seed=9, n=20)
    kept = {p.name: p.read_bytes() for p in (copy / "evaluations").iterdir()}
    capsys.readouterr()
    assert score(copy, "--data", namesake) == 2
    err = capsys.readouterr().err.strip()
    assert "holds the scores on another dataset named other" in err, err
    assert len(err.splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in (copy / "evaluations").iterdir()} == kept
    moved = tmp_path / "elsewhere" / other.name  # the same samples in another place: the same
    shutil.copytree(other, moved)
    assert score(copy, "--data", moved) == 0
    assert record(copy, other, "all")["data"] == str(moved)


def test_a_stop_before_the_record_leaves_the_old_record_and_its_clips(
    run, other, tmp_path, monkeypatch
):
    """The clips file was written before the record, under the name the old record gave
    it: a stop between the two left a record describing other clips."""
    import train.trajectory.evaluate_cli as evaluate_cli

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    assert score(copy, "--data", other) == 0
    before = record(copy, other, "all")
    shutil.copyfile(copy / "last.pt", copy / "best.pt")  # other weights, other clips

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_cli, "write_json_atomic", stopped)
    assert score(copy, "--data", other) == 130
    monkeypatch.undo()
    assert record(copy, other, "all") == before
    assert_clips_agree(copy, before)
    assert score(copy, "--data", other) == 0
    after = record(copy, other, "all")
    assert after["epoch"] == 2 and after["clips"] != before["clips"]
    assert_clips_agree(copy, after)
    assert not (copy / "evaluations" / before["clips"]).exists(), "the replaced clips stay"


def test_a_second_evaluation_of_the_run_at_once_is_one_line(
    run, other, tmp_path, capsys, monkeypatch
):
    """Two at once wrote their clips and records in turn, one's record over the other's
    clips; then the second was refused, but only after all its scoring."""
    import train.trajectory.evaluate as scoring
    from trajkit.lock import FolderLock

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "evaluations").mkdir(exist_ok=True)
    scored = []
    monkeypatch.setattr(scoring, "evaluate", lambda *a, **k: scored.append(1) or {})
    with FolderLock(copy / "evaluations" / ".lock"):
        assert score(copy, "--data", other, "--checkpoint", "last") == 2
    assert scored == [], "it scored before finding the folder taken"
    err = capsys.readouterr().err.strip()
    assert "is being written by process" in err and len(err.splitlines()) == 1, err
    assert not (copy / "evaluations" / f"{other.name}.all.last.json").exists()


def test_a_scoring_that_fails_leaves_no_evaluations_folder(run, other, tmp_path, capsys):
    """The folder (and its lock) is made before the scoring, and removed if nothing came of it."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    (copy / "best.pt").write_bytes(b"damaged")
    assert score(copy, "--data", other) == 1
    assert "damaged" in capsys.readouterr().err
    assert not (copy / "evaluations").exists()


def test_a_dataset_below_the_training_minimum_is_scored(run, dataset, capsys):
    """12 held-out clips were refused as 'the splits need at least 20', even for --split all;
    a split the run's deal leaves empty is said as such."""
    small = make_dataset(dataset.parent, "small", "image_size: 32\nframes: 8\n", seed=9, n=12)
    assert score(run, "--data", small) == 0
    assert record(run, small, "all")["samples"] == 12
    assert score(run, "--data", small, "--split", "val") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{small} has no samples in the val split as {run} deals it (12 in all); "
        "--split all scores every one"
    ), err
    assert len(err.splitlines()) == 1, err


def test_hostile_records_are_one_line_and_delete_nothing_of_another(run, other, tmp_path, capsys):
    """A record naming another record's clips file had that file deleted; an old-format record
    whose data held a NUL was a traceback; a JSON object of no record was called another
    dataset's scores."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    assert score(copy, "--data", other, "--checkpoint", "last") == 0
    last = record(copy, other, "all", "last")
    mine = copy / "evaluations" / "other.all.json"
    mine.write_text(json.dumps({**last, "checkpoint": "best", "clips": last["clips"]}))
    assert score(copy, "--data", other) == 0
    assert (copy / "evaluations" / last["clips"]).is_file(), "another record's clips deleted"
    capsys.readouterr()
    for hostile, said in (
        ({"extractor": "i3d", "checkpoint": "best", "data": "a\x00b"}, "another dataset"),
        ({"a": 1}, "is not a record of ours"),
    ):
        mine.write_text(json.dumps(hostile))
        assert score(copy, "--data", other) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err


def fresh_copy(run: Path, where: Path) -> Path:
    """The run folder at ``where``, without the records earlier tests left in it."""
    shutil.copytree(run, where)
    shutil.rmtree(where / "evaluations", ignore_errors=True)
    return where


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_clip_with_non_finite_outputs_counts_as_no_class():
    """argmax over NaN logits is class 0: a model of NaN weights scored chance accuracy."""
    from train.distributed import DistContext
    from train.trajectory.evaluate import FutureScale, evaluate

    class HalfNaN(torch.nn.Module):
        def forward(self, video):
            logits = torch.zeros(len(video), 4)
            logits[:, 2] = 1.0  # class 2 for every clip, NaN for every other one
            logits[::2] = float("nan")
            return {"logits": logits, "future": torch.zeros(len(video), 3)}

    batch = {
        "video": torch.zeros(4, 1),
        "label": torch.tensor([0, 1, 2, 2]),
        "future_position": torch.zeros(4, 3),
    }
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    scale = FutureScale(torch.tensor([[-1.0, 1.0]] * 3))
    m = evaluate(HalfNaN(), [batch], scale, ctx, num_classes=4, future_weight=1.0, beta=0.1)
    assert m["nonfinite_clips"] == 2 and m["samples"] == 4
    assert m["accuracy"] is None and m["per_class_accuracy"] == [None] * 4
    assert m["confusion"] == [[0] * 4, [0, 0, 1, 0], [0, 0, 1, 0], [0] * 4]


@pytest.mark.parametrize("output", [1e30, 3e38])
def test_a_huge_finite_prediction_has_a_finite_rmse(output):
    """A predicted position of 1e30 squared to infinity in float32: a future RMSE of null.
    3e38 (normalised) in a box of side 10 overflowed float32 in world units, so its clips
    counted as non-finite outputs though the model's were finite."""
    from train.distributed import DistContext
    from train.trajectory.evaluate import FutureScale, evaluate

    class Huge(torch.nn.Module):
        def forward(self, video):
            return {
                "logits": torch.zeros(len(video), 4),
                "future": torch.full((len(video), 3), output),
            }

    batch = {
        "video": torch.zeros(2, 1),
        "label": torch.tensor([0, 1]),
        "future_position": torch.zeros(2, 3),
        "index": torch.tensor([0, 1]),
    }
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    scale = FutureScale(torch.tensor([[-5.0, 5.0]] * 3))  # world = 5 x normalised
    clips: list[torch.Tensor] = []
    m = evaluate(
        Huge(), [batch], scale, ctx, num_classes=4, future_weight=1.0, beta=0.1, clips=clips
    )
    world = 5 * float(torch.tensor(output))  # the float32 output, in world units
    assert m["nonfinite_clips"] == 0 and m["accuracy"] == 0.5
    assert m["future_rmse"] == pytest.approx(3**0.5 * world)
    assert torch.cat(clips)[:, 3].tolist() == pytest.approx([3**0.5 * world] * 2)


@pytest.mark.parametrize("weights", ["nan", "overflowing"])
def test_weights_that_give_non_finite_outputs_are_refused(run, other, tmp_path, capsys, weights):
    """Weights of NaN (or finite ones so large the outputs overflow, as an lr of 1e30 leaves
    them) were scored 0.25 accuracy, exit 0, their clips all "class 0"."""
    copy = fresh_copy(run, tmp_path / "run")
    state = load_checkpoint(copy / "best.pt")
    for value in state["model"].values():
        if value.is_floating_point() and weights == "nan":
            value.fill_(float("nan"))
        elif value.is_floating_point():
            value.mul_(1e30)
    save_checkpoint(copy / "best.pt", state)
    assert score(copy, "--data", other) == 1
    err = one_error_line(capsys)
    assert f"{copy / 'best.pt'} gives non-finite outputs (NaN or infinity) on 40 of 40 clips" in err
    assert not (copy / "evaluations").exists()


def test_an_epoch_whose_outputs_diverged_stops_the_run(dataset, tmp_path, capsys, monkeypatch):
    """The trainer's validation and test share ``evaluate``: an lr of 1e30 (refused now) left
    weights whose outputs are NaN after a step whose loss was still finite; the run saved
    them as its best and scored val accuracy 0.333 and test 0.143 in results.json, exit 0.
    Here the optimiser's one step leaves the weights NaN."""
    step = torch.optim.AdamW.step

    def diverging(self, *args, **kwargs):
        loss = step(self, *args, **kwargs)
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))
        return loss

    monkeypatch.setattr(torch.optim.AdamW, "step", diverging)
    out = tmp_path / "diverged"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", str(out)]
    assert train([*argv, "--batch-size", "64", *FAST]) == 1
    err = one_error_line(capsys)
    assert "validation clips at epoch 1: stopped; no checkpoint was written yet" in err, err
    assert not (out / "results.json").exists() and not (out / "best.pt").exists()


def test_a_dataset_of_other_targets_is_refused(run, dataset, capsys):
    """A run of horizon 5 was scored on clips of horizon 10 (its future position another
    frame), or of another fps, without a word."""
    cases = (
        ("horizon10", "horizon: 10\n", "has horizon 10; i3d was trained on horizon 5"),
        ("fps15", "fps: 15\n", "has fps 15.0; i3d was trained on fps 30.0"),
    )
    for name, change, expected in cases:
        data = make_dataset(dataset.parent, name, "image_size: 32\nframes: 8\n" + change, n=12)
        assert score(run, "--data", data) == 2
        err = one_error_line(capsys)
        assert f"{data} {expected} (its future position is another target)" in err, err
        assert not (run / "evaluations" / f"{name}.all.json").exists()


def test_a_harder_look_with_the_same_targets_is_scored(run, dataset):
    """Distractors, occluders, noise, lighting drift and a wider scene box change how the
    clips look and where the ball goes, not what the targets mean (predictions are turned
    back into world units by the run's own scale): how a model copes is a fair question."""
    harder = "appearance: {noise_std: 8.0}\ndistractors: {count: 2}\noccluders: {count: 2}\n"
    harder += "scene: {x: {lo: -3, hi: 3}, y: {lo: -3, hi: 3}, z: {lo: 0.35, hi: 3}}\n"
    look = "image_size: 32\nframes: 8\nlighting: {drift: 0.3}\n" + harder
    cluttered = make_dataset(dataset.parent, "cluttered", look, n=12)
    assert score(run, "--data", cluttered) == 0
    assert record(run, cluttered, "all")["samples"] == 12


def damaged(state: dict, where: str, value) -> dict:
    """``state`` with ``value`` at ``where`` ("epoch", or "inputs.mean": one level down)."""
    key, _, inner = where.partition(".")
    if inner:
        state[key] = {**state[key], inner: value}
    else:
        state[key] = value
    return state


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("epoch", "two", "epoch is not a whole number above 0: 'two'"),
        ("epoch", -1, "epoch is not a whole number above 0: -1"),
        ("model", torch.zeros(3), "model is not a state dict: a Tensor"),
        ("model", {1: torch.zeros(3)}, "model is not a state dict: 1 holds a Tensor"),
        ("config", ["i3d"], "config is not a mapping: a list"),
        ("inputs", "x", "inputs: Input should be a valid dictionary"),
        ("inputs.mean", torch.zeros(4), "inputs: mean: torch.float32 of shape (4,), not floats"),
        ("inputs.scene_bounds", torch.full((3, 2), float("nan")), "scene_bounds: holds NaN"),
        ("inputs.classes", [1, 2, 3, 4], "inputs: classes.0: Input should be a valid string"),
        ("inputs.video_shape", [4, 8], "inputs: video_shape: List should have at least 5"),
        ("inputs.generator_config", "x", "generator_config: Input should be a valid dict"),
    ],
)
def test_damaged_checkpoint_contents_are_one_line(
    run, other, tmp_path, capsys, where, value, expected
):
    """An epoch of "two" or a tensor for the model was a traceback; a negative epoch was
    recorded, classes of numbers said to be another dataset's, a NaN scene box scored."""
    copy = tmp_path / "copy"
    copy.mkdir()
    save_checkpoint(copy / "best.pt", damaged(load_checkpoint(run / "best.pt"), where, value))
    assert score(copy, "--data", other) == 1
    err = one_error_line(capsys)
    assert f"{copy / 'best.pt'} is not a training checkpoint (" in err and expected in err, err
    assert sorted(p.name for p in copy.iterdir()) == ["best.pt"]


def test_a_checkpoint_of_another_run_in_the_folder_is_refused(run, other, tmp_path, capsys):
    """The folder's config.yaml said transformer, its best.pt i3d: scored as i3d, recorded
    in the transformer's folder."""
    import yaml

    copy = fresh_copy(run, tmp_path / "run")
    config = yaml.safe_load((copy / "config.yaml").read_text())
    (copy / "config.yaml").write_text(yaml.safe_dump({**config, "extractor": "transformer"}))
    assert score(copy, "--data", other) == 2
    err = one_error_line(capsys)
    assert (
        f"{copy / 'config.yaml'} and {copy / 'best.pt'} are of different runs (extractor "
        "'transformer' and 'i3d'): the folder and its checkpoint disagree"
    ) in err
    assert not (copy / "evaluations").exists()


def test_a_resumed_runs_config_is_its_checkpoints(run, other, tmp_path):
    """A resume may change how the run executes (epochs, threads, workers, quiet, its
    dataset's path): its config.yaml then differs from an earlier best.pt's in those only."""
    import yaml

    copy = fresh_copy(run, tmp_path / "run")
    config = yaml.safe_load((copy / "config.yaml").read_text())
    resumed = {"epochs": 9, "threads": 2, "workers": 3, "quiet": False, "data": "elsewhere"}
    (copy / "config.yaml").write_text(yaml.safe_dump({**config, **resumed}))
    assert score(copy, "--data", other) == 0


@pytest.mark.parametrize("kind", ["fifo", "list"])
def test_a_run_config_that_does_not_read_is_one_line(run, other, tmp_path, capsys, kind):
    """A FIFO would block the read; either way the folder's run is unknown."""
    copy = fresh_copy(run, tmp_path / "run")
    (copy / "config.yaml").unlink()
    if kind == "fifo":
        os.mkfifo(copy / "config.yaml")
    else:
        (copy / "config.yaml").write_text("[i3d]\n")
    assert score(copy, "--data", other) == 2
    said = "is not a regular file" if kind == "fifo" else "must be a YAML mapping"
    assert f"config {copy / 'config.yaml'} {said}" in one_error_line(capsys)


def test_runs_scored_on_other_splits_are_told_how_to_compare(run, dataset, tmp_path, capsys):
    """--data that is one run's own dataset scores it on its test split, the other on all:
    the pair was "not compared" with no word of how to compare it."""
    copy = fresh_copy(run, tmp_path / "run")
    state = load_checkpoint(copy / "best.pt")
    state["inputs"]["seed"] = 12345  # trained on another seed: the dataset is not its own
    save_checkpoint(copy / "best.pt", state)
    assert evaluate([str(copy), str(run), "--data", str(dataset), "--workers", "0"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "not compared (the two runs were not scored on the same clips: " in line, line
    assert ": all and test)" in line or ": test and all)" in line, line
    assert line.endswith("; --split all scores both on every clip"), line
    argv = [str(copy), str(run), "--data", str(dataset), "--split", "all", "--workers", "0"]
    assert evaluate(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert " pts on 48 clips, right only in one 0 against 0, McNemar p 1" in line, line


def test_a_stored_horizon_that_is_no_number_is_one_line(run, other, tmp_path, capsys):
    """A tensor compared with the dataset's horizon was "Boolean value of Tensor with more
    than one value is ambiguous"."""
    copy = tmp_path / "copy"
    copy.mkdir()
    state = load_checkpoint(run / "best.pt")
    state["inputs"]["generator_config"]["horizon"] = torch.zeros(2)
    save_checkpoint(copy / "best.pt", state)
    assert score(copy, "--data", other) == 2
    err = one_error_line(capsys)
    assert f"{other} has horizon 5; i3d was trained on horizon tensor([0., 0.])" in err, err
