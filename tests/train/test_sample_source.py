"""python -m train: where a run's samples come from (a dataset folder or --render) and what
a --resume may point at instead."""

import subprocess
import sys
from pathlib import Path

import pytest

from train.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--workers", "0", "--threads", "1", "--quiet", "--batch-size", "4"]
SIZES = ["--epoch-samples", "8", "--eval-samples", "4"]
SMALL = "image_size: 32\nframes: 8\n"


def run(*argv, epochs: int = 1) -> int:
    try:
        return main(["--extractor", "i3d", "--epochs", str(epochs), *map(str, argv), *FAST])
    except SystemExit as e:  # argparse
        return e.code


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def rendered(tmp_path) -> tuple[Path, Path]:
    """A one-epoch run on samples rendered from ``gen.yaml`` (32 px, 8 frames)."""
    config, out = tmp_path / "gen.yaml", tmp_path / "rendered"
    config.write_text(SMALL)
    assert run("--render", config, "--out", out, *SIZES) == 0
    return config, out


def test_resume_compares_what_the_render_config_draws_not_its_path(rendered, tmp_path, capsys):
    """An edited generator config resumed on other clips, exit 0; a copy of it elsewhere
    was refused as a change of render."""
    config, out = rendered
    before = (out / "last.pt").read_bytes()
    config.write_text("image_size: 48\nframes: 8\n")
    for argv in (["--render", config], []):  # as given again, or as the run saved it
        assert run("--out", out, "--resume", *argv, epochs=2) == 2
        err = one_error(capsys)
        assert f"{config} renders other samples than this run trained on" in err, err
    assert (out / "last.pt").read_bytes() == before
    copy = tmp_path / "elsewhere" / "same.yaml"
    copy.parent.mkdir()
    copy.write_text("# the same clips, written otherwise\nframes: 8\nimage_size: 32\n")
    assert run("--render", copy, "--out", out, "--resume", epochs=2) == 0
    assert (out / "config.yaml").read_text().count(f"render: {copy}") == 1


def test_resume_cannot_swap_rendered_samples_and_a_dataset_folder(
    rendered, dataset, tmp_path, capsys
):
    """--data on a rendered run said 'saved config: give exactly one of data and render'."""
    _, out = rendered
    assert run("--data", dataset, "--out", out, "--resume", epochs=2) == 2
    err = one_error(capsys)
    assert "the run trained on samples rendered on the fly" in err, err
    assert "--data cannot replace them" in err, err
    folder_run = tmp_path / "folder"
    assert run("--data", dataset, "--out", folder_run) == 0
    assert run("--render", "--out", folder_run, "--resume", epochs=2) == 2
    err = one_error(capsys)
    assert f"the run trained on the dataset folder {dataset}; --render cannot replace it" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--epoch-samples", "8"], "epoch_samples (--epoch-samples): for samples rendered"),
        (["--eval-samples", "4"], "eval_samples (--eval-samples): for samples rendered"),
        (["--render-seed", "3"], "render_seed (--render-seed): for samples rendered"),
        (["--config", "render.yaml"], "epoch_samples (--epoch-samples): for samples rendered"),
    ],
)
def test_render_settings_without_render_are_refused(
    dataset, tmp_path, capsys, monkeypatch, argv, expected
):
    """--epoch-samples with --data was stored in config.yaml and never used."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "render.yaml").write_text("epoch_samples: 8\n")
    assert run("--data", dataset, "--out", tmp_path / "r", *argv) == 2
    assert expected in one_error(capsys)
    assert not (tmp_path / "r").exists()


def test_render_settings_on_the_resume_of_a_folder_run_are_refused(dataset, tmp_path, capsys):
    out = tmp_path / "folder"
    assert run("--data", dataset, "--out", out) == 0
    assert run("--out", out, "--resume", "--epoch-samples", "1600", epochs=2) == 2
    assert "epoch_samples (--epoch-samples): for samples rendered" in one_error(capsys)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # ran until killed
        (["--eval-samples", "9999999999999"], "--eval-samples: must be 1..4294967296"),
        # an OverflowError traceback from DistributedSampler
        (["--epoch-samples", "99999999999999999999"], "--epoch-samples: must be 1..4294967296"),
        # 'out of memory ... lower the batch size'
        (["--epoch-samples", "4294967296"], "more than the 4,294,967,296 indices of a stream"),
        (
            ["--epoch-samples", "2147483648", "--epochs", "2"],
            "is 4,294,967,696 rendered samples, more than",
        ),
    ],
)
def test_rendered_sample_counts_beyond_the_stream_are_one_line(tmp_path, argv, expected):
    """In a subprocess with a timeout: the first case ran until killed."""
    config = tmp_path / "gen.yaml"
    config.write_text(SMALL)
    command = [sys.executable, "-m", "train", "--extractor", "i3d", "--epochs", "1", *FAST]
    command += ["--render", str(config), "--out", str(tmp_path / "r"), *argv]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv} still ran after 120 s")
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert expected in err, err
    assert not (tmp_path / "r").exists()


def test_an_epoch_too_large_to_shuffle_in_memory_is_named(tmp_path, capsys, monkeypatch):
    """An epoch the machine cannot shuffle failed at its start as 'out of memory (a tensor of
    32 GiB); lower the batch size or the data workers'."""
    from train.trajectory import preflight

    monkeypatch.setattr(preflight, "physical_memory", lambda: 2**30)
    config = tmp_path / "gen.yaml"
    config.write_text(SMALL)
    assert run("--render", config, "--out", tmp_path / "r", "--epoch-samples", 10**8) == 2
    err = one_error(capsys)
    assert "--epoch-samples 100,000,000: shuffling an epoch takes about 4.47 GiB" in err, err
    assert "more than the 1 GiB of this machine's memory" in err, err
