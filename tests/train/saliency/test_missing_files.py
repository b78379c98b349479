"""A stimulus that is listed but missing or damaged on disk: one line naming it, exit 1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from train.saliency.__main__ import main
from train.saliency.convert import main as convert
from train.saliency.verify import main as verify


def broken_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "gone.jpeg")


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def fifo(path: Path) -> None:
    """Opening it would block for ever."""
    path.unlink()
    os.mkfifo(path)


def folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def uncapped(path: Path) -> str:
    """The config with every stimulus used, so the damaged one is read."""
    raw = yaml.safe_load(path.read_text())
    raw["data"].update(max_train_stimuli=None, max_val_stimuli=None)
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture
def images(synth, tmp_path) -> Path:
    copy = tmp_path / "MIT1003"
    shutil.copytree(synth, copy)
    return copy


@pytest.mark.parametrize("damage", [broken_link, emptied, truncated, fifo, folder])
def test_training_names_the_stimulus(tiny_config, images, tmp_path, capsys, damage):
    victim = sorted((images / "ALLSTIMULI").iterdir())[3]
    damage(victim)
    out = tmp_path / "run"
    assert (
        main(["--config", uncapped(tiny_config("baseline", images)), "--out", str(out), "--quiet"])
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and victim.name in err and "Traceback" not in err, err
    assert not (out / "last.pt").exists()


def test_a_file_listed_in_stimuli_hdf5_but_missing(images, tiny_config, tmp_path, capsys):
    h5 = tmp_path / "h5"
    assert convert([str(images), str(h5), "--to", "hdf5", "--quiet"]) == 0
    listed = sorted((h5 / "stimuli").iterdir())
    listed[0].unlink()
    capsys.readouterr()
    assert (
        main(["--config", uncapped(tiny_config("baseline", h5)), "--out", str(tmp_path / "r")]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and listed[0].name in err, err


@pytest.mark.parametrize("name", ["stimuli.hdf5", "fixations.hdf5"])
def test_a_fifo_for_an_hdf5_file_is_one_line(images, tiny_config, tmp_path, capsys, name):
    pytest.importorskip("h5py")
    h5 = tmp_path / "h5"
    assert convert([str(images), str(h5), "--to", "hdf5", "--quiet"]) == 0
    fifo(h5 / name)
    capsys.readouterr()
    assert verify([str(h5), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{name} is listed but is not a regular file" in err, err


@pytest.mark.parametrize("damage", [emptied, fifo])
def test_verify_names_the_damaged_stimulus(images, capsys, damage):
    victim = sorted((images / "ALLSTIMULI").iterdir())[0]
    damage(victim)
    assert verify([str(images), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and victim.name in err, err


def test_convert_names_the_damaged_stimulus_and_leaves_no_half_copy(images, tmp_path, capsys):
    victim = sorted((images / "ALLSTIMULI").iterdir())[5]
    truncated(victim)
    dst = tmp_path / "h5"
    assert convert([str(images), str(dst), "--to", "hdf5", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and victim.name in err, err
    assert not dst.exists()
