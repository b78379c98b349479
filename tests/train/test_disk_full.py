"""A disk that fills during training: one line naming the file, exit 1, the last finished
epoch kept, and --resume goes on once there is room (the JEPA and saliency trainers' own
tests use the same fixture)."""

import json

from train.trajectory.cli import main as train

from .conftest import assert_stopped_naming_tensorboard, assert_stopped_on_the_full_disk

FAST = ["--workers", "0", "--threads", "1", "--quiet"]


def test_a_full_disk_stops_the_run_in_one_line_and_resume_goes_on(
    dataset, tmp_path, disk_full_after_first_last_pt, capsys
):
    run = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "2", "--out", str(run)]
    with disk_full_after_first_last_pt():
        assert train([*argv, *FAST]) == 1
    assert_stopped_on_the_full_disk(capsys, run)
    assert train(["--out", str(run), "--resume", *FAST]) == 0
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]


def test_a_full_disk_at_tensorboard_s_first_write_names_its_folder(
    dataset, tmp_path, tensorboard_disk_full, capsys
):
    run = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", str(run)]
    assert train([*argv, *FAST]) == 1
    assert_stopped_naming_tensorboard(capsys, run)


SCRIPT = """
import errno, sys
from tensorboard.summary.writer.record_writer import RecordWriter
from train.run_folder import RunFolder

writer = RunFolder(sys.argv[1]).tensorboard()

def full(self, data):
    raise OSError(errno.ENOSPC, "No space left on device")

RecordWriter.write = full
try:
    for step in range(1000):  # the thread fails at its first write; a later one raises
        writer.add_scalar("x", 1.0, step)
        writer.flush()
except OSError:
    print("the main thread got it")
"""


def test_a_failed_tensorboard_write_is_the_trainer_s_error_alone(tmp_path):
    """TensorBoard's writer thread also printed its own traceback after the one error line
    (in a process of its own: pytest catches thread errors itself)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-c", SCRIPT, str(tmp_path / "run")]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=root, timeout=120)
    assert done.stdout.strip() == "the main thread got it", done.stderr
    assert "Traceback" not in done.stderr, done.stderr
