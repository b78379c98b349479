"""benchmarks/bench_train.py's datasets and --reuse: a trained round is taken, not trained
again, and its runs are scored on a held-out set they were not scored on yet; a dataset
folder or a score record is taken only when it holds the data its level asks for."""

import argparse
import json
import os
import shutil
import sys

import pytest
import yaml

from generator.__main__ import main as generate
from generator.dataformat.metadata import dataset_identity
from train.trajectory.evaluate_cli import evaluations_locked
from trajkit.lock import LockedError

LEVEL = "frames: 4\nhorizon: 1\nimage_size: 16\ncameras: {azimuths_deg: [20.0], elevations_deg: [30.0]}\n"
TRAIN, HELD_OUT = "train_hard_s3_4", "eval_hard_s1000_4"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny "hard" level's config and its datasets as the bench names them: seed 3 and
    seed 1000, 4 samples each (seconds to make)."""
    where = tmp_path_factory.mktemp("bench_level")
    (where / "configs").mkdir()
    (where / "configs" / "hard.yaml").write_text(LEVEL)
    for name, seed in ((TRAIN, 3), (HELD_OUT, 1000)):
        args = ["--n", "4", "--seed", str(seed), "--out", str(where / name), "--workers", "1"]
        assert generate([*args, "--config", str(where / "configs" / "hard.yaml"), "--quiet"]) == 0
    return where


@pytest.fixture
def level(bench, made, tmp_path, monkeypatch):
    """``tmp_path`` holding a copy of the tiny level (``configs/hard.yaml``, the bench's
    config of "hard") and its two datasets."""
    shutil.copytree(made, tmp_path, dirs_exist_ok=True)
    monkeypatch.setattr(bench, "CONFIGS", tmp_path / "configs")
    return tmp_path


def meta_of(folder):
    return json.loads((folder / "metadata.json").read_text())


def held_out_of(bench, folder):
    return bench.HeldOut(folder, meta_of(folder))


def trained_round(tmp_path, names=("i3d", "magvit"), scored_on=None, dataset=None, trained_on=None):
    """A round of ``names`` trained on hard seed 3 (``TRAIN``) for 8 epochs from training
    seed 1, each run's results.json naming ``trained_on`` (default: ``TRAIN``'s identity),
    and scored on ``scored_on`` (a held-out folder) if given, its record naming ``dataset``
    (default: that folder's identity)."""
    data = tmp_path / TRAIN
    out = tmp_path / "runs"
    results = {"dataset": trained_on or dataset_identity(meta_of(data))}
    for name in names:
        run = out / "hard_s3_t1" / name
        (run / "evaluations").mkdir(parents=True)
        config = {"extractor": name, "data": str(data), "epochs": 8, "seed": 1}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        (run / "results.json").write_text(json.dumps(results))
        (run / "best.pt").write_bytes(b"weights")
        if scored_on is not None:
            identity = dataset or dataset_identity(meta_of(scored_on))
            record = {"extractor": name, "data": str(scored_on), "accuracy": 0.5}
            record["dataset"] = identity
            (run / "evaluations" / f"{scored_on.name}.all.json").write_text(json.dumps(record))
    args = argparse.Namespace(
        n=4, epochs=8, reuse=True, out=out, data_root=tmp_path, extractors=list(names)
    )
    return data, out, args


def evaluating(tmp_path, held_out, commands):
    """A stand-in for ``bench.run``: what train.evaluate writes for each run it is given."""

    def evaluate(cmd):
        commands.append(cmd)
        if "train.evaluate" in cmd:
            identity = dataset_identity(meta_of(held_out))
            for path in cmd[cmd.index("train.evaluate") + 1 : cmd.index("--data")]:
                record = {"extractor": path.rsplit("/", 1)[1], "data": str(held_out)}
                record |= {"dataset": identity, "accuracy": 0.7}
                (tmp_path / path / "evaluations" / f"{held_out.name}.all.json").write_text(
                    json.dumps(record)
                )
        return 0

    return evaluate


def test_a_scored_round_is_read_not_trained(bench, level, monkeypatch):
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out)
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    records, minutes, classes = bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    assert [r["extractor"] for r in records] == ["i3d", "magvit"] and minutes is None
    assert classes == meta_of(data)["classes"] and commands == []


