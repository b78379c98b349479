"""python -m train: run folder, exact resume, non-finite stop, bad input, DDP on two CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import train.trajectory.loop as loop_module
from generator.__main__ import main as generate
from generator.dataformat.dataset import read_metadata, split_indices
from generator.dataformat.metadata import dataset_identity
from generator.dataformat.sources import open_source
from train.__main__ import main
from train.checkpoint import load_checkpoint
from train.summary import RunStatus, write_summary

ROOT = Path(__file__).resolve().parents[2]
TIMING = {"train_seconds", "train_samples_per_second", "epoch_seconds"}
FAST = ["--workers", "0", "--threads", "1", "--quiet"]


def train(dataset: Path, out: Path, *extra: str, epochs: int = 2, extractor: str = "i3d") -> int:
    args = ["--extractor", extractor, "--data", str(dataset), "--epochs", str(epochs)]
    return main([*args, "--out", str(out), *FAST, *extra])


def epoch_records(out: Path) -> list[dict]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


def test_run_folder_holds_what_design_names(dataset, tmp_path):
    out = tmp_path / "run"
    assert train(dataset, out) == 0
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "results.json",
        "splits.json",
    ):
        assert (out / name).is_file(), f"{name} missing from the run folder"
    assert list((out / "tensorboard").glob("events.out.tfevents.*")), "no TensorBoard events"
    assert not list(out.glob(".tmp-*")), "temporary files left behind"

    results = json.loads((out / "results.json").read_text())
    assert results["extractor"] == "i3d" and results["epochs"] == 2
    assert 0.0 <= results["val_accuracy"] <= 1.0
    assert results["val_future_rmse"] > 0 and results["train_samples_per_second"] > 0
    assert sum(map(sum, results["test_confusion"])) == results["split_sizes"]["test"]
    # What the folder held, not only its path: data made again there is other data.
    assert results["dataset"] == dataset_identity(read_metadata(dataset))
    assert results["split_seed"] == 0  # another split validates on other clips: other data

    records = epoch_records(out)
    assert [r["kind"] for r in records] == ["epoch", "epoch", "test"]
    assert len(records[0]["val_confusion"]) == 4 and len(records[0]["val_per_class_accuracy"]) == 4

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["extractor"] == "i3d" and config["epochs"] == 2
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(48))

    state = load_checkpoint(out / "last.pt")  # weights_only=True inside
    assert state["epoch"] == 2
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config"} <= set(state)
    assert isinstance(state["rng"]["torch"], torch.Tensor)


def test_a_run_s_config_yaml_repeats_it_and_records_its_threads(dataset, tmp_path):
    """A --data run's config.yaml held the --render settings' defaults, which --config then
    refused for a --data run, and neither its extractor, data nor epochs counted (each still
    had to be a flag); its threads were null, the count the run used written nowhere."""
    first = tmp_path / "first"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--workers", "0"]
    assert main([*argv, "--out", str(first), "--quiet"]) == 0
    config = yaml.safe_load((first / "config.yaml").read_text())
    assert config["threads"] == torch.get_num_threads()
    assert all(config[k] is None for k in ("render", "render_seed", "epoch_samples"))
    again = tmp_path / "again"
    assert main(["--config", str(first / "config.yaml"), "--out", str(again), "--quiet"]) == 0
    repeat = yaml.safe_load((again / "config.yaml").read_text())
    assert repeat == {**config, "out": str(again)}
    a, b = load_checkpoint(first / "last.pt")["model"], load_checkpoint(again / "last.pt")["model"]
    assert all(torch.equal(a[name], b[name]) for name in a), "the run was not repeated"


def test_interrupted_then_resumed_equals_uninterrupted(
    dataset, tmp_path, monkeypatch, stop_after_first_epoch
):
    assert train(dataset, tmp_path / "straight", epochs=3) == 0

    stop_after_first_epoch()
    broken = tmp_path / "broken"
    assert train(dataset, broken, epochs=3) == 130
    assert load_checkpoint(broken / "last.pt")["epoch"] == 1
    monkeypatch.undo()
    assert train(dataset, broken, "--resume", epochs=3) == 0

    assert epoch_records(broken) == epoch_records(tmp_path / "straight")
    a = load_checkpoint(broken / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the unbroken run"


def test_the_stop_line_says_what_is_kept(
    dataset, tmp_path, monkeypatch, capsys, stop_after_first_epoch
):
    """A stop before the first epoch ended pointed at a last.pt that was not there."""

    def stopped_in_epoch_1(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_module.Run, "fit", stopped_in_epoch_1)
    early, late = tmp_path / "early", tmp_path / "late"
    assert train(dataset, early) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted: no epoch finished") and "\n" not in err, err
    assert not (early / "last.pt").exists()
    monkeypatch.undo()
    stop_after_first_epoch()
    assert train(dataset, late) == 130
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"interrupted: {late / 'last.pt'} holds the last finished epoch, continue with --resume"
    )


def test_resume_trains_on_the_run_s_own_samples(dataset, tmp_path, capsys):
    """--data on --resume may point at a moved copy of the run's dataset, not at other
    samples: epoch 2 silently trained on another seed (or another clip length)."""
    import shutil

    from generator.__main__ import main as generate

    out = tmp_path / "run"
    assert train(dataset, out, epochs=1) == 0
    other = tmp_path / "other"
    (tmp_path / "gen.yaml").write_text("image_size: 32\nframes: 8\n")
    args = ["--n", "48", "--out", other, "--seed", "5", "--config", tmp_path / "gen.yaml"]
    assert generate([str(a) for a in [*args, "--workers", "1", "--quiet"]]) == 0
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert train(other, out, "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert "other samples than this run trained on" in err and "\n" not in err, err
    assert (out / "last.pt").read_bytes() == before
    moved = tmp_path / "moved"
    shutil.copytree(dataset, moved)
    assert train(moved, out, "--resume") == 0


def test_resume_drops_log_lines_that_are_not_epoch_records(
    dataset, tmp_path, monkeypatch, stop_after_first_epoch
):
    """A line cut off by a full disk, or not a record at all, was a traceback on --resume."""
    assert train(dataset, tmp_path / "straight") == 0
    stop_after_first_epoch()
    broken = tmp_path / "broken"
    assert train(dataset, broken) == 130
    monkeypatch.undo()
    with open(broken / "metrics.jsonl", "ab") as log:
        log.write(b'5\n{"kind": "epoch"}\n{"kind": "epoch", "epoch": "2"}\n\xff\xfe\n')
        log.write(b'{"kind": "epoch", "epoch": 2, "val_acc')  # cut off
    assert train(dataset, broken, "--resume") == 0
    assert epoch_records(broken) == epoch_records(tmp_path / "straight")


def test_an_epoch_record_without_a_sample_count_is_left_out_of_the_results(
    dataset, tmp_path, capsys
):
    """An epoch record kept by --resume without a number for train_samples (edited by hand,
    damaged) made the results a KeyError traceback (a string there, a TypeError): it is left
    out of them with one warning, the log keeps it."""
    out = tmp_path / "run"
    assert train(dataset, out, epochs=1) == 0
    log = out / "metrics.jsonl"
    records = [json.loads(x) for x in log.read_text().splitlines()]
    records[0]["train_samples"] = "38"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert train(dataset, out, "--resume", epochs=2) == 0
    err = capsys.readouterr().err.strip()
    assert err == (
        f"warning: {log} is damaged (an epoch without numbers for train_samples, "
        "train_seconds); that epoch is left out of results.json"
    ), err
    kept = [json.loads(x) for x in log.read_text().splitlines()]
    assert kept[0]["train_samples"] == "38" and [r["kind"] for r in kept][1:] == ["epoch", "test"]
    results = json.loads((out / "results.json").read_text())
    speed = kept[1]["train_samples"] / kept[1]["train_seconds"]
    assert results["train_samples_per_second"] == pytest.approx(speed)
    assert results["final_val_accuracy"] == kept[1]["val_accuracy"]
    del kept[1]["train_samples"]  # the last epoch's: nothing left to train, the results again
    log.write_text("".join(json.dumps(r) + "\n" for r in kept))
    (out / "results.json").unlink()  # as a stop right after the last last.pt leaves it
    assert train(dataset, out, "--resume", epochs=2) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["train_samples_per_second"] is None and results["final_val_accuracy"] is None


def test_resume_with_a_worker_and_augmentation_equals_uninterrupted(
    dataset, tmp_path, monkeypatch, stop_after_first_epoch
):
    """Each epoch's loader (``make_loader``, one pass, slots of its own) seeds its worker from
    ``(seed, epoch)``: the colour jitter a worker draws is the same after a resume."""
    (tmp_path / "augment.yaml").write_text("augment: true\n")
    extra = ("--workers", "1", "--config", str(tmp_path / "augment.yaml"))
    assert train(dataset, tmp_path / "straight", *extra) == 0
    stop_after_first_epoch()
    broken = tmp_path / "broken"
    assert train(dataset, broken, *extra) == 130
    monkeypatch.undo()
    assert train(dataset, broken, *extra, "--resume") == 0
    assert epoch_records(broken) == epoch_records(tmp_path / "straight")
    a = load_checkpoint(broken / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the unbroken run"


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(
    dataset, tmp_path, monkeypatch, capsys
):
    real = loop_module.task_loss
    calls = {"n": 0}

    def nan_from_second_epoch(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 5 else loss  # 38 train samples: 5 steps

    monkeypatch.setattr(loop_module, "task_loss", nan_from_second_epoch)
    out = tmp_path / "nan"
    assert train(dataset, out, epochs=3) == 1
    err = capsys.readouterr().err.strip()
    assert "non-finite loss" in err and "keeps epoch 1" in err and len(err.splitlines()) == 1
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not (out / "results.json").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--extractor", "nope"], "known: i3d, magvit, slowfast, transformer"),
        (["--data", "/nonexistent/ds"], "does not exist"),
        (["--epochs", "0"], "--epochs"),
        (["--lr", "abc"], "--lr"),
        (["--device", "tpu"], "--device"),
        # 100,000 threads crashed libgomp; 5,000 spun for minutes past SIGTERM
        (["--threads", "100000"], "--threads: must be 1..1024"),
        (["--workers", "100000"], "--workers: must be 0..1024"),
        (["--config", "threads.yaml"], "threads"),
    ],
)
def test_bad_input_is_one_line_exit_2(dataset, tmp_path, capsys, args, expected):
    (tmp_path / "threads.yaml").write_text("threads: 100000\n")
    base = {"--extractor": "i3d", "--data": str(dataset), "--epochs": "1"}
    base |= {"--workers": "0"} if "--config" in args else {"--workers": "0", "--threads": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = str(tmp_path / value) if flag == "--config" else value
    argv = [x for kv in base.items() for x in kv] + ["--out", str(tmp_path / "r"), "--quiet"]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r" / "last.pt").exists()


def test_damaged_dataset_and_existing_run_are_refused(dataset, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "metadata.json").write_text("{not json")
    assert train(damaged, tmp_path / "r") == 1  # damage is a data error
    assert "metadata.json is damaged" in capsys.readouterr().err

    out = tmp_path / "done"
    assert train(dataset, out, epochs=1) == 0
    before = (out / "last.pt").read_bytes()
    assert train(dataset, out, epochs=1) == 2
    assert "--resume" in capsys.readouterr().err
    assert train(dataset, out, "--resume", "--lr", "0.5", epochs=1) == 2
    assert "cannot change lr" in capsys.readouterr().err
    more = tmp_path / "more"
    assert train(dataset, more, epochs=2) == 0
    results = (more / "results.json").read_bytes()
    assert train(dataset, more, "--resume", epochs=1) == 2
    assert "--epochs 1 is fewer than the 2 epochs" in capsys.readouterr().err
    assert (more / "results.json").read_bytes() == results
    assert (out / "last.pt").read_bytes() == before, "a refused run touched the checkpoint"


@pytest.fixture(scope="module")
def twenty_samples(tmp_path_factory) -> Path:
    """20 samples of 4 classes, the trainer's minimum: some split seeds deal no val sample."""
    where = tmp_path_factory.mktemp("twenty")
    (where / "gen.yaml").write_text("image_size: 32\nframes: 8\n")
    args = ["--n", "20", "--out", where / "ds", "--workers", "1", "--config", where / "gen.yaml"]
    assert generate([str(a) for a in [*args, "--quiet"]]) == 0
    return where / "ds"


