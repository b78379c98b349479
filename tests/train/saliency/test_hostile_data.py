"""Data the saliency tools must refuse in one line, and sets they must never leave half-written."""

from __future__ import annotations

import io
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat, savemat

from train.saliency.cat2000 import LOCS_VARIABLE
from train.saliency.convert import main as convert
from train.saliency.mit1003 import Mit1003Images
from train.saliency.synthetic import main as synthetic
from train.saliency.verify import main as verify
from trajkit.cli import short_repr
from trajkit.files import hidden_name

ROOT = Path(__file__).resolve().parents[3]


def test_a_killed_synthetic_run_leaves_nothing_to_verify_and_is_run_again(tmp_path):
    """Before, kill -9 left a smaller set at OUT that verified clean ("nothing missing", exit 0)
    and a second run was refused as "not empty"."""
    out = tmp_path / "k9"
    command = [sys.executable, "-m", "train.saliency.synthetic", str(out), "--n", "100000"]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        written = tmp_path / hidden_name("k9") / "ALLSTIMULI"
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


def cell_array(path: Path) -> None:
    cells = np.empty((30, 40), dtype=object)
    cells[:] = "s"
    savemat(path, {"fixLocs": cells})


def struct_array(path: Path) -> None:
    savemat(path, {"fixLocs": np.zeros((30, 40), dtype=[("f", "f8")])})


def complex_matrix(path: Path) -> None:
    savemat(path, {"fixLocs": np.full((30, 40), 1j)})


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize(
    "damage", [wrong_shape, three_d, empty, fifo, cell_array, struct_array, complex_matrix]
)
def test_a_damaged_cat2000_fixation_file_is_one_line_in_verify_and_convert(
    cat2000_dir, tmp_path, capsys, damage
):
    """Before: a 5x7 fixLocs was converted into the stimulus's corner ("checked identical",
    exit 0), a 3-D one, an empty file, a cell or struct array of the stimulus's shape were
    tracebacks, complex numbers were read as fixations, and convert took a FIFO for missing
    fixations (exit 0) where verify refused it."""
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


