"""convert under a second writer, interrupts and damaged sources: nothing of another's work is lost."""

import os
import signal
import subprocess
import sys
import time

import pytest

from generator.dataformat.layout import CONVERTING, Layout
from trajkit.lock import FolderLock, LockedError

from .conftest import ROOT


def convert_args(src, dst, *extra):
    return ["convert", src, dst, "--format", "shards", "--shard-size", 4, "--workers", 1, *extra]


def test_losing_the_lock_race_removes_nothing_of_the_winner(
    small_dataset, tmp_path, cli, capsys, monkeypatch
):
    """Another convert takes the folder between our look at it and our lock: its files stay."""
    dst = tmp_path / "new"
    winner_file = dst / "checkpoints" / "fingerprint.json"

    def lose_the_race(self):
        winner_file.parent.mkdir(parents=True)
        winner_file.write_text("{}")
        raise LockedError(f"{dst} is being written by process 1 on host; wait for it")

    monkeypatch.setattr(FolderLock, "acquire", lose_the_race)
    assert cli(*convert_args(small_dataset, dst)) == 2
    err = capsys.readouterr().err
    assert "being written" in err and len(err.strip().splitlines()) == 1
    assert winner_file.read_text() == "{}"


def test_a_second_convert_into_the_same_folder_fails_and_the_first_finishes(
    small_dataset, tmp_path, cli, capsys
):
    dst = tmp_path / "new"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-m", "generator", *map(str, convert_args(small_dataset, dst))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = Layout(dst).lock
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.exists() and lock.stat().st_size):
        time.sleep(0.01)  # the first one holds the lock once it wrote its pid into it
    assert first.poll() is None, first.stderr.read()
    assert cli(*convert_args(small_dataset, dst)) == 2
    assert "being written by" in capsys.readouterr().err
    assert first.wait(120) == 0, first.stderr.read()
    assert cli("validate", dst) == 0