def test_a_trained_round_is_scored_on_a_new_held_out_set_without_training(
    bench, level, monkeypatch
):
    """--eval-seed 2000 on rounds trained and scored on seed 1000: the runs are scored on
    the fresh clips; training them again took 50 minutes a round on 2 cores."""
    data, out, args = trained_round(level, scored_on=level / HELD_OUT)
    fresh = level / "eval_hard_s2000_4"
    shutil.copytree(level / HELD_OUT, fresh)  # its identity is the seed 1000 set's: a stand-in
    commands = []
    monkeypatch.setattr(bench, "run", evaluating(level, fresh, commands))
    records, minutes, _ = bench.round_of("hard", 3, 1, args, held_out_of(bench, fresh))
    assert [cmd[2] for cmd in commands] == ["train.evaluate"]  # no train.parallel
    assert [r["accuracy"] for r in records] == [0.7, 0.7] and minutes is None
    assert (out / "hard_s3_t1" / "i3d" / "best.pt").read_bytes() == b"weights"


def test_a_round_that_differs_or_did_not_finish_is_trained_again(bench, level, monkeypatch):
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out)
    found = bench.trained_round
    assert found(out / "hard_s3_t1", ["i3d"], data, 8, 1) == [out / "hard_s3_t1" / "i3d"]
    assert found(out / "hard_s3_t1", ["i3d"], data, 4, 1) is None  # other epochs
    assert found(out / "hard_s3_t1", ["i3d"], data, 8, 0) is None  # other training seed
    assert found(out / "hard_s3_t1", ["i3d", "slowfast"], data, 8, 1) is None  # a run missing
    (out / "hard_s3_t1" / "i3d" / "results.json").unlink()  # stopped before it finished
    assert found(out / "hard_s3_t1", ["i3d"], data, 8, 1) is None
    (out / "hard_s3_t1" / "magvit" / "config.yaml").write_text("[unclosed")
    assert found(out / "hard_s3_t1", ["magvit"], data, 8, 1) is None
    (out / "hard_s3_t1" / "magvit" / "config.yaml").unlink()
    os.mkfifo(out / "hard_s3_t1" / "magvit" / "config.yaml")  # read, it would block
    assert found(out / "hard_s3_t1", ["magvit"], data, 8, 1) is None
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    assert commands and "train.parallel" in commands[0]
    assert not (out / "hard_s3_t1").exists()  # set aside first; the stub trained nothing


@pytest.mark.parametrize("reuse, epochs", [(False, 8), (True, 4)])
def test_a_round_not_reused_is_kept_aside_not_deleted(
    bench, level, monkeypatch, capsys, reuse, epochs
):
    """A round folder not reused (no --reuse, or trained for other epochs) was deleted
    without a word before training again: four runs, hours of CPU each."""
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out)
    args.reuse, args.epochs = reuse, epochs
    monkeypatch.setattr(bench, "run", lambda cmd: 0)  # trains nothing
    kept = []
    for number in ("", ".2"):
        (out / "hard_s3_t1").mkdir(exist_ok=True)  # the second time: what the first trained
        (out / "hard_s3_t1" / "notes.txt").write_text(f"round{number}")
        bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
        kept.append(out / f"hard_s3_t1.previous{number}")
    assert (kept[0] / "i3d" / "best.pt").read_bytes() == b"weights"
    assert [(k / "notes.txt").read_text() for k in kept] == ["round", "round.2"]  # none replaced
    assert sorted(p.name for p in out.iterdir()) == [k.name for k in kept]
    said = [line for line in capsys.readouterr().out.splitlines() if "not reused" in line]
    assert said == [
        f"{out / 'hard_s3_t1'}: not reused, training it again; what it held kept in {k.name} "
        "(--reuse reads a round trained on the same data for the same epochs from the same seed)"
        for k in kept
    ]


@pytest.mark.parametrize("empty", [True, False])
def test_an_absent_or_empty_round_folder_is_trained_in_without_a_word(
    bench, level, monkeypatch, capsys, empty
):
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, names=())
    if empty:
        (out / "hard_s3_t1").mkdir(parents=True)
    monkeypatch.setattr(bench, "run", lambda cmd: 0)
    bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    assert "not reused" not in capsys.readouterr().out
    assert (out / "hard_s3_t1").is_dir() == empty and not (out / "hard_s3_t1.previous").exists()


