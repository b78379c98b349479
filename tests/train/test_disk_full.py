"""A disk that fills during training: one line naming the file, exit 1, the last finished
epoch kept, and --resume goes on once there is room (the JEPA and saliency trainers' own
tests use the same fixture)."""

import json

from train.trajectory.cli import main as train

from .conftest import assert_stopped_on_the_full_disk

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
