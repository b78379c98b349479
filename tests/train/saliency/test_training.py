import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from train.saliency.__main__ import main
from train.saliency.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs" / "saliency"


@pytest.mark.parametrize("variant", ["baseline", "entropy_reg"])
def test_each_variant_trains_and_writes_its_run_folder(tiny_config, tmp_path, synth, variant):
    out = tmp_path / "run"
    assert main(["--config", str(tiny_config(variant, synth)), "--out", str(out), "--quiet"]) == 0
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt", "results.json"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert set(json.loads((out / "splits.json").read_text())) == {"train", "val", "test"}
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [(json.loads(x)["kind"], json.loads(x)["epoch"]) for x in lines][:2] == [
        ("epoch", 1),
        ("epoch", 2),
    ]
    assert json.loads(lines[-1])["kind"] == "test" and "test_info_gain" in json.loads(lines[-1])
    res = json.loads((out / "results.json").read_text())
    assert res["variant"] == f"{variant}_tiny" and res["epochs"] == 2
    for k in ("info_gain", "nss", "auc", "cc", "kl", "sim"):
        assert k in res["val"] and res["val"][k] == res["val"][k]  # present, not NaN
    assert ("train_entropy" in json.loads(lines[0])) == (variant == "entropy_reg")
    assert load_config(out / "config.yaml").name == f"{variant}_tiny"


def test_resume_equals_uninterrupted(tiny_config, tmp_path, synth):
    cfg = tiny_config("entropy_reg", synth, epochs=3)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["--config", str(cfg), "--out", str(full), "--quiet"]) == 0
    assert main(["--config", str(cfg), "--out", str(part), "--epochs", "1", "--quiet"]) == 0
    assert [json.loads(x)["kind"] for x in (part / "metrics.jsonl").read_text().splitlines()] == [
        "epoch",
        "test",
    ]
    assert main(["--config", str(cfg), "--out", str(part), "--resume", "--quiet"]) == 0
    a = torch.load(full / "last.pt", weights_only=True)
    b = torch.load(part / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert (full / "metrics.jsonl").read_text() == (part / "metrics.jsonl").read_text()
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, part))
    assert ra["val"] == rb["val"] and ra["test"] == rb["test"]


