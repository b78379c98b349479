"""A damaged training checkpoint is one line naming the file: never a traceback."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from train.__main__ import main
from train.checkpoint import CheckpointError, load_checkpoint
from train.jepa.evaluate import main as jepa_evaluate
from train.run_folder import LOCK


def whole_checkpoint(path: Path) -> bytes:
    state = {"model": {"w": torch.arange(4096.0)}, "optimizer": {}, "scheduler": {}}
    torch.save({**state, "epoch": 1, "config": {"extractor": "i3d"}}, path)
    return path.read_bytes()


DAMAGE = {
    "empty": lambda whole: b"",
    "truncated": lambda whole: whole[: len(whole) // 2],
    "one byte": lambda whole: whole[:1],
    "not torch": lambda whole: b"not a checkpoint\n",
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, kind):
    """Said in words, not as torch's: a truncated zip was "[Errno 22] Invalid argument", other
    damage advice about ``weights_only``."""
    path = tmp_path / "last.pt"
    path.write_bytes(DAMAGE[kind](whole_checkpoint(path)))
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == (
        f"{path} is damaged: it is empty (0 bytes)"
        if kind == "empty"
        else f"{path} is damaged or truncated: not a checkpoint torch can read"
    )


def test_a_foreign_pickle_is_not_a_training_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"model": argparse.Namespace(w=1)}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert (
        str(caught.value) == f"{path} is not a training checkpoint (it pickles argparse.Namespace)"
    )


def symbolic_link_loop(tmp_path: Path) -> Path:
    loop = tmp_path / "last.pt"
    loop.symlink_to(loop)
    return loop


def test_a_symbolic_link_loop_is_said_so(tmp_path):
    """It was "damaged: OSError: [Errno 40] ..."."""
    loop = symbolic_link_loop(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(loop)
    assert (
        str(caught.value)
        == f"cannot read the checkpoint: Too many levels of symbolic links: {loop}"
    )


def test_jepa_evaluate_tells_a_symbolic_link_loop_from_a_missing_checkpoint(tmp_path, capsys):
    """A loop does not "exist": it was "checkpoint ... not found"."""
    loop = symbolic_link_loop(tmp_path)
    assert jepa_evaluate(["--checkpoint", str(loop), "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: checkpoint {loop}: Too many levels of symbolic links\n"


def test_a_torch_file_that_is_no_mapping_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_resume_from_a_damaged_checkpoint_exits_1_naming_it(tmp_path, capsys, kind):
    run = tmp_path / "run"
    run.mkdir()
    last = run / "last.pt"
    last.write_bytes(DAMAGE[kind](whole_checkpoint(last)))
    before = last.read_bytes()
    assert main(["--out", str(run), "--resume", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(last) in err and "Traceback" not in err, err
    written = sorted(p.name for p in run.iterdir() if p.name != LOCK)  # the lock it held
    assert last.read_bytes() == before and written == ["last.pt"]


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_checkpoint_that_is_no_regular_file_is_refused_without_reading_it(tmp_path, kind):
    """A FIFO would block ``torch.load`` until someone writes to it: refused on sight."""
    path = tmp_path / "last.pt"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(CheckpointError, match="is not a regular file"):
        load_checkpoint(path)


@pytest.mark.parametrize("link", ["loop", "dangling"])
@pytest.mark.parametrize("resume", [True, False])
def test_a_last_pt_link_that_leads_nowhere_is_not_taken_for_no_run(tmp_path, capsys, link, resume):
    """``Path.exists`` says no for such a link: ``--resume`` started a new run from epoch 1,
    and the run's first save would have replaced the link."""
    run = tmp_path / "run"
    run.mkdir()
    last = run / "last.pt"
    last.symlink_to(last if link == "loop" else tmp_path / "moved.pt")
    argv = ["--out", str(run), "--extractor", "i3d", "--epochs", "1", "--data", str(tmp_path)]
    assert main([*argv, "--quiet"] + (["--resume"] if resume else [])) == (1 if resume else 2)
    err = capsys.readouterr().err
    if not resume:
        said = f"{run} already holds a run (last.pt)"
    elif link == "loop":
        said = f"cannot read the checkpoint: Too many levels of symbolic links: {last}"
    else:
        said = f"{last} is a symbolic link to {tmp_path / 'moved.pt'}, which is missing"
    assert err.count("\n") == 1 and said in err, err
    assert last.is_symlink() and sorted(p.name for p in run.iterdir() if p.name != LOCK) == [
        "last.pt"
    ]
