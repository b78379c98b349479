"""python -m train.saliency.parallel: both variants at once, a failed run, --resume, slurm, bad input."""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

import train.slurm
from train.checkpoint import load_checkpoint
from train.run_folder import LOCK
from train.saliency.parallel import main
from trajkit.lock import FolderLock


def variants(tiny_config, data: Path, **train) -> list[str]:
    return [str(tiny_config(v, data, **train)) for v in ("baseline", "entropy_reg")]


def summary(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["runs"]


def test_both_variants_train_at_once_and_are_ranked_by_info_gain(
    tiny_config, synth, tmp_path, capsys
):
    out = tmp_path / "runs"
    assert (
        main(["--configs", *variants(tiny_config, synth), "--out", str(out), "--epochs", "1"]) == 0
    )
    rows = summary(out)
    assert {r["variant"] for r in rows} == {"baseline_tiny", "entropy_reg_tiny"}
    assert all(r["status"] == "done" and r["epochs"] == 1 for r in rows)
    gains = [r["val_info_gain"] for r in rows]
    assert gains == sorted(gains, reverse=True)
    for r in rows:  # each row is its run's own results.json
        results = json.loads((Path(r["run_dir"]) / "results.json").read_text())
        assert r["val_info_gain"] == results["val_info_gain"]
        assert r["test_nss"] == results["test"]["nss"]
    table = (out / "summary.md").read_text()
    assert "maximize x" in table and "| none |" in table  # the entropy term of each variant
    assert table in capsys.readouterr().out

    # --resume continues both to more epochs from their checkpoints
    args = ["--configs", *variants(tiny_config, synth), "--out", str(out), "--epochs", "2"]
    assert main([*args, "--resume"]) == 0
    assert all(
        load_checkpoint(out / n / "last.pt")["epoch"] == 2
        for n in ("baseline_tiny", "entropy_reg_tiny")
    )


def test_a_resume_with_a_changed_config_is_refused_before_any_run(
    tiny_config, synth, tmp_path, capsys
):
    """Each run refused on its own, after the other had resumed; the check builds the config
    as the run does, so a resume with the same --data (made absolute for the run) passes."""
    out = tmp_path / "runs"
    configs = variants(tiny_config, synth, epochs=1)
    args = ["--configs", *configs, "--out", str(out), "--data", os.path.relpath(synth)]
    assert main(args) == 0
    launched = Path(configs[1]).read_text()
    raw = yaml.safe_load(launched)
    raw["train"]["lr"] *= 10
    Path(configs[1]).write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs from this config" in err, err
    assert "entropy_reg_tiny" in err
    for name in ("baseline_tiny", "entropy_reg_tiny"):  # neither resumed
        assert load_checkpoint(out / name / "last.pt")["epoch"] == 1
    Path(configs[1]).write_text(launched)
    assert main([*args, "--epochs", "2", "--resume"]) == 0


def test_one_failed_run_does_not_stop_the_other(tiny_config, synth, tmp_path):
    good, bad = variants(tiny_config, synth, epochs=1)
    damaged = tmp_path / "damaged"
    shutil.copytree(synth, damaged)
    for image in (damaged / "ALLSTIMULI").iterdir():  # listed, so only the run finds out
        image.write_bytes(b"")
    raw = yaml.safe_load(Path(bad).read_text())
    raw["data"]["path"] = str(damaged)
    Path(bad).write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    assert main(["--configs", good, bad, "--out", str(out)]) == 1
    rows = {r["variant"]: r for r in summary(out)}
    assert rows["baseline_tiny"]["status"] == "done"
    assert rows["entropy_reg_tiny"]["status"] == "failed"
    assert "cannot be read as an image" in rows["entropy_reg_tiny"]["error"]


def test_a_second_launch_on_a_held_folder_is_refused(tiny_config, synth, tmp_path, capsys):
    out = tmp_path / "runs"
    out.mkdir()
    with FolderLock(out / LOCK):  # the first launcher, mid-round
        assert main(["--configs", *variants(tiny_config, synth), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is being written by process" in err, err
    assert [p.name for p in out.iterdir()] == [LOCK]


def test_a_missing_data_folder_is_refused_before_any_run(tiny_config, synth, tmp_path, capsys):
    good, bad = variants(tiny_config, synth, epochs=1)
    raw = yaml.safe_load(Path(bad).read_text())
    raw["data"]["path"] = str(tmp_path / "missing")
    Path(bad).write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    assert main(["--configs", good, bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing: no such folder" in err, err
    assert not out.exists()


def test_slurm_scripts_run_train_saliency_under_torchrun(
    tiny_config, synth, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(train.slurm.shutil, "which", lambda name: None)
    out = tmp_path / "runs"
    args = ["--configs", *variants(tiny_config, synth), "--out", str(out), "--launcher", "slurm"]
    assert main([*args, "--gpus-per-run", "2"]) == 0
    assert "sbatch not found" in capsys.readouterr().out
    script = (out / "slurm" / "entropy_reg_tiny.sbatch").read_text()
    assert "#SBATCH --job-name=train-saliency-entropy_reg_tiny" in script
    assert "--nproc_per_node=2 -m train.saliency --config" in script
    assert script.rstrip().endswith("--resume") and script.count("--resume") == 1
    assert os.access(out / "slurm" / "baseline_tiny.sbatch", os.X_OK)


def test_bad_input_is_one_line_exit_2(tiny_config, synth, tmp_path, capsys):
    base = str(tiny_config("baseline", synth))
    assert main(["--configs", base, base, "--out", str(tmp_path / "o")]) == 2
    assert "both name their run 'baseline_tiny'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {path: /x, image_size: 30}\n")
    assert main(["--configs", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "multiple of 8" in err
    run = tmp_path / "o" / "baseline_tiny"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"x")
    assert main(["--configs", base, "--out", str(tmp_path / "o")]) == 2
    assert "add --resume" in capsys.readouterr().err


def test_epochs_past_the_bound_are_one_line_before_any_script(
    tiny_config, synth, tmp_path, monkeypatch, capsys
):
    """--epochs 1e30 went into every run's command (and Slurm script) and trained for ever."""
    monkeypatch.setattr(train.slurm.shutil, "which", lambda name: None)
    out = tmp_path / "runs"
    args = ["--configs", *variants(tiny_config, synth), "--out", str(out), "--launcher", "slurm"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--epochs", str(10**30)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1, err
    assert "--epochs: must be 1..100000, got 1000000000000000000000000000000" in err
    assert not out.exists()


GOOD_RESULTS = {
    "epochs": 1,
    "best_epoch": 1,
    "val_info_gain": 0.5,
    "test": {"nss": 1.0},
    "entropy": {"weight": 0.1, "direction": "maximize"},
}
DAMAGE = {  # the damage, and what the warning says of it
    "a list": ("[1]", "not a JSON object"),
    "a FIFO": (None, "not a regular file"),
    "a text test record": ({"test": "x"}, "test is 'x', not an object"),
    "a text val_info_gain": ({"val_info_gain": "x"}, "val_info_gain is 'x', not a finite number"),
    "a text test metric": ({"test": {"nss": "x"}}, "test nss is 'x', not a finite number"),
    "a text entropy": ({"entropy": "x"}, "entropy is 'x', not an object"),
    "an entropy without direction": (
        {"entropy": {"weight": 0.1}},
        "entropy direction is None, not maximize or minimize",
    ),
    "a test metric past a float's range": (
        {"test": {"auc": 10**400}},
        "...0000000000000000000, not a finite number",  # its 401 digits shortened
    ),
    "a NaN val_info_gain": ({"val_info_gain": float("nan")}, "val_info_gain is nan, not a"),
    "an infinite val_info_gain": ({"val_info_gain": float("inf")}, "val_info_gain is inf, not a"),
    "a direction splitting the row": (
        {"entropy": {"weight": 0.1, "direction": "max|imize\n| evil"}},
        "entropy direction is 'max|imize\\n| evil', not maximize or minimize",
    ),
    "a fractional best_epoch": ({"best_epoch": 3.0}, "best_epoch is 3.0, not a whole number"),
    "an AUC past 1": ({"test": {"auc": 2.0}}, "test auc is 2.0, outside [0, 1]"),
    "JSON nested too deeply": ("[" * 200_000, "is damaged (nested too deeply)"),
}


@pytest.mark.parametrize("damage, said", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_results_json_leaves_only_that_variant_out(tmp_path, capsys, damage, said):
    """Read bare, a list was a traceback in the report and a FIFO hung it; a text number or
    entropy (a TypeError, ValueError, AttributeError or KeyError), a number past a float's
    range (OverflowError) or JSON nested too deeply (RecursionError) lost every variant's
    report; a NaN or infinite val_info_gain was ranked first, and a direction holding "|"
    and a newline split its row."""
    from train.saliency.summary import write_summary
    from train.summary import RunStatus

    for name in ("good", "bad"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(GOOD_RESULTS))
    bad = tmp_path / "bad" / "results.json"
    if damage is None:
        bad.unlink()
        os.mkfifo(bad)
    else:
        bad.write_text(
            damage if isinstance(damage, str) else json.dumps({**GOOD_RESULTS, **damage})
        )
    rows = write_summary(tmp_path, [RunStatus("bad", "done"), RunStatus("good", "done")])
    assert [r["variant"] for r in rows] == ["good", "bad"]
    assert rows[0]["val_info_gain"] == 0.5 and rows[0]["test_nss"] == 1.0
    assert rows[1]["test_nss"] is None and rows[1]["val_info_gain"] is None
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[2:] == [
        "| good | done | maximize x0.1 | 1 | +0.5000 | - | 1.000 | - | - | - | - | - |",
        "| bad | done | none | - | - | - | - | - | - | - | - | - |",
    ]
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"warning: {bad} ") and "\n" not in err, err
    assert said in err, err


def test_a_bar_or_line_break_in_a_name_or_error_splits_no_line_of_the_report(tmp_path):
    from train.saliency.summary import write_summary
    from train.summary import RunStatus

    (tmp_path / "a|b").mkdir()
    (tmp_path / "a|b" / "results.json").write_text(json.dumps(GOOD_RESULTS))
    write_summary(tmp_path, [RunStatus("a|b", "done"), RunStatus("c", "failed", error="x|\ny")])
    assert (tmp_path / "summary.md").read_text().splitlines()[2:] == [
        "| a\\|b | done | maximize x0.1 | 1 | +0.5000 | - | 1.000 | - | - | - | - | - |",
        "| c | failed | none | - | - | - | - | - | - | - | - | - |",
        "",
        "- **c** failed: x|\\ny",
    ]


def test_a_variant_not_finished_this_round_ranks_after_those_that_did(tmp_path):
    """A variant that failed resuming to 4 epochs ranked first on its 3-epoch results.json,
    its status a bare "failed", as if those were this round's numbers."""
    from train.saliency.summary import write_summary
    from train.summary import RunStatus

    for name, changes in (("old", {"epochs": 3, "val_info_gain": 0.9}), ("new", {"epochs": 4})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({**GOOD_RESULTS, **changes}))
    failed = RunStatus("old", "failed", error="exit status 1: damaged")
    rows = write_summary(tmp_path, [failed, RunStatus("new", "done")])
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[2].startswith("| new | done | maximize x0.1 | 1 | +0.5000 |"), table
    assert table[3].startswith("| old | failed (numbers from epoch 3) | "), table
    assert [(r["variant"], r.get("current"), r["epochs"]) for r in rows] == [
        ("new", True, 4),
        ("old", False, 3),
    ]
