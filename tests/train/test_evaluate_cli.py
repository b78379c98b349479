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