def test_a_sparse_cat2000_fixation_matrix_reads_as_the_full_one(cat2000_dir, tmp_path, capsys):
    """MATLAB's sparse(y, x, 1, h, w) is how one builds a fixation matrix from coordinates;
    saved so, it was a traceback in verify, convert and training."""
    from scipy.sparse import csc_matrix

    from train.saliency.cat2000 import Cat2000Images

    full = [Cat2000Images(cat2000_dir).load(i).fixations for i in range(3)]
    for path in sorted((cat2000_dir / "trainSet" / "FIXATIONLOCS").rglob("*.mat")):
        locs = loadmat(path)[LOCS_VARIABLE]
        savemat(path, {LOCS_VARIABLE: csc_matrix(locs > 0 if "Indoor" in path.parts else locs)})
    assert [Cat2000Images(cat2000_dir).load(i).fixations.tolist() for i in range(3)] == [
        f.tolist() for f in full
    ]
    assert verify([str(cat2000_dir), "--quiet"]) == 0
    assert convert([str(cat2000_dir), str(tmp_path / "h5"), "--to", "hdf5", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_trainer_refuses_a_cat2000_fixation_matrix_of_no_numbers(
    cat2000_dir, tmp_path, tiny_config, capsys
):
    from train.saliency.__main__ import main as train

    victim = cat2000_dir / "trainSet" / "FIXATIONLOCS" / "Action" / "001.mat"
    cell_array(victim)
    code = train(
        ["--config", str(tiny_config("baseline", cat2000_dir)), "--out", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and err == (
        f"error: {victim}: 'fixLocs' holds a cell array, not a matrix of real numbers"
    ), err


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


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file and link under ``folder``: what a write shows."""
    found = {}
    for d, dirs, files in os.walk(folder):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            st = os.lstat(os.path.join(d, name))
            found[os.path.relpath(os.path.join(d, name), folder)] = (st.st_size, st.st_mtime_ns)
    return found


def rename_stimulus(root: Path, index: int, name: str) -> None:
    """Give stimulus ``index`` of a FileStimuli set the file name ``name``."""
    with h5py.File(root / "stimuli.hdf5", "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["filenames"][...]]
        names[index] = name
        del f["filenames"]
        f.create_dataset(
            "filenames",
            data=np.array([n.encode() for n in names]),
            dtype=h5py.special_dtype(vlen=str),
        )


def climb_through_a_link(src: Path) -> str:
    """The attack: ``L`` links three folders down, so ``L/../../..`` reads a file inside
    ``src``, while the key (the name less its first part) climbs three folders up from where
    convert writes ``trainSet/Stimuli/<key>``: to ``tmp_path/outside``."""
    (src / "deep" / "d1" / "d2").mkdir(parents=True)
    (src / "L").symlink_to("deep/d1/d2")
    (src / "outside").mkdir()
    shutil.copyfile(src / "Stimuli" / "Action" / "001.jpg", src / "outside" / "PWNED.jpg")
    return "L/../../../outside/PWNED.jpg"


def climb(src: Path) -> str:
    return "../outside/PWNED.jpg"


def absolute(src: Path) -> str:
    return str(src.parent / "outside" / "PWNED.jpg")


def a_link_out(src: Path) -> str:
    (src / "Stimuli" / "out").symlink_to(src.parent / "outside")
    return "Stimuli/out/PWNED.jpg"


@pytest.mark.parametrize("attack", [climb_through_a_link, climb, absolute, a_link_out])
def test_a_stimulus_name_leading_out_of_the_set_is_refused_and_nothing_is_written(
    pysaliency_writer, tmp_path, capsys, attack
):
    """Before, the link + ``..`` name passed verify (category ``..``, exit 0) and convert
    wrote PWNED.jpg and PWNED.mat outside both SRC and DST."""
    src, dst = pysaliency_writer(tmp_path / "src"), tmp_path / "dst"
    (tmp_path / "outside").mkdir()
    shutil.copyfile(src / "Stimuli" / "Action" / "001.jpg", tmp_path / "outside" / "PWNED.jpg")
    name = attack(src)
    rename_stimulus(src, 0, name)
    before = files_under(tmp_path)
    assert verify([str(src), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {src / 'stimuli.hdf5'}: stimulus file")
    assert short_repr(name) in err, err
    assert len(err.splitlines()) == 1, err
    assert convert([str(src), str(dst), "--to", "images", "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == err
    assert files_under(tmp_path) == before and not dst.exists()


LONG = "x" * 100_000  # no file system takes a name of 100 KB
LONG_PART = "x" * 3_000  # a path the system takes whole, of a folder that is not there


def set_attribute(src: Path, file: str, key: str, value: str) -> None:
    with h5py.File(src / file, "r+") as f:
        f.attrs[key] = np.bytes_(value)


HOSTILE_NAMES = {  # what the file holds, the exit status, and what the line says
    "a 100 KB stimulus file name": (
        lambda src: rename_stimulus(src, 0, f"Stimuli/Action/{LONG}.jpg"),
        1,
        "names no file (File name too long)",
    ),
    "a 100 KB name with '..' and a newline": (
        lambda src: rename_stimulus(src, 0, f"../{LONG}\n.jpg"),
        1,
        "is absolute or holds '..'",
    ),
    "two long names standing for one key": (
        lambda src: (
            rename_stimulus(src, 0, f"A/{LONG_PART}.jpg"),
            rename_stimulus(src, 1, f"B/{LONG_PART}.jpg"),
        ),
        1,
        "both stand for 'xxx",
    ),
    "a 60 KB stimuli type": (
        lambda src: set_attribute(src, "stimuli.hdf5", "type", LONG[:60_000]),
        2,
        "expected 'FileStimuli' or 'Stimuli'",
    ),
    "a 60 KB fixations type": (
        lambda src: set_attribute(src, "fixations.hdf5", "type", LONG[:60_000]),
        2,
        "expected FixationTrains, Fixations or ScanpathFixations",
    ),
    "a 60 KB version": (
        lambda src: set_attribute(src, "stimuli.hdf5", "version", LONG[:60_000]),
        2,
        "is not a pysaliency version",
    ),
}


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_a_hostile_name_in_an_hdf5_set_is_one_short_line(
    pysaliency_writer, tmp_path, capsys, hostile
):
    """Names and attributes are quoted shortened: each of these was a line of 60 to 300 KB,
    and a 100 KB file name a traceback (the system's "File name too long")."""
    src = pysaliency_writer(tmp_path / "src")
    make, code, said = HOSTILE_NAMES[hostile]
    make(src)
    assert verify([str(src), "--quiet"]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(err) < 400 and said in err, err[:400]


def test_an_attribute_named_by_the_file_and_not_used_is_not_read(pysaliency_writer, tmp_path):
    """Only ``category`` is used; a listed 60 KB name the file does not hold was an error
    quoting all of it."""
    from train.saliency.layouts import open_source

    src = pysaliency_writer(tmp_path / "src")
    set_attribute(src, "stimuli.hdf5", "__attributes__", f'["category", "{LONG[:60_000]}"]')
    assert [r.category for r in open_source(src).refs] == ["Action", "Action", "Indoor"]


def test_the_trainer_refuses_a_100_kb_stimulus_name_in_one_short_line(
    pysaliency_writer, tmp_path, tiny_config, capsys
):
    """It was "error: File name too long: " and the 100 KB path."""
    from train.saliency.__main__ import main as train

    src = pysaliency_writer(tmp_path / "src")
    rename_stimulus(src, 0, f"Stimuli/Action/{LONG}.jpg")
    code = train(["--config", str(tiny_config("baseline", src)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and len(err) < 400, err[:400]
    assert "names no file (File name too long)" in err
    assert not (tmp_path / "run").exists()


def test_the_trainer_names_a_missing_stimulus_of_a_long_path_in_one_short_line(
    pysaliency_writer, tmp_path, tiny_config, capsys
):
    """A path the system takes whole, of a folder that is not there: its reader quoted all
    3 KB of it."""
    from train.saliency.__main__ import main as train

    src = pysaliency_writer(tmp_path / "src")
    for index in range(3):  # whichever the run reads first
        rename_stimulus(src, index, f"Stimuli/Gone{index}/{LONG_PART}.jpg")
    code = train(["--config", str(tiny_config("baseline", src)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and len(err) < 400, err[:400]
    assert err.endswith("xxx.jpg is listed but missing on disk"), err[:400]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_the_trainer_names_a_long_path_that_is_no_file_in_one_short_line(
    pysaliency_writer, tmp_path, tiny_config, capsys
):
    """A folder, 3.5 KB of path deep, where a stimulus should be: quoted whole."""
    from train.saliency.__main__ import main as train

    src = pysaliency_writer(tmp_path / "src")
    deep = "/".join(c * 250 for c in "abcdefghijklmn")
    for index in range(3):  # whichever the run reads first
        (src / "Stimuli" / deep / f"{index}.jpg").mkdir(parents=True)
        rename_stimulus(src, index, f"Stimuli/{deep}/{index}.jpg")
    code = train(["--config", str(tiny_config("baseline", src)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and len(err) < 400, err[:400]
    assert err.endswith(".jpg is listed but is not a regular file"), err[:400]


def test_the_trainer_refuses_a_stimulus_name_leading_out_of_the_set(
    pysaliency_writer, tmp_path, tiny_config, capsys
):
    from train.saliency.__main__ import main as train

    src = pysaliency_writer(tmp_path / "src")
    rename_stimulus(src, 0, climb_through_a_link(src))
    code = train(["--config", str(tiny_config("baseline", src)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"error: {src / 'stimuli.hdf5'}: stimulus file"), err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("x", [np.nan, np.inf, -1e9, 1e30, 39.6])
def test_a_fixation_not_finite_or_outside_its_image_is_damaged_data(
    pysaliency_writer, tmp_path, capsys, x
):
    """Before: verify exit 0; convert printed numpy's warnings, clamped the point to the
    border, and left DST in place after its own check failed."""
    src, dst = pysaliency_writer(tmp_path / "src", fixations="Fixations"), tmp_path / "dst"
    with h5py.File(src / "fixations.hdf5", "r+") as f:
        f["x"][0] = x  # of stimulus 0, a 30x40 image
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify([str(src), "--quiet"]) == 1
        assert convert([str(src), str(dst), "--to", "images", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0] == err[1], err
    assert err[0] == (
        f"error: {src / 'fixations.hdf5'}: 1 fixations of Action/001.jpg are not finite or "
        f"outside its 30x40 image (e.g. x={x:g}, y=7.4)"
    )
    assert not dst.exists() and sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize(
    "fixations, name, index",
    [
        ("FixationTrains-1.2", "train_ns", 999),
        ("FixationTrains-1.2", "train_ns", -1),
        ("Fixations", "n", 3),
        ("ScanpathFixations", "scanpaths/n", -1),
    ],
)
def test_fixations_of_a_stimulus_index_outside_the_set_are_damaged_data(
    pysaliency_writer, tmp_path, capsys, fixations, name, index
):
    """Before: convert dropped those fixations (exit 0, "checked identical") and verify said
    only that a stimulus had none; pysaliency itself reads -1 as the last stimulus."""
    src, dst = pysaliency_writer(tmp_path / "src", fixations=fixations), tmp_path / "dst"
    with h5py.File(src / "fixations.hdf5", "r+") as f:
        f[name][1] = index  # of 3 stimuli
    assert verify([str(src), "--quiet"]) == 1
    assert convert([str(src), str(dst), "--to", "images", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err
        == [
            f"error: {src / 'fixations.hdf5'}: {name} holds {index}, which is not a stimulus "
            "index: stimuli.hdf5 has 3 stimuli, numbered 0 to 2"
        ]
        * 2
    )
    assert not dst.exists()


def test_the_trainer_refuses_fixations_of_a_stimulus_index_outside_the_set(
    pysaliency_writer, tmp_path, tiny_config, capsys
):
    from train.saliency.__main__ import main as train

    src = pysaliency_writer(tmp_path / "src")
    with h5py.File(src / "fixations.hdf5", "r+") as f:
        f["train_ns"][1] = 999
    code = train(["--config", str(tiny_config("baseline", src)), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"error: {src / 'fixations.hdf5'}: train_ns holds 999"), err
    assert len(err.splitlines()) == 1


def test_a_convert_whose_check_fails_leaves_no_folder(pysaliency_writer, tmp_path, capsys):
    """Two stimuli whose names differ only in the suffix are one file in the image layout.
    Before, DST was left in place, looking complete."""
    src, dst = pysaliency_writer(tmp_path / "src"), tmp_path / "dst"
    Image.open(src / "Stimuli" / "Action" / "002.jpg").save(src / "Stimuli" / "Action" / "001.png")
    rename_stimulus(src, 1, "Stimuli/Action/001.png")
    assert convert([str(src), str(dst), "--to", "images", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("mismatch: "), err
    assert err[-1].startswith("error: the check after converting 3 stimuli found "), err
    assert err[-1].endswith(f"differences; nothing was written to {dst}"), err
    assert not dst.exists() and sorted(os.listdir(tmp_path)) == ["src"]


def mat_bomb(path: Path, h: int, w: int) -> None:
    """A MAT-file whose zlib-compressed ``fixLocs`` is an h x w uint8 matrix of zeros, written
    without holding it (30000x30000: 875 KB on disk, 900 MB inflated)."""
    name = LOCS_VARIABLE.encode().ljust(8, b"\0")
    head = struct.pack("<IIII", 6, 8, 9, 0) + struct.pack("<IIii", 5, 8, h, w)
    head += struct.pack("<II", 1, len(LOCS_VARIABLE)) + name + struct.pack("<II", 2, h * w)
    padded = h * w + (-h * w % 8)
    z = zlib.compressobj(9)
    data = [z.compress(struct.pack("<II", 14, len(head) + padded) + head)]
    zeros = bytes(1 << 20)
    for start in range(0, padded, len(zeros)):
        data.append(z.compress(zeros[: padded - start]))
    data.append(z.flush())
    body = b"".join(data)
    header = b"MATLAB 5.0 MAT-file".ljust(116) + bytes(8) + struct.pack("<H2s", 0x0100, b"IM")
    path.write_bytes(header + struct.pack("<II", 15, len(body)) + body)


def verify_in_1_gib(root: Path) -> subprocess.CompletedProcess:
    """``verify root`` with 1 GiB of address space: a bomb read before its shape is checked
    fails to allocate (or takes the machine's memory, without the limit)."""
    gib = 1 << 30
    return subprocess.run(
        [sys.executable, "-m", "train.saliency.verify", str(root), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (gib, gib)),
    )


def test_a_cat2000_fixation_matrix_bomb_is_refused_before_it_is_inflated(cat2000_dir):
    """Before: MemoryError traceback (or, with the memory, 900 MB inflated before the check).
    Its inflated size is counted before its declared shape is read (whosmat inflates names)."""
    victim = cat2000_dir / "trainSet" / "FIXATIONLOCS" / "Action" / "001.mat"
    mat_bomb(victim, 30000, 30000)
    run = verify_in_1_gib(cat2000_dir)
    assert run.returncode == 1 and run.stderr == (
        f"error: {victim}: a variable in it takes more than 94,336 bytes, more than a "
        "'fixLocs' of a 30x40 stimulus can; the file is damaged or forged\n"
    ), run.stderr


def test_an_hdf5_stimulus_bomb_is_refused_by_its_declared_shape(pysaliency_writer, tmp_path):
    """Before: every Stimuli array was read at open, a 10 GiB one a MemoryError traceback."""
    src = pysaliency_writer(tmp_path / "src", embedded=True)
    with h5py.File(src / "stimuli.hdf5", "r+") as f:
        del f["0"]
        f.create_dataset(
            "0", (60000, 60000, 3), np.uint8, chunks=(1000, 1000, 3), compression="gzip"
        )
    assert (src / "stimuli.hdf5").stat().st_size < 100_000
    run = verify_in_1_gib(src)
    assert run.returncode == 1 and run.stderr == (
        f"error: {src / 'stimuli.hdf5'}: stimulus 0 is 60000x60000x3 uint8; expected an 8-bit "
        f"grey, RGB or RGBA image of at most {Image.MAX_IMAGE_PIXELS:,} pixels\n"
    ), run.stderr


def test_a_stimulus_name_that_is_not_utf8_is_one_line_in_an_hdf5_convert(
    mit1003_dir, tmp_path, capsys
):
    """Before: UnicodeEncodeError traceback; pysaliency's file names are UTF-8."""
    folder = os.fsencode(mit1003_dir)
    new = os.fsdecode(folder + b"/ALLSTIMULI/\xff\xfe.jpeg")
    os.rename(mit1003_dir / "ALLSTIMULI" / "i001_scene.jpeg", new)
    os.rename(
        mit1003_dir / "ALLFIXATIONMAPS" / "i001_scene_fixPts.jpg",
        os.fsdecode(folder + b"/ALLFIXATIONMAPS/\xff\xfe_fixPts.jpg"),
    )
    dst = tmp_path / "h5"
    assert convert([str(mit1003_dir), str(dst), "--to", "hdf5", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {mit1003_dir}/ALLSTIMULI/\\xff\\xfe.jpeg: the file name is not UTF-8, which "
        "pysaliency's HDF5 cannot hold; rename it"
    )
    assert not dst.exists()


def sixteen_bit_png(path: Path) -> None:
    Image.fromarray(np.full((30, 40), 40000, np.uint16)).save(path, "PNG")


def float_tiff(path: Path) -> None:
    Image.fromarray(np.full((30, 40), 0.5, np.float32)).save(path, "TIFF")


@pytest.mark.parametrize(
    ("write", "detail"), [(sixteen_bit_png, "16-bit I;16"), (float_tiff, "32-bit F")]
)
def test_a_stimulus_of_more_than_8_bits_a_sample_is_refused(
    mit1003_dir, tmp_path, capsys, write, detail
):
    """Before, PIL's conversion to RGB made them all white (16-bit) or all black (float),
    and convert called the copy identical."""
    victim = mit1003_dir / "ALLSTIMULI" / "i000_scene.jpeg"  # a 30x40 stimulus
    write(victim)
    expected = f"error: {victim} cannot be read as an image ({detail} samples; convert it to 8-bit)"
    assert verify([str(mit1003_dir), "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == expected
    assert convert([str(mit1003_dir), str(tmp_path / "h5"), "--to", "hdf5", "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == expected
    assert not (tmp_path / "h5").exists()


def test_running_out_of_memory_is_one_line_and_leaves_no_folder(
    mit1003_dir, tmp_path, capsys, monkeypatch
):
    """A file within every bound can still not fit: before, a MemoryError traceback."""

    def too_large(*args, **kwargs):
        raise MemoryError("Unable to allocate 10.1 GiB for an array with shape (60000, 60000, 3)")

    monkeypatch.setattr(Mit1003Images, "load", too_large)
    expected = (
        f"error: out of memory reading {mit1003_dir}: a file too large for this machine "
        "(Unable to allocate 10.1 GiB for an array with shape (60000, 60000, 3))"
    )
    assert verify([str(mit1003_dir), "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == expected
    assert convert([str(mit1003_dir), str(tmp_path / "h5"), "--to", "hdf5", "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == expected
    assert sorted(os.listdir(tmp_path)) == ["MIT1003"]


def test_two_stimulus_files_standing_for_one_key_are_refused(pysaliency_writer, tmp_path, capsys):
    """A set whose names drop to one key (the first folder is not part of it) passed verify;
    convert's own check found it afterwards."""
    src = pysaliency_writer(tmp_path / "src")
    (src / "Other" / "Action").mkdir(parents=True)
    shutil.copyfile(src / "Stimuli" / "Action" / "002.jpg", src / "Other" / "Action" / "001.jpg")
    rename_stimulus(src, 1, "Other/Action/001.jpg")
    assert verify([str(src), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "'Stimuli/Action/001.jpg' and 'Other/Action/001.jpg' both stand for" in err, err
    assert len(err.splitlines()) == 1


def test_an_embedded_stimulus_that_is_a_group_is_one_line(pysaliency_writer, tmp_path, capsys):
    """It was an AttributeError traceback (a group has no shape)."""
    src = pysaliency_writer(tmp_path / "src", embedded=True)
    with h5py.File(src / "stimuli.hdf5", "r+") as f:
        del f["0"]
        f.create_group("0")
    assert verify([str(src), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("stimulus 0 is a group, not an image array") and "\n" not in err, err


def test_a_version_past_9_names_its_files_relative_to_its_folder(pysaliency_writer, tmp_path):
    """Compared as text, "10.0" came before "2.0": names were taken relative to the working
    folder, and the set passed or failed by where the command ran."""
    from train.saliency.layouts import open_source

    src = pysaliency_writer(tmp_path / "src")
    with h5py.File(src / "stimuli.hdf5", "r+") as f:
        f.attrs["version"] = np.bytes_("10.0")
    assert open_source(src).load(0).image.shape[:2] == (30, 40)


def test_a_stimulus_name_whose_map_name_is_too_long_is_a_missing_map(mit1003_dir, capsys):
    """A 248-byte stimulus name makes its ``_fixPts.jpg`` name past the system's 255 bytes:
    looking it up was an OSError traceback, where it only means the stimulus has no map."""
    from train.saliency.verify import main as verify

    name = "b" * 248 + ".jpeg"
    shutil.copy(next((mit1003_dir / "ALLSTIMULI").iterdir()), mit1003_dir / "ALLSTIMULI" / name)
    verify([str(mit1003_dir)])
    out = capsys.readouterr().out
    assert f"missing fixations for 1 stimuli (e.g. {name})" in out, out


def test_a_path_the_system_will_not_look_up_is_a_stimulus_file_error(tmp_path):
    from train.saliency.records import StimulusFileError, regular_file

    with pytest.raises(StimulusFileError, match="cannot be read"):
        regular_file(tmp_path / ("a" * 300) / "x.jpg")


@pytest.mark.parametrize("storage", ["external", "virtual"])
def test_a_stimulus_stored_in_another_file_is_refused(pysaliency_writer, tmp_path, capsys, storage):
    """HDF5 lets a dataset's bytes live in any other file: verify read an outside file's bytes
    as a stimulus's pixels, and passed."""
    src = pysaliency_writer(tmp_path / "src", embedded=True)
    outside = tmp_path / "outside.bin"
    with h5py.File(src / "stimuli.hdf5", "r+") as f:
        shape, dtype = f["0"].shape, f["0"].dtype
        outside.write_bytes(bytes(range(256)) * (math.prod(shape) // 256 + 1))
        del f["0"]
        if storage == "external":
            f.create_dataset("0", shape, dtype, external=[(str(outside), 0, math.prod(shape))])
        else:
            with h5py.File(tmp_path / "other.h5", "w") as other:
                other["pixels"] = np.zeros(shape, dtype)
            layout = h5py.VirtualLayout(shape, dtype)
            layout[...] = h5py.VirtualSource(tmp_path / "other.h5", "pixels", shape)
            f.create_virtual_dataset("0", layout)
    assert verify([str(src), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "stimulus 0 is stored in other files" in err and "\n" not in err, err
