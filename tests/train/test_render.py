"""python -m train --render: training on samples rendered on the fly, never read from disk."""

import json
from pathlib import Path

import pytest
import torch

from generator.config import load_config
from generator.dataformat.metadata import dataset_identity
from generator.pipeline.stream import RenderedTrajectoryDataset, stream_metadata
from train.__main__ import main
from train.checkpoint import load_checkpoint
from train.summary import data_of
from train.trajectory.loop import Run

FAST = ["--workers", "0", "--threads", "1", "--quiet", "--batch-size", "4"]
SIZES = ["--epoch-samples", "8", "--eval-samples", "4"]


def render_run(config: Path, out: Path, *extra: str, epochs: int = 2) -> int:
    args = ["--extractor", "i3d", "--render", str(config), "--render-seed", "5"]
    return main([*args, "--epochs", str(epochs), "--out", str(out), *SIZES, *FAST, *extra])


def records(out: Path) -> list[dict]:
    timing = {"train_seconds", "train_samples_per_second", "epoch_seconds"}
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in timing} for r in lines]


def test_runs_rendered_from_a_config_edited_at_one_path_are_other_data(tmp_path):
    """Named by the config's path alone, runs on other samples (the file edited between
    them) were grouped and ranked as trained on one data."""
    config = tmp_path / "gen.yaml"
    config.write_text("image_size: 32\nframes: 8\n")
    assert render_run(config, tmp_path / "a", epochs=1) == 0
    config.write_text("image_size: 32\nframes: 8\nappearance: {noise_std: 4.0}\n")
    assert render_run(config, tmp_path / "b", epochs=1) == 0
    a, b = (json.loads((tmp_path / r / "results.json").read_text()) for r in "ab")
    assert a["data"].split(", stream ")[0] == b["data"].split(", stream ")[0]
    assert data_of(a) != data_of(b)


def test_a_rendered_run_reads_fresh_samples_every_epoch(small_config, tmp_path, monkeypatch):
    seen: list[list[int]] = []
    set_epoch = RenderedTrajectoryDataset.set_epoch

    def record(self, epoch):
        set_epoch(self, epoch)
        seen.append(list(self.indices))

    monkeypatch.setattr(RenderedTrajectoryDataset, "set_epoch", record)
    out = tmp_path / "run"
    assert render_run(small_config, out) == 0
    assert seen == [list(range(8, 16)), list(range(16, 24))]
    results = json.loads((out / "results.json").read_text())
    stream = dataset_identity(stream_metadata(load_config(small_config), 5))
    assert results["data"] == (
        f"rendered:{small_config} seed 5, 4 val + 4 test, 8 train per epoch, stream {stream}"
    )
    assert results["dataset"] is None  # no folder: no dataset identity
    assert results["split_sizes"] == {"train": 16, "val": 4, "test": 4}
    assert sum(map(sum, results["test_confusion"])) == 4
    splits = json.loads((out / "splits.json").read_text())
    assert splits == {  # ranges: a stream's training indices need not fit in a list
        "train": {"start": 8, "stop": 24},
        "val": {"start": 0, "stop": 4},
        "test": {"start": 4, "stop": 8},
    }


def test_the_run_sees_the_samples_of_its_generator_config(small_config, tmp_path, monkeypatch):
    """The video shape and rig come from --render's YAML (32 px, 8 frames), not the default."""
    shapes = []
    init = Run.__init__

    def spy(self, cfg, ctx, meta, resume=None):
        init(self, cfg, ctx, meta, resume)
        shapes.append(tuple(self.val_ds[0]["video"].shape))
        assert self.val_ds.cfg == load_config(small_config)

    monkeypatch.setattr(Run, "__init__", spy)
    assert render_run(small_config, tmp_path / "run", epochs=1) == 0
    assert shapes == [(4, 3, 8, 32, 32)]


def test_rendered_run_resumes_exactly(small_config, tmp_path, monkeypatch, stop_after_first_epoch):
    assert render_run(small_config, tmp_path / "straight", epochs=3) == 0
    stop_after_first_epoch()
    broken = tmp_path / "broken"
    assert render_run(small_config, broken, epochs=3) == 130
    monkeypatch.undo()
    assert render_run(small_config, broken, "--resume", epochs=3) == 0
    assert records(broken) == records(tmp_path / "straight")
    a = load_checkpoint(broken / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--data", "x", "--render"], "exactly one of data"),
        (["--render", "missing.yaml"], "missing.yaml"),
        (["--render", "nonesuch"], "shipped generator config"),
        (["--render", "--epoch-samples", "0"], "--epoch-samples"),
    ],
)
def test_bad_render_arguments_are_one_line(tmp_path, capsys, args, expected):
    try:
        code = main(["--extractor", "i3d", "--epochs", "1", "--out", str(tmp_path / "r"), *args])
    except SystemExit as e:  # argparse's own checks exit from inside
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