def regenerating(commands):
    """A stand-in for ``bench.run``: the generator is run (in-process), nothing else."""

    def run(cmd):
        commands.append(cmd)
        return generate(cmd[cmd.index("generator") + 1 :]) if "generator" in cmd else 0

    return run


def test_a_round_trained_on_data_since_made_again_otherwise_is_set_aside_and_trained_again(
    bench, level, monkeypatch, capsys
):
    """The finding's repro: the level's YAML edited, its dataset folder deleted and made
    again by the bench; --reuse took the round trained on the old data (known by its path)
    as trained on the new one."""
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out)
    old = dataset_identity(meta_of(data))
    shutil.rmtree(data)
    (level / "configs" / "hard.yaml").write_text(LEVEL.replace("horizon: 1", "horizon: 2"))
    commands = []
    monkeypatch.setattr(bench, "run", regenerating(commands))
    bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    assert [cmd[2] for cmd in commands] == ["generator", "train.parallel"]
    new = dataset_identity(meta_of(data))
    kept = out / f"hard_s3_t1.{old}"
    assert (kept / "i3d" / "best.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in out.iterdir()) == [kept.name]  # the stub trained nothing
    said = [line for line in capsys.readouterr().out.splitlines() if "other data" in line]
    assert said == [
        f"{out / 'hard_s3_t1'}: trained on other data than {data} holds (dataset '{old}', "
        f"not {new}); training it again, those runs kept in {kept.name}"
    ]


@pytest.mark.parametrize("results", ["{}", "[unclosed"])
def test_a_round_whose_runs_name_no_data_is_set_aside_and_trained_again(
    bench, level, monkeypatch, results
):
    """Runs from before results.json named their data (or whose file is damaged) may have
    trained on anything that was at the path."""
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out)
    (out / "hard_s3_t1" / "magvit" / "results.json").write_text(results)
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    assert [cmd[2] for cmd in commands] == ["train.parallel"]
    kept = out / "hard_s3_t1.unnamed"
    assert sorted(p.name for p in kept.iterdir()) == ["i3d", "magvit"]
    assert (kept / "magvit" / "results.json").read_text() == results


def test_a_dataset_folder_of_the_level_is_used_as_it_is(bench, level, monkeypatch):
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    assert bench.dataset("hard", 3, 4, level / TRAIN) == meta_of(level / TRAIN)
    assert commands == []


@pytest.mark.parametrize(
    "change, says",
    [
        ("seed", "seed 3, not 4"),
        ("samples", "total_samples 4, not 5"),
        ("renderer", "render_version 1, not 2"),
        ("config", "another config than "),
    ],
)
def test_a_dataset_folder_of_other_data_is_refused_not_used(
    bench, level, monkeypatch, change, says
):
    """The folder was taken whenever its metadata.json existed: after easy.yaml was edited
    (or the renderer changed), a table labelled easy was computed on other data."""
    folder, seed, n = level / TRAIN, 3, 4
    if change == "seed":
        seed = 4
    elif change == "samples":
        n = 5
    elif change == "renderer":  # made by the renderer before version 2
        meta = meta_of(folder)
        meta.pop("render_version")
        (folder / "metadata.json").write_text(json.dumps(meta))
    else:  # the level's config edited since
        (level / "configs" / "hard.yaml").write_text(LEVEL.replace("horizon: 1", "horizon: 2"))
    before = (folder / "metadata.json").read_bytes()
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    with pytest.raises(bench.BenchError) as refused:
        bench.dataset("hard", seed, n, folder)
    message = str(refused.value)
    assert message.startswith(f"{folder} holds other data than hard asks for (") and says in message
    assert "\n" not in message and commands == []  # not generated over it
    assert (folder / "metadata.json").read_bytes() == before