def test_an_existing_empty_folder_keeps_existing_after_a_failed_convert(tmp_path, cli, capsys):
    """A damaged source: exit 1 (bad data), and the empty folder the user made is left as it was."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "metadata.json").write_text("{")
    dst = tmp_path / "dst"
    dst.mkdir()
    assert cli(*convert_args(src, dst)) == 1
    assert dst.is_dir() and [p.name for p in dst.iterdir() if p.name != ".lock"] == []
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_ctrl_c_is_one_line_exit_130_and_leaves_no_half_dataset(small_dataset, tmp_path):
    dst = tmp_path / "new"
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", *map(str, convert_args(small_dataset, dst))],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (dst / "shards").is_dir():
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    if proc.returncode == 0:  # it finished first: then it must be whole
        assert (dst / "metadata.json").is_file()
        return
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not dst.exists()


def test_a_folder_inside_the_source_is_refused_and_the_source_stays_valid(
    small_dataset, tmp_path, cli, capsys
):
    """A converted copy inside the source would make the source fail validate (an orphan
    folder), and a link to the source is the source."""
    (tmp_path / "link").symlink_to(small_dataset)
    for dst in (small_dataset / "sub", small_dataset, tmp_path / "link" / "sub"):
        assert cli(*convert_args(small_dataset, dst)) == 2
        err = capsys.readouterr().err.strip()
        assert "inside" in err and len(err.splitlines()) == 1, err
    assert not (small_dataset / "sub").exists()
    assert cli("validate", small_dataset, "--quick") == 0


def test_a_damaged_source_manifest_is_one_line_exit_1(small_dataset, tmp_path, cli, capsys):
    """An empty manifest, a folder or a symlink loop in its place: one line, nothing written."""
    import shutil

    for damage in ("empty", "folder", "loop"):
        src = tmp_path / damage
        shutil.copytree(small_dataset, src)
        path = src / "checkpoints" / "checkpoint_20.json"
        path.unlink()
        if damage == "empty":
            path.write_bytes(b"")
        elif damage == "folder":
            path.mkdir()
        else:
            path.symlink_to(path)
        dst = tmp_path / f"{damage}_new"
        assert cli(*convert_args(src, dst)) == 1
        err = capsys.readouterr().err
        assert "checkpoint_20.json" in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and not dst.exists()


def test_a_convert_with_worker_processes_ends_when_it_is_done(small_dataset, tmp_path):
    """Its loky workers were left to the interpreter's exit, which joined them until their
    idle timeout: every convert with two workers or more sat 5 minutes after its last line."""
    done = subprocess.run(
        [sys.executable, "-m", "generator", "convert", str(small_dataset), str(tmp_path / "new")]
        + ["--format", "shards", "--workers", "2", "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_convert_killed_outright_leaves_a_folder_the_next_convert_clears(
    small_dataset, tmp_path, cli, capsys
):
    """kill -9 left the new folder holding the lock, a fingerprint and some shards; the next
    convert refused it as "not empty", where the README says nothing of it is kept."""
    dst = tmp_path / "new"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-m", "generator", *map(str, convert_args(small_dataset, dst))], env=env
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (dst / "checkpoints" / "fingerprint.json").exists():
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert (dst / CONVERTING).exists() and not (dst / "metadata.json").exists()
    assert cli(*convert_args(small_dataset, dst)) == 0
    fresh = tmp_path / "fresh"
    assert cli(*convert_args(small_dataset, fresh)) == 0
    shards = sorted(p.name for p in (fresh / "shards").iterdir())
    assert sorted(p.name for p in (dst / "shards").iterdir()) == shards
    assert all(
        (dst / "shards" / n).read_bytes() == (fresh / "shards" / n).read_bytes() for n in shards
    )
    assert cli("validate", dst) == 0 and not (dst / CONVERTING).exists()
    (dst / "metadata.json").unlink()  # an unfinished folder, but not a convert's leftover
    assert cli(*convert_args(small_dataset, dst)) == 2 and "is not empty" in capsys.readouterr().err
    assert (dst / "shards" / shards[0]).exists()


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the SHA-256 tells
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damaged, fmt, workers",
    [
        ("videos/sample_0013.pt", "shards", 1),
        ("videos/sample_0013.pt", "pt", 2),  # raised in a worker process
        ("labels/sample_0013.json", "shards", 1),
    ],
)
def test_a_changed_byte_in_the_source_is_one_line_and_nothing_is_written(
    small_dataset, tmp_path, cli, capsys, damaged, fmt, workers
):
    """A .pt whose bytes differ from its manifest (same size) was copied and given a fresh,
    valid SHA-256, so validate passed the new dataset; now convert stops as for a label."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(small_dataset, src)
    _flip_a_byte(src / damaged)
    for dst in (tmp_path / "new", tmp_path / "made"):
        if dst.name == "made":  # a folder the user made is left as it was
            dst.mkdir()
        size = ["--shard-size", 4] if fmt == "shards" else []
        args = ["convert", src, dst, "--format", fmt, *size, "--workers", workers]
        assert cli(*args) == 1
        err = capsys.readouterr().err.strip()
        assert f"{src / damaged}: the" in err and "SHA-256 differs from its manifest" in err, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        left = [p.name for p in dst.iterdir() if p.name != ".lock"] if dst.exists() else None
        assert left == ([] if dst.name == "made" else None)


@pytest.mark.parametrize("kind", ["fifo", "file", "missing"])
def test_a_source_that_is_not_a_folder_is_named_as_what_it_is(tmp_path, cli, capsys, kind):
    """A FIFO as the source was reported as a folder that "does not exist"."""
    src = tmp_path / "src"
    if kind == "fifo":
        os.mkfifo(src)
    elif kind == "file":
        src.write_text("x")
    assert cli(*convert_args(src, tmp_path / "new")) == 1
    err = capsys.readouterr().err.strip()
    expected = {
        "fifo": f"{src} is a FIFO, not a dataset folder",
        "file": f"{src} is a file, not a dataset folder",
        "missing": f"dataset folder {src} does not exist",
    }[kind]
    assert err == f"error: {expected}"
    assert not (tmp_path / "new").exists()
