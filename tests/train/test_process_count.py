"""A run keeps its process count: the batch size is per process, so a resume under another
count changed the batch and restarted the learning-rate schedule against another total."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train.__main__ import main
from train.checkpoint import CheckpointError, load_checkpoint
from train.distributed import process_count_change
from train.evaluate import main as evaluate
from train.jepa.evaluate import main as jepa_evaluate
from train.run_folder import what_is_kept
from train.trajectory.cli import stop_message

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--workers", "0", "--threads", "1", "--quiet"]


def train(dataset: Path, out: Path, *extra: str) -> int:
    argv = ["--extractor", "i3d", "--data", str(dataset), "--out", str(out), *FAST, *extra]
    return main(argv)


def run_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}


def edit_last(out: Path, change) -> None:  # noqa: ANN001
    state = torch.load(out / "last.pt", weights_only=True)
    change(state)
    torch.save(state, out / "last.pt")


@pytest.fixture(scope="module")
def one_epoch(dataset, tmp_path_factory) -> Path:
    """A one-process run of one epoch, to copy and resume."""
    out = tmp_path_factory.mktemp("count") / "run"
    assert train(dataset, out, "--epochs", "1") == 0
    return out


def copy_of(run: Path, where: Path) -> Path:
    out = where / "run"
    out.mkdir()
    for p in run.iterdir():
        if p.is_file():
            (out / p.name).write_bytes(p.read_bytes())
    return out


def test_the_checkpoint_records_the_process_count(one_epoch):
    assert load_checkpoint(one_epoch / "last.pt")["world_size"] == 1


def test_a_resume_by_another_process_count_is_one_line_exit_2(one_epoch, tmp_path, capsys):
    """A run of 2 processes resumed alone was accepted: it ended at lr 1.55e-4, not 1e-5."""
    out = copy_of(one_epoch, tmp_path)
    edit_last(out, lambda s: s.update(world_size=2))
    files = run_files(out)
    capsys.readouterr()
    assert main(["--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "trained by 2 process(es) and this job has 1" in err
    assert "resume it under torchrun --nproc_per_node 2" in err
    assert run_files(out) == files


def test_the_refusal_names_both_counts_either_way(monkeypatch, tmp_path):
    last = tmp_path / "last.pt"
    monkeypatch.setenv("WORLD_SIZE", "2")
    said = process_count_change({"world_size": 1}, last)
    assert said and "trained by 1 process(es) and this job has 2" in said
    assert "resume it without torchrun" in said
    assert process_count_change({"world_size": 2}, last) is None
    monkeypatch.delenv("WORLD_SIZE")
    assert process_count_change({"world_size": 1}, last) is None


def test_an_old_checkpoint_of_another_process_count_is_told_by_its_steps(
    one_epoch, tmp_path, capsys
):
    """A checkpoint from before the count was recorded: its scheduler's steps tell a run of
    another count (here as 2 processes take half the steps of one)."""
    out = copy_of(one_epoch, tmp_path)
    steps = load_checkpoint(out / "last.pt")["scheduler"]["last_epoch"]

    def old_of_two(state: dict) -> None:
        del state["world_size"]
        state["scheduler"]["last_epoch"] = steps // 2

    edit_last(out, old_of_two)
    files = run_files(out)
    capsys.readouterr()
    assert main(["--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"took {steps // 2} steps in 1 epoch(s)" in err and f"take {steps} an epoch" in err
    assert run_files(out) == files


def test_an_old_checkpoint_of_this_process_count_resumes(one_epoch, tmp_path):
    out = copy_of(one_epoch, tmp_path)
    edit_last(out, lambda s: s.pop("world_size"))
    assert main(["--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    assert json.loads((out / "results.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("count", ["two", 0, True])
def test_a_process_count_of_another_type_is_not_a_checkpoint(one_epoch, tmp_path, count):
    out = copy_of(one_epoch, tmp_path)
    edit_last(out, lambda s: s.update(world_size=count))
    with pytest.raises(CheckpointError, match="world_size is not a whole number above 0"):
        load_checkpoint(out / "last.pt")


@pytest.mark.parametrize(
    "command, argv",
    [
        (evaluate, ["RUN", "--data", "DATA"]),
        (jepa_evaluate, ["--checkpoint", "last.pt", "--dataset", "synthetic"]),
    ],
)
def test_an_evaluation_under_torchrun_is_one_line_from_rank_0(
    command, argv, monkeypatch, tmp_path, capsys
):
    """Each rank took the others for another command holding the lock (train.evaluate), or
    scored everything and printed it again (train.jepa.evaluate). Rank 0 says so, exit 2;
    the others leave quietly, as a rank that fails first makes torchrun stop rank 0."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert command(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        "error: it runs in one process: run it without torchrun\n"
    ), err
    monkeypatch.setenv("RANK", "1")
    assert command(argv) == 0
    assert capsys.readouterr().err == ""
    assert list(tmp_path.iterdir()) == []


def test_a_stop_under_torchrun_names_another_process_s_failure(monkeypatch, tmp_path):
    """torchrun stops every process when one fails; rank 0 said only "run the same command
    again", which met the same failure."""
    alone = stop_message(tmp_path)
    assert alone == what_is_kept(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    said = stop_message(tmp_path)
    assert said.startswith(alone) and "torchrun stops all processes when one fails" in said


def torchrun(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        *argv,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_a_torchrun_run_resumes_under_torchrun_only(dataset, tmp_path, capsys):
    """About 40 s: two processes train epoch 1; one process may not resume it; two do."""
    out = tmp_path / "ddp"
    args = ["-m", "train", "--extractor", "i3d", "--data", str(dataset), "--out", str(out)]
    proc = torchrun(*args, "--epochs", "1", *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = run_files(out)
    assert main(["--resume", "--out", str(out), "--epochs", "2", "--quiet"]) == 2
    assert "trained by 2 process(es) and this job has 1" in capsys.readouterr().err
    assert run_files(out) == files
    proc = torchrun("-m", "train", "--resume", "--out", str(out), "--epochs", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["epochs"] == 2


@pytest.mark.slow
def test_train_evaluate_under_torchrun_says_so_once(dataset, tmp_path):
    """About 10 s: each rank said another process was writing the evaluations (its twin),
    and rank 0 then said "interrupted"."""
    proc = torchrun("-m", "train.evaluate", str(tmp_path), "--data", str(dataset))
    said = "python -m train.evaluate: error: it runs in one process: run it without torchrun"
    assert proc.returncode != 0 and proc.stderr.count(said) == 1, proc.stderr[-2000:]
    assert "exitcode  : 2" in proc.stderr  # rank 0's, not a SIGTERM's
    assert "interrupted" not in proc.stderr and "being written" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
