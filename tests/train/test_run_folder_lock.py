"""One writer per run folder: a second trainer on the same --out (any of the three) is one
line and exit 2 while the first holds it, and writes nothing there."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from train.jepa.train import main as jepa_main
from train.run_folder import LOCK, RunFolderBusy, writing_to
from train.saliency.__main__ import main as saliency_main
from train.trajectory.cli import main as trajectory_main
from trajkit.lock import FolderLock

ROOT = Path(__file__).resolve().parents[2]

TRAINERS = {
    "trajectory": lambda out: trajectory_main(["--out", str(out), "--resume", "--quiet"]),
    "jepa": lambda out: jepa_main(["--config", "cifar10", "--out", str(out), "--force"]),
    "saliency": lambda out: saliency_main(["--config", "baseline_tiny", "--out", str(out)]),
}


@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_second_trainer_on_a_held_folder_is_refused_and_writes_nothing(trainer, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"the first run's checkpoint")
    with FolderLock(out / LOCK):  # the first process, mid-run
        assert TRAINERS[trainer](out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is being written by process" in err, err
    assert sorted(p.name for p in out.iterdir()) == [LOCK, "last.pt"]
    assert (out / "last.pt").read_bytes() == b"the first run's checkpoint"  # --force kept it


def test_a_folder_made_for_a_refused_run_is_removed_again(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert trajectory_main(["--out", str(out), "--quiet"]) == 2  # no --extractor, no --data
    assert "a new run needs --extractor" in capsys.readouterr().err
    assert not out.exists()


def test_the_lock_is_free_again_after_the_run_and_for_other_ranks(tmp_path, monkeypatch):
    with writing_to(tmp_path):
        pass
    with writing_to(tmp_path):  # released: taken again
        with pytest.raises(RunFolderBusy, match="is being written by process"):
            with writing_to(tmp_path):
                pass
        monkeypatch.setenv("RANK", "1")  # alone (no WORLD_SIZE), still the writer: locked
        with pytest.raises(RunFolderBusy):
            with writing_to(tmp_path):
                pass
        monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's other ranks write nothing: no lock
        with writing_to(tmp_path):
            pass


def test_two_trainings_launched_on_one_folder_do_not_interleave(tmp_path, dataset):
    """The reported race: two ``--resume`` on one run both trained, each appending its epochs
    to metrics.jsonl. Now the second is refused while the first trains."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "train", "--data", str(dataset), "--out"]
    command += [str(out), "--extractor", "i3d", "--epochs", "30", "--threads", "1", "--quiet"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not (out / "last.pt").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert first.poll() is None, "the first run ended before the second started"
        second = subprocess.run([*command, "--resume"], capture_output=True, text=True, cwd=ROOT)
        assert second.returncode == 2 and "is being written by process" in second.stderr
    finally:
        first.kill()
        first.wait()


def test_a_refused_run_leaves_no_folder_it_made_not_even_a_parent(tmp_path, capsys):
    """`train.jepa --config cifar10` without the data left an empty runs/jepa behind (its
    run folder is runs/jepa/cifar10); folders that were there before stay."""
    (tmp_path / "kept").mkdir()
    out = tmp_path / "kept" / "runs" / "jepa" / "cifar10"
    argv = ["--config", "cifar10", "--data-path", str(tmp_path / "nodata"), "--out", str(out)]
    assert jepa_main(argv) == 2
    assert "not usable" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert not any((tmp_path / "kept").iterdir())


def test_a_parent_someone_wrote_into_meanwhile_stays(tmp_path):
    out = tmp_path / "runs" / "a" / "b"
    with writing_to(out):
        (tmp_path / "runs" / "theirs.txt").write_text("x")
    assert not (tmp_path / "runs" / "a").exists()
    assert (tmp_path / "runs" / "theirs.txt").read_text() == "x"
