"""Data the saliency tools must refuse in one line, and sets they must never leave half-written."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from train.saliency.convert import main as convert
from train.saliency.synthetic import main as synthetic
from train.saliency.verify import main as verify

ROOT = Path(__file__).resolve().parents[3]


def test_a_killed_synthetic_run_leaves_nothing_to_verify_and_is_run_again(tmp_path):
    """Before, kill -9 left a smaller set at OUT that verified clean ("nothing missing", exit 0)
    and a second run was refused as "not empty"."""
    out = tmp_path / "k9"
    command = [sys.executable, "-m", "train.saliency.synthetic", str(out), "--n", "100000"]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        written = tmp_path / ".tmp-k9" / "ALLSTIMULI"
        deadline = time.monotonic() + 60
        while not any(p.is_dir() and len(os.listdir(p)) > 5 for p in (out / "ALLSTIMULI", written)):
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        run.kill()
        run.wait(timeout=30)
    assert not out.exists()
    assert verify([str(out), "--quiet"]) == 2
    assert synthetic([str(out), "--n", "3"]) == 0
    assert len(os.listdir(out / "ALLSTIMULI")) == 3 and os.listdir(tmp_path) == ["k9"]


def test_a_synthetic_set_is_bounded(tmp_path, capsys):
    """Before, --n 99999999999999999999 was accepted and wrote for ever."""
    with pytest.raises(SystemExit) as stop:
        synthetic([str(tmp_path / "out"), "--n", "99999999999999999999"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n: must be 1..100000" in err, err
    assert not (tmp_path / "out").exists()


def wrong_shape(path: Path) -> None:
    savemat(path, {"fixLocs": np.ones((5, 7))})


def three_d(path: Path) -> None:
    savemat(path, {"fixLocs": np.ones((30, 40, 3))})


def empty(path: Path) -> None:
    path.write_bytes(b"")


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("damage", [wrong_shape, three_d, empty, fifo])
def test_a_damaged_cat2000_fixation_file_is_one_line_in_verify_and_convert(
    cat2000_dir, tmp_path, capsys, damage
):
    """Before: a 5x7 fixLocs was converted into the stimulus's corner ("checked identical",
    exit 0), a 3-D one and an empty file were tracebacks, and convert took a FIFO for
    missing fixations (exit 0) where verify refused it."""
    victim = cat2000_dir / "trainSet" / "FIXATIONLOCS" / "Action" / "001.mat"  # a 30x40 stimulus
    damage(victim)
    assert verify([str(cat2000_dir), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(victim) in err, err
    dst = tmp_path / "h5"
    assert convert([str(cat2000_dir), str(dst), "--to", "hdf5", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(victim) in err, err
    assert not dst.exists()


def test_a_fixation_mask_of_another_size_than_its_stimulus_is_refused(mit1003_dir, capsys):
    victim = mit1003_dir / "ALLFIXATIONMAPS" / "i000_scene_fixPts.jpg"  # a 30x40 stimulus
    Image.new("L", (7, 5), 255).save(victim)
    assert verify([str(mit1003_dir), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {victim} is 5x7 but its stimulus is 30x40; a fixation map must match its "
        "stimulus's size"
    )


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is ``width`` x ``height`` and holds one black pixel."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_an_oversized_image_is_one_line_without_pils_warning(mit1003_dir, tmp_path, capsys):
    """Before, PIL's DecompressionBombWarning and its source line came before the error."""
    victim = mit1003_dir / "ALLSTIMULI" / "i001_scene.jpeg"
    victim.write_bytes(png_header(12000, 10000))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert verify([str(mit1003_dir), "--quiet"]) == 1
        assert convert([str(mit1003_dir), str(tmp_path / "h5"), "--to", "hdf5", "--quiet"]) == 1
    assert shown == []
    for err in capsys.readouterr().err.strip().splitlines():
        assert err.startswith(f"error: {victim} cannot be read as an image (Image size"), err


def test_a_newline_in_a_stimulus_name_splits_no_line(mit1003_dir, capsys):
    (mit1003_dir / "ALLSTIMULI" / "i001_scene.jpeg").rename(
        mit1003_dir / "ALLSTIMULI" / "ev\nil.jpeg"
    )
    assert verify([str(mit1003_dir), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "missing fixations for 1 stimuli (e.g. ev\\nil.jpeg)" in out, out
    assert not any(line.startswith("il.jpeg") for line in out.splitlines()), out


@pytest.mark.parametrize("name", ["stimuli.hdf5", "fixations.hdf5"])
def test_a_damaged_hdf5_file_is_named(hdf5_dir, tmp_path, capsys, name):
    """Before, the line named the folder ("DIR: unreadable pysaliency HDF5"), exit 2."""
    (hdf5_dir / name).write_bytes(b"garbage")
    assert verify([str(hdf5_dir), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {hdf5_dir / name}: unreadable pysaliency HDF5 ("), err
    assert len(err.splitlines()) == 1
    assert convert([str(hdf5_dir), str(tmp_path / "images"), "--to", "images", "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == err