def test_existing_run_without_resume_is_refused_and_kept(tiny_config, tmp_path, synth, capsys):
    cfg = tiny_config("baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    before = (out / "last.pt").read_bytes()
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 2
    assert "add --resume" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before


def test_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {path: /nowhere, image_size: 30}\n")
    with pytest.raises(ConfigError, match="multiple of 8"):
        load_config(bad)
    bad.write_text("name: x\ndata: {path: /nowhere}\nentropy: {weight: 1, sign: -1}\n")
    r = subprocess.run(
        [sys.executable, "-m", "train.saliency", "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "entropy.sign" in r.stderr


def test_missing_data_folder_is_one_line(tiny_config, tmp_path, capsys):
    cfg = tiny_config("baseline", tmp_path / "no_data")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err


@pytest.mark.parametrize("name", ["baseline", "entropy_reg", "baseline_tiny", "entropy_reg_tiny"])
def test_shipped_configs_validate(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name
    assert (cfg.entropy.weight > 0) == name.startswith("entropy_reg")


def test_resume_starts_from_last_pt_not_from_scratch(tiny_config, tmp_path, synth):
    cfg = tiny_config("baseline", synth, epochs=2)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["--config", str(cfg), "--out", str(full), "--quiet"]) == 0
    assert main(["--config", str(cfg), "--out", str(part), "--epochs", "1", "--quiet"]) == 0
    state = torch.load(part / "last.pt", weights_only=True)
    state["model"]["centre_bias"] += 1.0  # a run that restarted would not see this
    torch.save(state, part / "last.pt")
    assert main(["--config", str(cfg), "--out", str(part), "--resume", "--quiet"]) == 0
    a = torch.load(full / "last.pt", weights_only=True)["model"]["centre_bias"]
    b = torch.load(part / "last.pt", weights_only=True)["model"]["centre_bias"]
    assert (b - a).mean() > 0.5


def test_resume_with_a_changed_config_is_refused(tiny_config, tmp_path, synth, capsys):
    cfg = tiny_config("baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    changed = yaml.safe_load(cfg.read_text())
    changed["train"]["lr"] = 0.5
    cfg.write_text(yaml.safe_dump(changed))
    assert (
        main(["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 2
    )
    assert "differs from this config" in capsys.readouterr().err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # epoch 1 and its test line


def test_resume_to_fewer_epochs_than_finished_is_refused(tiny_config, tmp_path, synth, capsys):
    """It rewrote results.json for fewer epochs than the log and the checkpoint hold."""
    cfg = tiny_config("baseline", synth, epochs=2)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    results = (out / "results.json").read_bytes()
    argv = ["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "1", "--quiet"]
    assert main(argv) == 2
    assert "--epochs 1 is fewer than the 2 epochs" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == results


def test_resume_by_another_process_count_is_refused(tiny_config, tmp_path, synth, capsys):
    """A run of 2 processes resumed alone went on with half the batch a step, and results.json
    then said 1 process."""
    cfg = tiny_config("baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    torch.save({**state, "world_size": 2}, out / "last.pt")
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = ["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "2", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained by 2 process(es) and this job has 1" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files


@pytest.mark.parametrize("where", ["--epochs", "config"])
@pytest.mark.timeout(60)  # before the bound, 1e30 epochs trained for ever
def test_epochs_past_the_bound_are_one_line_before_any_run_folder(
    tiny_config, tmp_path, synth, capsys, where
):
    """--epochs 1e30 (or a config's) started a run that trained for ever, as the trajectory
    trainer's did before its bound (trajkit.cli.MAX_EPOCHS)."""
    huge = 10**30
    cfg = tiny_config("baseline", synth, **({"epochs": huge} if where == "config" else {}))
    out = tmp_path / "run"
    argv = ["--config", str(cfg), "--out", str(out), "--quiet"]
    if where == "--epochs":
        argv += ["--epochs", str(huge)]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's refusal
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    said = "must be 1..100000" if where == "--epochs" else "train.epochs: Input should be less"
    assert said in err and "100000" in err, err
    assert not out.exists()


@pytest.mark.parametrize("edit", ["best epoch's record removed", "a record added before it"])
def test_results_take_the_best_epoch_s_record_by_its_epoch_not_its_place(
    tiny_config, tmp_path, synth, capsys, edit
):
    """results.json took the log's record at the best epoch's position: a record removed by
    hand was an IndexError (a traceback), one added gave another epoch's numbers."""
    cfg, out = tiny_config("baseline", synth, epochs=1), tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    before = json.loads((out / "results.json").read_text())
    log = out / "metrics.jsonl"
    epoch = [x for x in log.read_text().splitlines() if json.loads(x)["kind"] == "epoch"]
    made = json.dumps({**json.loads(epoch[0]), "epoch": 0, "val_info_gain": 9.0, "val_nss": 9.0})
    log.write_text("" if edit == "best epoch's record removed" else f"{made}\n{epoch[0]}\n")
    capsys.readouterr()
    assert main(["--config", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 0
    after = json.loads((out / "results.json").read_text())
    assert (after["epochs"], after["best_epoch"]) == (1, 1)
    assert after["val_info_gain"] == before["val_info_gain"]
    err = capsys.readouterr().err.strip()
    if edit == "a record added before it":
        assert after["val"] == before["val"] and err == "", err
    else:
        assert after["val"] is None
        assert err.startswith(f"warning: {log} holds no record of the best epoch, 1") and (
            "\n" not in err
        ), err


@pytest.mark.parametrize(
    "damage", ["fifo", "empty", "not a mapping", "broken yaml", "not utf-8", "a folder", "a date"]
)
def test_resume_with_a_damaged_saved_config_is_one_line(
    tiny_config, tmp_path, synth, capsys, damage
):
    """config.yaml was read bare: a FIFO hung for ever, other damage was a traceback."""
    import os

    cfg = tiny_config("baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    saved = out / "config.yaml"
    last = (out / "last.pt").read_bytes()
    saved.unlink()
    if damage == "fifo":
        os.mkfifo(saved)
    elif damage == "a folder":
        saved.mkdir()
    else:
        text = {
            "empty": b"",
            "not a mapping": b"5\n",
            "broken yaml": b"train: [\n",
            "not utf-8": b"\xff",
            "a date": b"when: 2020-01-01\n",
        }[damage]
        saved.write_bytes(text)
    capsys.readouterr()
    argv = ["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "2", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(saved) in err, err
    assert (out / "last.pt").read_bytes() == last


def test_damaged_last_pt_is_one_line_exit_1(tiny_config, tmp_path, synth, capsys):
    cfg = tiny_config("baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    (out / "last.pt").write_bytes(b"not a checkpoint")
    assert (
        main(["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last.pt is damaged" in err


# about 13 s; the other trainers' torchrun tests, in the default suite, run the shared
# train.distributed set-up
@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_and_resume(tiny_config, tmp_path, synth):
    """DDP with gloo: both ranks train on their shards, rank 0 alone writes, resume works."""
    cfg = tiny_config("baseline", synth, epochs=2)
    out = tmp_path / "ddp"
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}

    def torchrun(*extra: str) -> None:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "train.saliency", "--config", str(cfg), "--out", str(out), "--device", "cpu",
            "--quiet", *extra,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.count("baseline_tiny: best epoch") == 1, "rank 1 also reported"

    torchrun("--epochs", "1")
    torchrun("--resume")
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # the epoch-1 test line is dropped on resume; then epochs 1, 2 once each and one test line
    assert [(r["kind"], r["epoch"]) for r in records][-3:] == [
        ("epoch", 1),
        ("epoch", 2),
        ("test", records[-1]["epoch"]),
    ]
    assert sum(r["kind"] == "epoch" for r in records) == 2, "rank 1 also wrote metrics"
    res = json.loads((out / "results.json").read_text())
    assert res["world_size"] == 2 and res["epochs"] == 2
    # the two ranks' shards add up to the whole training split, counted once
    assert all(
        r["train_samples"] == res["stimuli"]["train"] for r in records if r["kind"] == "epoch"
    )
    assert torch.load(out / "last.pt", weights_only=True)["world_size"] == 2


@pytest.mark.slow
def test_a_killed_process_leaves_its_twin_one_line_and_exit_1(tiny_config, tmp_path, synth):
    """About 15 s. SIGKILL to rank 1 once epoch 1 is saved: rank 0 printed 40 lines of gloo's
    "Connection reset by peer" traceback from whichever collective it was in."""
    from tests.train.conftest import kill_a_rank, torchrun_command

    cfg = tiny_config("baseline", synth, epochs=1000)
    out = tmp_path / "ddp"
    argv = ["-m", "train.saliency", "--config", str(cfg), "--out", str(out), "--device", "cpu"]
    code, err = kill_a_rank(torchrun_command(*argv, "--quiet"), out / "last.pt", rank=1)
    said = [line for line in err.splitlines() if line.startswith("error:")]
    assert said == [
        "error: another process of this run stopped (torchrun reports it below), so this one "
        f"stops too; a --resume needs the same process count; {out / 'last.pt'} holds the last "
        "finished epoch, continue with --resume"
    ], err
    assert "[rank0]: Traceback" not in err and err.count("Traceback") == 1, err  # torchrun's only
    assert code == 1 and "exitcode  : 1" in err, err  # rank 0's exit, not torchrun's SIGTERM


@pytest.mark.parametrize(
    "text, expected",
    [("name: [unclosed\n", "not valid YAML"), ("- a list\n", "must be a YAML mapping")],
)
def test_unreadable_config_is_one_line(tmp_path, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_a_full_disk_is_one_line_and_resume_goes_on(
    tiny_config, tmp_path, synth, disk_full_after_first_last_pt, capsys
):
    from tests.train.conftest import assert_stopped_on_the_full_disk

    cfg, out = tiny_config("baseline", synth), tmp_path / "run"
    with disk_full_after_first_last_pt():
        assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 1
    assert_stopped_on_the_full_disk(capsys, out)
    assert main(["--config", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 0
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_a_full_disk_at_tensorboard_s_first_write_names_its_folder(
    tiny_config, tmp_path, synth, tensorboard_disk_full, capsys
):
    """The writer is made before the first epoch: the line said that last.pt held the last
    finished epoch, and there was none."""
    from tests.train.conftest import NO_EPOCH_FINISHED, assert_stopped_naming_tensorboard

    cfg, out = tiny_config("baseline", synth), tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 1
    line = assert_stopped_naming_tensorboard(capsys, out)
    assert line.endswith(NO_EPOCH_FINISHED.format(run=out)), line


def test_resume_over_a_last_pt_link_loop_is_one_line_exit_1(tiny_config, tmp_path, synth, capsys):
    """The loop was taken for no run: ``--resume`` trained from epoch 1 and replaced it."""
    cfg = tiny_config("baseline", synth, epochs=1)
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").symlink_to(out / "last.pt")
    assert main(["--config", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic links" in err and str(out / "last.pt") in err, err
    assert (out / "last.pt").is_symlink() and not (out / "metrics.jsonl").exists()