@pytest.mark.parametrize("damage", ["empty", "truncated", "fifo"])
def test_a_damaged_metadata_file_is_one_line(bench, level, monkeypatch, damage):
    path = level / TRAIN / "metadata.json"
    text = path.read_text()
    path.unlink()
    if damage == "fifo":
        os.mkfifo(path)  # read, it would block
    else:
        path.write_text("" if damage == "empty" else text[: len(text) // 2])
    monkeypatch.setattr(bench, "run", lambda cmd: pytest.fail(f"ran {cmd}"))
    with pytest.raises(bench.BenchError) as refused:
        bench.dataset("hard", 3, 4, level / TRAIN)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_the_command_refuses_a_held_out_set_of_another_config(bench, level, monkeypatch, capsys):
    """The finding's repro: a medium set at the easy held-out set's path gave a table
    labelled easy, scored on medium clips, and no word of it."""
    data, out, args = trained_round(level, scored_on=level / HELD_OUT)
    (level / "configs" / "hard.yaml").write_text(LEVEL.replace("horizon: 1", "horizon: 2"))
    monkeypatch.setattr(bench, "run", lambda cmd: pytest.fail(f"ran {cmd}"))
    argv = ["--preset", "hard", "--seeds", "3", "--train-seeds", "1", "--n", "4", "--epochs", "8"]
    argv += ["--eval-n", "4", "--data-root", str(level), "--out", str(out), "--reuse"]
    argv += ["--extractors", "i3d", "magvit"]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    assert bench.main() == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"bench_train.py: error: {level / HELD_OUT} holds other data than hard asks for "
        f"(another config than {level / 'configs' / 'hard.yaml'}): move it away, and the "
        "rounds trained on it under --out, to make it again\n"
    )
    assert "| hard |" not in captured.out and not (out / "levels.md").exists()


@pytest.mark.parametrize("recorded", ["0123456789ab", None, "../x\ny"])
def test_a_record_of_other_data_is_kept_aside_and_the_run_scored_again(
    bench, level, monkeypatch, capsys, recorded
):
    """A record was taken when its ``data`` path was the held-out folder's, whatever that
    folder held when it was scored. One naming another dataset identity (or none, from
    before records named it) is moved out of ``train.evaluate``'s way, which refuses to
    replace it, and the run is scored again."""
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out, dataset=recorded or "-")
    record = out / "hard_s3_t1" / "i3d" / "evaluations" / f"{HELD_OUT}.all.json"
    for path in record, out / "hard_s3_t1" / "magvit" / "evaluations" / record.name:
        old = json.loads(path.read_text())
        if recorded is None:
            del old["dataset"]
        path.write_text(json.dumps(old))
    before = record.read_bytes()
    commands = []
    monkeypatch.setattr(bench, "run", evaluating(level, held_out, commands))
    records, minutes, _ = bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    assert [cmd[2] for cmd in commands] == ["train.evaluate"]
    assert [r["accuracy"] for r in records] == [0.7, 0.7]
    tag = recorded if recorded == "0123456789ab" else "unnamed"
    kept = record.with_name(f"{HELD_OUT}.all.{tag}") / record.name
    assert kept.read_bytes() == before
    lines = capsys.readouterr().out.splitlines()
    says = [line for line in lines if "scored other data" in line]
    assert len(says) == 2
    assert f"scoring it again, that record kept in evaluations/{kept.parent.name}" in says[0]
    assert says[0].startswith(f"{record.parent.parent}: {record.name} scored other data than")


def test_a_record_set_aside_never_replaces_one_set_aside_before(bench, tmp_path):
    record = tmp_path / "eval_hard_s1000_4.all.json"
    for text in ("first", "second"):
        record.write_text(text)
        bench.set_aside(record, {"dataset": "0123456789ab"})
    assert not record.exists()
    first, second = (tmp_path / f"eval_hard_s1000_4.all.0123456789ab{n}" for n in ("", ".2"))
    assert (first / record.name).read_text() == "first"
    assert (second / record.name).read_text() == "second"


