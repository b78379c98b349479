"""python -m train.parallel: a round, --top K --resume, a failed run, Ctrl-C, slurm scripts, bad input."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

import train.slurm
from train.checkpoint import load_checkpoint
from train.run_folder import LOCK
from train.trajectory.config import build_config
from train.trajectory.parallel import main
from trajkit.lock import FolderLock

ROOT = Path(__file__).resolve().parents[2]


def summary(out: Path) -> dict[str, dict]:
    return {r["extractor"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}


def last_epoch(run: Path) -> int:
    return load_checkpoint(run / "last.pt")["epoch"]


@pytest.mark.slow  # 27 s: two real rounds; choose_top's ranking has fast tests
def test_round_then_top_k_continues_only_the_best(dataset, tmp_path, capsys):
    out = tmp_path / "runs"
    base = ["--data", str(dataset), "--out", str(out), "--workers", "0"]
    assert main(["--extractors", "i3d", "transformer", "--epochs", "1", *base]) == 0
    rows = summary(out)
    assert set(rows) == {"i3d", "transformer"} and all(r["status"] == "done" for r in rows.values())
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["parameters"] > 0 for r in rows.values())
    table = (out / "summary.md").read_text()
    assert "| extractor |" in table and "| i3d |" in table and "| transformer |" in table
    png = (out / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    # the best run by its own results.json (higher val accuracy, then lower future RMSE),
    # not by summary.json's order, which the launcher's own ranking wrote
    results = {n: json.loads((out / n / "results.json").read_text()) for n in rows}
    merit = {n: (r["val_accuracy"], -r["val_future_rmse"]) for n, r in results.items()}
    assert merit["i3d"] != merit["transformer"], "a tie cannot tell a ranking from its reverse"
    best, other = sorted(merit, key=merit.get, reverse=True)
    assert (
        main(["--top", "1", "--epochs", "2", "--resume", "--out", str(out), "--workers", "0"]) == 0
    )
    assert last_epoch(out / best) == 2, "the best run was not continued"
    assert last_epoch(out / other) == 1, "a run outside the top K was trained again"
    assert set(summary(out)) == {"i3d", "transformer"}, "the summary forgot the earlier run"


def test_config_is_every_runs_recipe(dataset, tmp_path):
    recipe = tmp_path / "colour.yaml"
    recipe.write_text("position_channels: false\nfusion_dim: 48\n")
    out = tmp_path / "runs"
    args = ["--extractors", "i3d", "magvit", "--epochs", "1", "--config", str(recipe)]
    assert main([*args, "--data", str(dataset), "--out", str(out), "--workers", "0"]) == 0
    for name in ("i3d", "magvit"):
        used = yaml.safe_load((out / name / "config.yaml").read_text())
        assert used["position_channels"] is False and used["fusion_dim"] == 48, name


def test_config_may_name_a_shipped_recipe(dataset, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "train.trajectory.parallel.LocalLauncher.run_to_end",
        lambda self, prog, message, before_start: seen.update(self.jobs) or 0,
    )
    args = ["--extractors", "i3d", "--epochs", "1", "--config", "colour"]
    assert main([*args, "--data", str(dataset), "--out", str(tmp_path / "runs")]) == 0
    given = Path(next(a for a in seen["i3d"] if a.startswith("--config=")).split("=", 1)[1])
    assert given.is_absolute() and given.samefile(ROOT / "configs" / "train" / "colour.yaml")


def test_bench_train_levels_with_distractors_train_on_colour(bench):
    for level in bench.LEVELS:
        generator = yaml.safe_load((ROOT / "configs" / "generator" / f"{level}.yaml").read_text())
        has_distractors = bool((generator.get("distractors") or {}).get("count"))
        assert (level in bench.RECIPES) == has_distractors, level
        if has_distractors:
            values = {"extractor": "i3d", "data": "d", "epochs": 1, "out": "o"}
            assert build_config(values, bench.RECIPES[level]).position_channels is False, level


def test_a_second_launch_on_a_held_folder_is_refused_and_starts_nothing(dataset, tmp_path, capsys):
    """Two launchers on one --out would both rewrite summary.md and comparison.png."""
    out = tmp_path / "runs"
    out.mkdir()
    args = ["--extractors", "i3d", "--epochs", "1", "--data", str(dataset), "--out", str(out)]
    with FolderLock(out / LOCK):  # the first launcher, mid-round
        assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is being written by process" in err, err
    assert [p.name for p in out.iterdir()] == [LOCK]  # no run started, no summary written


def test_one_failed_run_does_not_stop_the_others(dataset, tmp_path):
    out = tmp_path / "runs"
    (out / "transformer").mkdir(parents=True)
    (out / "transformer" / "last.pt").write_bytes(b"not a checkpoint")
    args = ["--extractors", "i3d", "transformer", "--epochs", "1", "--resume"]
    assert main([*args, "--data", str(dataset), "--out", str(out), "--workers", "0"]) == 1
    rows = summary(out)
    assert rows["i3d"]["status"] == "done" and rows["i3d"]["val_accuracy"] is not None
    assert rows["transformer"]["status"] == "failed"
    assert "last.pt is damaged" in rows["transformer"]["error"]
    assert "last.pt is damaged" in (out / "summary.md").read_text()


def test_ctrl_c_stops_every_run_and_leaves_resumable_checkpoints(dataset, tmp_path):
    out = tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "train.parallel", "--extractors", "i3d", "transformer",
        "--epochs", "50", "--data", str(dataset), "--out", str(out), "--workers", "0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not all((out / n / "last.pt").exists() for n in ("i3d", "transformer")):
            if proc.poll() is not None:
                pytest.fail(f"the launcher exited before epoch 1: {proc.communicate()}")
            assert time.monotonic() < deadline, "runs did not reach epoch 1"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    for pid in map(int, re.findall(r"pid (\d+)", stdout)):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every child is gone
    rows = summary(out)
    for name in ("i3d", "transformer"):
        assert rows[name]["status"] == "interrupted", rows[name]["error"]
        assert 1 <= last_epoch(out / name) < 50


@pytest.mark.slow  # an epoch of a real run: about 20 s, a minute on a busy machine
def test_a_run_whose_launcher_is_killed_stops_and_says_so_in_its_log(dataset, tmp_path):
    """After kill -9 of the launcher the run's log ended at its last epoch line: its stop line
    went to the dead launcher's pipe (or it was killed where it stood)."""
    out = tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "train.parallel", "--extractors", "i3d", "--epochs", "50",
        "--data", str(dataset), "--out", str(out), "--workers", "0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    log = out / "i3d" / "train.log"
    try:
        run = int(re.search(r"pid (\d+)", proc.stdout.readline() + proc.stdout.readline())[1])
        deadline = time.monotonic() + 120
        while "epoch 1/50" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, "no epoch 1 in 120 s"
            time.sleep(0.2)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 90
        while psutil.pid_exists(run) and psutil.Process(run).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the run outlived its launcher by 90 s"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    lines = log.read_text().splitlines()
    assert lines[-2:] == [
        f"the launcher (pid {proc.pid}) is gone: stopping this run",
        f"interrupted: {out / 'i3d' / 'last.pt'} holds the last finished epoch, continue with "
        "--resume",
    ], lines
    assert 1 <= last_epoch(out / "i3d") < 50
    assert not [p.name for p in (out / "i3d").iterdir() if p.name.startswith(".tmp-")]


