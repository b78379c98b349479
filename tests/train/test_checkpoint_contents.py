"""A checkpoint whose common keys hold values of another type is one line naming the file,
in every command that loads one (``train.checkpoint.load_checkpoint``): an epoch of "two"
was a traceback from ``int()`` in ``train.evaluate`` and from a comparison in ``--resume``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train.__main__ import main as train
from train.checkpoint import CheckpointError, load_checkpoint
from train.trajectory.config import TrainConfig


def checkpoint(path: Path, **changes) -> Path:
    """A checkpoint of the trainer's keys and types, with ``changes``."""
    config = TrainConfig(extractor="i3d", epochs=2, data="data", out=str(path.parent))
    state = {
        "model": {"w": torch.ones(2), "norm.num_batches_tracked": torch.tensor(3)},
        "optimizer": {"state": {}, "param_groups": []},
        "scheduler": {},
        "epoch": 1,
        "config": config.model_dump(mode="json"),
    }
    torch.save({**state, **changes}, path)
    return path


def test_a_checkpoint_of_the_trainers_types_loads(tmp_path):
    """Extra state of a module (``get_extra_state``) may be any object, as torch allows."""
    extra = {"w": torch.ones(2), "head._extra_state": {"version": 2}}
    assert load_checkpoint(checkpoint(tmp_path / "last.pt", model=extra))["epoch"] == 1


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"epoch": "two"}, "epoch is not a whole number above 0: 'two'"),
        ({"epoch": True}, "epoch is not a whole number above 0: True"),
        ({"epoch": 0}, "epoch is not a whole number above 0: 0"),
        ({"model": torch.zeros(3)}, "model is not a state dict: a Tensor"),
        ({"model": {"w": [1.0]}}, "model is not a state dict: 'w' holds a list"),
        ({"optimizer": [1]}, "optimizer is not a state dict: a list"),
        ({"scheduler": None}, "scheduler is not a state dict: a NoneType"),
        ({"config": "i3d"}, "config is not a mapping: a str"),
    ],
)
def test_contents_of_another_type_are_not_a_training_checkpoint(tmp_path, changes, said):
    path = checkpoint(tmp_path / "last.pt", **changes)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == f"{path} is not a training checkpoint ({said})"


def test_resume_from_a_checkpoint_of_another_epoch_type_is_one_line(tmp_path, capsys):
    """It was "TypeError: '<' not supported between instances of 'int' and 'str'"."""
    run = tmp_path / "run"
    run.mkdir()
    last = checkpoint(run / "last.pt", epoch="two")
    before = last.read_bytes()
    assert train(["--out", str(run), "--resume", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{last} is not a training checkpoint (epoch is not a whole number" in err, err
    assert last.read_bytes() == before
