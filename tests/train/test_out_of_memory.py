"""A failed allocation (a batch too large for the machine) is one line and exit 1 in every
trainer, naming what to lower; any other RuntimeError still shows its traceback."""

from __future__ import annotations

import pytest
import torch

import train.jepa.train
import train.saliency.loop
import train.trajectory.loop
from train.jepa.train import main as jepa_main
from train.saliency.__main__ import main as saliency_main
from train.trajectory.cli import main as trajectory_main
from trajkit.cli import out_of_memory

CPU = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
    "memory: you tried to allocate 32212254720 bytes. Error code 12 (Cannot allocate memory)"
)
CUDA = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8 GiB"


@pytest.mark.parametrize(
    "error, expected",
    [
        (RuntimeError(CPU), "out of memory (a tensor of 30 GiB)"),
        (torch.OutOfMemoryError(CUDA), "out of memory (a tensor of 2.00 GiB)"),
        (MemoryError(), "out of memory;"),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), None),
        (ValueError("out of memory"), None),
    ],
)
def test_out_of_memory_names_the_allocation_and_nothing_else(error, expected):
    got = out_of_memory(error)
    if expected is None:
        assert got is None
    else:
        assert got.startswith(expected) and got.endswith("lower the batch size or the data workers")


def _trainers(dataset, tmp_path):
    return {
        "trajectory": (
            (train.trajectory.loop.Run, "fit"),
            lambda: trajectory_main(
                ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1"]
                + ["--out", str(tmp_path / "run"), "--quiet"]
            ),
        ),
        "jepa": (
            (train.jepa.train, "train"),
            lambda: jepa_main(["--config", "cifar10", "--out", str(tmp_path / "run")]),
        ),
        "saliency": (
            (train.saliency.loop, "run"),
            lambda: saliency_main(["--config", "baseline_tiny", "--out", str(tmp_path / "run")]),
        ),
    }


@pytest.mark.parametrize("trainer", ["trajectory", "jepa", "saliency"])
def test_a_failed_allocation_is_one_line_exit_1(trainer, dataset, tmp_path, monkeypatch, capsys):
    (owner, name), main = _trainers(dataset, tmp_path)[trainer]

    def allocate(*args, **kwargs):
        raise RuntimeError(CPU)

    monkeypatch.setattr(owner, name, allocate)
    assert main() == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "out of memory (a tensor of 30 GiB)" in err, err

    def bug(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(owner, name, bug)
    with pytest.raises(RuntimeError, match="mat1"):  # a bug keeps its traceback
        main()