def empty_val_config(root: Path, where: Path) -> tuple[int, Path]:
    """A split seed whose deal of ``root`` leaves val empty, and a --config file giving it."""
    labels = open_source(root, read_metadata(root)).index.class_labels
    seed = next(s for s in range(100) if not split_indices(labels, seed=s)["val"])
    config = where / "split.yaml"
    config.write_text(f"split_seed: {seed}\n")
    return seed, config


def test_a_split_seed_that_deals_no_val_sample_is_refused_in_one_line(
    twenty_samples, tmp_path, capsys
):
    """An empty val split trained on, scoring loss 0 and RMSE 0.0 every epoch, so epoch 1
    stayed "best" and results.json ranked on a perfect score no sample gave."""
    seed, config = empty_val_config(twenty_samples, tmp_path)
    out = tmp_path / "run"
    assert train(twenty_samples, out, "--config", str(config), epochs=1) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"split_seed {seed} deals its 20 samples as " in err, err
    assert ", 0 val, " in err and "leaving val empty" in err, err
    assert "generate more samples" in err and "another split_seed" in err, err
    assert not out.exists(), "a refused run left its folder behind"


def test_a_run_on_an_empty_val_split_publishes_no_val_numbers(
    twenty_samples, tmp_path, monkeypatch, capsys
):
    """Past the preflight (a caller of Run), an empty val split gives None, never a perfect
    0: results.json, the epoch and final lines, the best epoch (the last) and summary.md."""
    from train.trajectory import preflight

    monkeypatch.setattr(preflight, "check_splits", lambda *args: None)
    _, config = empty_val_config(twenty_samples, tmp_path)
    out = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(twenty_samples), "--epochs", "2"]
    argv += ["--out", str(out), "--config", str(config), "--workers", "0", "--threads", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "Traceback" not in captured.err, captured.err
    results = json.loads((out / "results.json").read_text())
    for key in ("val_accuracy", "val_loss", "val_future_rmse", "val_future_rmse_fraction"):
        assert results[key] is None, key
    assert results["final_val_accuracy"] is None and results["val_samples"] == 0
    assert results["best_epoch"] == 2 and results["train_samples_per_second"] > 0
    assert 0.0 <= results["test_accuracy"] <= 1.0 and results["test_future_rmse"] > 0
    lines = captured.out.strip().splitlines()
    assert lines[0].startswith("epoch 1/2: ") and "val acc - rmse - " in lines[0], lines
    assert lines[-1].startswith("i3d: val accuracy -, val future RMSE -, test accuracy "), lines
    rows = write_summary(tmp_path, [RunStatus("run", status="done")])
    assert rows[0]["val_accuracy"] is None
    assert "| run | done |" in (tmp_path / "summary.md").read_text()


def test_the_final_line_names_the_split_of_each_number(dataset, tmp_path, capsys):
    """It printed the val RMSE, unlabelled, beside the test accuracy."""
    out = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--workers", "0", "--threads", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    r = json.loads((out / "results.json").read_text())
    assert last.startswith(
        f"i3d: val accuracy {r['val_accuracy']:.3f}, val future RMSE {r['val_future_rmse']:.3f}, "
        f"test accuracy {r['test_accuracy']:.3f}, test future RMSE {r['test_future_rmse']:.3f} "
        "(RMSE in world units), "
    ), last


def test_ddp_two_cpu_processes_with_gloo(dataset, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "train", "--extractor", "i3d", "--data", str(dataset), "--epochs", "1",
        "--out", str(out), *FAST,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2
    records = epoch_records(out)
    assert [r["kind"] for r in records] == ["epoch", "test"], "rank 1 also wrote metrics"
    # Both ranks' shards add up to the whole split: 38 training samples, all val samples once.
    assert records[0]["train_samples"] == results["split_sizes"]["train"]
    assert records[0]["val_samples"] == results["split_sizes"]["val"]


def test_more_threads_than_cores_is_allowed_with_a_warning(capsys):
    """Kept for a bit-identical resume on a smaller machine, but each step is slower: i3d took
    20 s an epoch at 16 threads on 2 cores against 5.7 s at 2."""
    from train.distributed import set_threads

    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0))
    try:
        set_threads(cores)
        assert capsys.readouterr().err == ""
        set_threads(cores + 1)
        assert torch.get_num_threads() == cores + 1
        err = capsys.readouterr().err
        assert (
            err.startswith(f"warning: {cores + 1} threads on the {cores} cores")
            and err.count("\n") == 1
        )
    finally:
        torch.set_num_threads(before)