def test_a_record_set_aside_takes_its_clips_file_along(bench, level, monkeypatch):
    """The clips file stayed where the new scoring writes its own, under the same name when
    its rows hash alike (a record from before identities, of the same clips): rescoring the
    run later removed it with the new record's, and the record kept named a lost file."""
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, names=("i3d",), scored_on=held_out, dataset="-")
    evaluations = out / "hard_s3_t1" / "i3d" / "evaluations"
    clips = f"{HELD_OUT}.all.0123456789ab.clips.csv"
    record = json.loads((evaluations / f"{HELD_OUT}.all.json").read_text()) | {"clips": clips}
    (evaluations / f"{HELD_OUT}.all.json").write_text(json.dumps(record))
    (evaluations / clips).write_text("old clips")
    scoring = evaluating(level, held_out, [])

    def evaluate(cmd):  # the new scoring writes its clips under the old file's name
        scoring(cmd)
        (evaluations / clips).write_text("new clips")
        return 0

    monkeypatch.setattr(bench, "run", evaluate)
    bench.round_of("hard", 3, 1, args, held_out_of(bench, held_out))
    kept = evaluations / f"{HELD_OUT}.all.unnamed"
    assert json.loads((kept / f"{HELD_OUT}.all.json").read_text()) == record
    assert (kept / clips).read_text() == "old clips"
    assert (evaluations / clips).read_text() == "new clips"


@pytest.mark.parametrize("clips", ["../../results.json", "other.all.0123456789ab.clips.csv", 7])
def test_a_record_set_aside_moves_no_file_but_its_own_clips(bench, tmp_path, clips):
    """A record may name any path: only a clips file of its own name beside it is moved."""
    evaluations = tmp_path / "run" / "evaluations"
    evaluations.mkdir(parents=True)
    record = evaluations / "eval_hard_s1000_4.all.json"
    record.write_text("{}")
    for path in (tmp_path / "results.json", evaluations / "other.all.0123456789ab.clips.csv"):
        path.write_text("not the record's")
    aside = bench.set_aside(record, {"dataset": "0123456789ab", "clips": clips})
    assert sorted(p.name for p in aside.iterdir()) == [record.name]
    assert (tmp_path / "results.json").read_text() == "not the record's"
    assert (evaluations / "other.all.0123456789ab.clips.csv").read_text() == "not the record's"


def test_a_record_is_not_set_aside_while_train_evaluate_holds_its_run(bench, tmp_path):
    """The record and its clips file were moved without the run's evaluations lock: a
    train.evaluate writing that record at the time could leave one moved without the other."""
    evaluations = tmp_path / "run" / "evaluations"
    evaluations.mkdir(parents=True)
    record = evaluations / "eval_hard_s1000_4.all.json"
    record.write_text("{}")
    clips = "eval_hard_s1000_4.all.0123456789ab.clips.csv"
    (evaluations / clips).write_text("clips")
    with evaluations_locked(tmp_path / "run"):  # a train.evaluate scoring the run
        before = sorted(p.name for p in evaluations.iterdir())
        with pytest.raises(LockedError) as refused:
            bench.set_aside(record, {"dataset": "0123456789ab", "clips": clips})
        assert sorted(p.name for p in evaluations.iterdir()) == before  # nothing moved or made
    assert str(refused.value).startswith(f"{evaluations} is being written by process ")
    assert record.read_text() == "{}" and (evaluations / clips).read_text() == "clips"


def test_the_command_stops_in_one_line_when_a_record_to_set_aside_is_being_scored(
    bench, level, monkeypatch, capsys
):
    held_out = level / HELD_OUT
    data, out, args = trained_round(level, scored_on=held_out, dataset="0123456789ab")
    run = out / "hard_s3_t1" / "i3d"
    monkeypatch.setattr(bench, "run", lambda cmd: pytest.fail(f"ran {cmd}"))
    argv = ["--preset", "hard", "--seeds", "3", "--train-seeds", "1", "--n", "4", "--epochs", "8"]
    argv += ["--eval-n", "4", "--data-root", str(level), "--out", str(out), "--reuse"]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv, "--extractors", "i3d", "magvit"])
    with evaluations_locked(run):  # a user's train.evaluate scoring the run
        assert bench.main() == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(
        f"bench_train.py: error: {run / 'evaluations'} is being written by process {os.getpid()}"
    )
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert (run / "evaluations" / f"{HELD_OUT}.all.json").is_file()
    assert not list(out.glob("**/*.0123456789ab"))  # no record set aside