def test_slurm_writes_scripts_and_submits_with_sbatch(dataset, tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "Submitted batch job 42"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "runs"
    args = [
        "--extractors",
        "i3d",
        "magvit",
        "--data",
        str(dataset),
        "--epochs",
        "3",
        "--out",
        str(out),
    ]
    assert main([*args, "--launcher", "slurm", "--gpus-per-run", "2", "--time", "01:00:00"]) == 0
    script = (out / "slurm" / "i3d.sbatch").read_text()
    assert "#SBATCH --gres=gpu:2" in script and "#SBATCH --requeue" in script
    assert "#SBATCH --time=01:00:00" in script
    assert "torch.distributed.run" in script and "--nproc_per_node=2" in script
    assert "--extractor i3d" in script and script.rstrip().endswith("--resume")
    submitted = [line.split() for line in calls.read_text().splitlines()]
    assert [call[-1] for call in submitted] == [
        str(out / "slurm" / f"{n}.sbatch") for n in ("i3d", "magvit")
    ]
    assert all((out / n).is_dir() for n in ("i3d", "magvit")), (
        "log folders must exist before sbatch"
    )

    monkeypatch.setattr(train.slurm.shutil, "which", lambda name: None)
    assert main([*args[:-1], str(tmp_path / "other"), "--launcher", "slurm"]) == 0
    assert "sbatch not found" in capsys.readouterr().out
    assert (tmp_path / "other" / "slurm" / "magvit.sbatch").exists()


def test_slurm_checks_the_runs_values_but_not_the_clusters_paths(tmp_path, monkeypatch, capsys):
    """A bad value in --config wrote scripts (exit 0) that every job refused on the cluster;
    the dataset, there and not here, is still not looked for."""
    monkeypatch.setattr(train.slurm.shutil, "which", lambda name: None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: -1\n")
    out = tmp_path / "runs"
    args = ["--extractors", "i3d", "--data", "/cluster/only/data", "--epochs", "1"]
    assert main([*args, "--out", str(out), "--launcher", "slurm", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "i3d: lr: Input should be greater than 0" in err, err
    assert not (out / "slurm").exists()
    assert main([*args, "--out", str(out), "--launcher", "slurm"]) == 0
    assert (out / "slurm" / "i3d.sbatch").is_file()


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--extractors", "i3d", "nope", "--epochs", "1"],
            "known: i3d, magvit, slowfast, transformer",
        ),
        (["--top", "2", "--epochs", "3"], "add --resume"),
        (["--top", "2", "--epochs", "3", "--resume"], "no finished run"),
        (["--extractors", "i3d", "--epochs", "x"], "--epochs"),
        (["--extractors", "i3d", "--epochs", "1", "--config", "nope"], "neither a file nor"),
        (["--extractors", "i3d", "--epochs", "1", "--config", "no/such.yaml"], "is not a file"),
    ],
)
def test_bad_input_is_one_line_exit_2(dataset, tmp_path, capsys, args, expected):
    try:
        code = main([*args, "--data", str(dataset), "--out", str(tmp_path / "runs")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1, err


def test_bench_train_budget_is_the_levels_unless_flags_give_it(bench):
    defaults = argparse.Namespace(n=None, epochs=None)
    assert {level: bench.budget(level, defaults) for level in bench.LEVELS} == bench.BUDGETS
    seen = {level: round(n * 0.8) * epochs for level, (n, epochs) in bench.BUDGETS.items()}
    assert seen == {"easy": 16_000, "medium": 16_000, "hard": 32_000}  # BUDGETS says why
    assert bench.budget("hard", argparse.Namespace(n=300, epochs=2)) == (300, 2)


CHILD = """
import signal, sys, time
from pathlib import Path
def stop(signum, frame):
    time.sleep(0.5)  # stopping its runs takes a while
    Path(sys.argv[1], "stopped").write_text("")
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
Path(sys.argv[1], "started").write_text("")
time.sleep(60)
"""

BENCH_RUNS_CHILD = """
import importlib.util, sys
from trajkit.cli import exit_on_interrupt
spec = importlib.util.spec_from_file_location("bench_train", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
sys.exit(exit_on_interrupt(lambda: bench.run([sys.executable, "-c", sys.argv[2], sys.argv[3]]), "x"))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_bench_train_stopped_lets_its_child_stop_its_runs(tmp_path, signum):
    """A stopped bench forwards one SIGINT to its generator or train.parallel and waits, so
    they stop their own runs; before, subprocess.call SIGKILLed the child and its four
    training runs went on without it."""
    script = str(ROOT / "benchmarks" / "bench_train.py")
    bench = subprocess.Popen(
        [sys.executable, "-c", BENCH_RUNS_CHILD, script, CHILD, str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (tmp_path / "started").exists() and time.time() < deadline:
        time.sleep(0.05)
    bench.send_signal(signum)
    _, err = bench.communicate(timeout=60)
    assert bench.returncode == 130 and err.strip() == "interrupted: x", err
    assert (tmp_path / "stopped").exists(), "the child was killed before it could stop"


@pytest.mark.parametrize("fails", ["once", "always"])
def test_a_summary_that_cannot_be_written_does_not_stop_the_runs(
    dataset, tmp_path, capsys, monkeypatch, fails
):
    """A full disk when the comparison is rewritten: said once, every run trains on; the
    final summary unwritten is exit 1."""
    import errno

    import train.trajectory.parallel as parallel

    real, calls = parallel.write_summary, []

    def write_summary(out, statuses):
        calls.append(len(calls))
        if fails == "always" or len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "summary.md"))
        return real(out, statuses)

    monkeypatch.setattr(parallel, "write_summary", write_summary)
    out = tmp_path / "runs"
    args = ["--extractors", "i3d", "magvit", "--epochs", "1", "--data", str(dataset)]
    code = main([*args, "--out", str(out), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cannot write the summary in {out}: No space left on device: {out}/summary.md"]
    assert all(last_epoch(out / name) == 1 for name in ("i3d", "magvit"))
    assert len(calls) in (2, 3)  # after each poll that saw a run end (one or both), then at the end
    if fails == "once":
        assert code == 0 and set(summary(out)) == {"i3d", "magvit"}
    else:
        assert code == 1 and not (out / "summary.json").exists()


def test_a_file_where_a_run_folder_goes_is_refused_before_any_run_starts(dataset, tmp_path, capsys):
    """It was found when that run's turn came, after the others had started (exit 1)."""
    out = tmp_path / "runs"
    out.mkdir()
    (out / "magvit").write_text("")  # a file where the run's folder (and its log) goes
    args = ["--extractors", "i3d", "magvit", "--epochs", "1", "--data", str(dataset)]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"python -m train.parallel: error: {out / 'magvit'} exists and is not a folder"
    assert sorted(p.name for p in out.iterdir()) == ["magvit"]  # nothing started


LOG_IS_A_FIFO = """
import sys
from train.trajectory.parallel import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_run_log_that_is_no_regular_file_is_refused_before_any_run_starts(
    dataset, tmp_path, capsys
):
    """A FIFO at a run's train.log made the launcher wait on its open for ever; a folder
    there failed after the other runs had started. One line, exit 2, nothing starts."""
    out = tmp_path / "runs"
    log = out / "magvit" / "train.log"
    log.parent.mkdir(parents=True)
    os.mkfifo(log)
    args = ["--extractors", "i3d", "magvit", "--epochs", "1", "--data", str(dataset)]
    argv = [sys.executable, "-c", LOG_IS_A_FIFO, str(log), *args]
    done = subprocess.run(
        [*argv, "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr == f"python -m train.parallel: error: {log} is not a regular file\n"
    os.unlink(log)
    log.mkdir()
    assert main([*args, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{log} is not a regular file")
    assert sorted(p.name for p in out.rglob("*")) == ["magvit", "train.log"]  # nothing started