def test_a_run_started_quiet_resumes_with_its_final_line(dataset, tmp_path, capsys):
    """--quiet was kept from the saved config, and no flag turns it off: the resume printed
    nothing, even its final line."""
    out = tmp_path / "run"
    assert train(dataset, out, epochs=1) == 0  # FAST holds --quiet
    capsys.readouterr()
    assert main(["--resume", "--out", str(out), "--epochs", "2", "--workers", "0"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("i3d: val accuracy ")
    (out / "results.json").unlink()  # a finished run has nothing to do: tested again instead
    assert main(["--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    assert capsys.readouterr().out == "" and (out / "results.json").is_file()


def run_files(out: Path) -> dict[str, tuple[bytes, int]]:
    """Each file of a run folder (but the lock, which every command takes) by its bytes and
    modification time."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def test_a_resume_of_a_finished_run_is_one_line_and_rewrites_nothing(dataset, tmp_path, capsys):
    """It tested the best epoch again and rewrote results.json (train.jepa said there was
    nothing to do); without results.json (a stop right after the last last.pt) it still
    writes it."""
    out = tmp_path / "run"
    assert train(dataset, out, epochs=1) == 0
    files = run_files(out)
    capsys.readouterr()
    assert main(["--resume", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert "nothing to do" in captured.err and str(out / "results.json") in captured.err
    assert run_files(out) == files
    (out / "results.json").unlink()
    assert main(["--resume", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "results.json").read_text())["epochs"] == 1
