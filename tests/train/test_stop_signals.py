"""Ctrl-C or SIGTERM, to the trainer alone or to its whole process group (Slurm's scancel,
``kill -TERM -PGID``), is one line and exit 130 in every trainer and in train.evaluate: a
DataLoader worker leaves the stop to its main process, and torch's error for a worker the
signal killed first counts as the stop it is."""

from __future__ import annotations

import os
import signal

import pytest
import torch

import train.jepa.train
import train.saliency.loop
import train.trajectory.evaluate_cli
import train.trajectory.loop
from generator.dataformat.loader import make_loader
from train.evaluate import main as evaluate_main
from train.jepa.train import main as jepa_main
from train.saliency.__main__ import main as saliency_main
from train.trajectory.cli import main as trajectory_main
from trajkit.cli import caused_by_interrupt

WORKER_KILLED = "DataLoader worker (pid 4242) is killed by signal: Terminated. "


def test_a_worker_killed_by_the_stop_signal_is_the_stop():
    assert caused_by_interrupt(RuntimeError(WORKER_KILLED))
    assert caused_by_interrupt(RuntimeError(WORKER_KILLED.replace("Terminated", "Interrupt")))
    assert not caused_by_interrupt(RuntimeError(WORKER_KILLED.replace("Terminated", "Killed")))
    assert not caused_by_interrupt(RuntimeError("DataLoader worker exited unexpectedly"))


class Handlers(torch.utils.data.Dataset):
    """Each item is whether its worker ignores SIGINT and leaves quietly on SIGTERM."""

    item_shape, item_dtype = (1,), torch.int64

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        leaves = signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        return {"video": torch.tensor([int(ignored and leaves)]), "label": i}


def test_loader_workers_leave_a_stop_to_the_main_process():
    loader = make_loader(Handlers(), 2, num_workers=2, persistent_workers=False)
    assert all(bool(b["video"].all()) for b in loader)
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN  # the main process still stops


def _commands(dataset, tmp_path):
    run = tmp_path / "run"
    return {
        "trajectory": (
            (train.trajectory.loop.Run, "fit"),
            lambda: trajectory_main(
                ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1"]
                + ["--out", str(run), "--quiet"]
            ),
        ),
        "evaluate": (
            (train.trajectory.evaluate_cli, "evaluate_run"),
            lambda: evaluate_main([str(run), "--data", str(dataset), "--quiet"]),
        ),
        "jepa": (
            (train.jepa.train, "train"),
            lambda: jepa_main(["--config", "cifar10", "--out", str(run)]),
        ),
        "saliency": (
            (train.saliency.loop, "run"),
            lambda: saliency_main(["--config", "baseline_tiny", "--out", str(run)]),
        ),
    }


def _sigterm(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    raise AssertionError("SIGTERM did not stop the command")


def _worker_killed(*args, **kwargs):
    raise RuntimeError(WORKER_KILLED)


@pytest.mark.parametrize("stop", [_sigterm, _worker_killed], ids=["SIGTERM", "worker killed"])
@pytest.mark.parametrize("command", ["trajectory", "evaluate", "jepa", "saliency"])
def test_a_stop_is_one_line_exit_130(command, stop, dataset, tmp_path, monkeypatch, capsys):
    (tmp_path / "run").mkdir()
    (owner, name), main = _commands(dataset, tmp_path)[command]
    monkeypatch.setattr(owner, name, stop)
    before = signal.getsignal(signal.SIGTERM)
    assert main() == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err, err
    assert signal.getsignal(signal.SIGTERM) == before  # the handlers are put back


def _stopped(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "module, target, argv, advice",
    [
        (
            "train.trajectory.cli",
            "run",
            ["--extractor", "i3d", "--epochs", "1", "--out", "r"],
            "run the same command again",  # no epoch finished: there is nothing to resume
        ),
        ("train.trajectory.parallel", "launch", ["--epochs", "1", "--out", "r"], "--resume"),
        ("train.saliency.parallel", "launch", ["--out", "r"], "--resume"),
    ],
    ids=["train", "train.parallel", "train.saliency.parallel"],
)
def test_a_stop_before_training_starts_is_one_line_exit_130(
    module, target, argv, advice, tmp_path, monkeypatch, capsys
):
    """Ctrl-C while torch loads (a few seconds on a busy machine) was a traceback in the
    launchers and in train (whose handler began after the imports)."""
    import importlib

    owner = importlib.import_module(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(owner, target, _stopped)
    assert owner.main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interrupted: "), err
    assert advice in err


@pytest.mark.parametrize(
    "module",
    [
        "train.trajectory.parallel",
        "train.saliency.parallel",
        "train.jepa.evaluate",
        "train.jepa.download",
    ],
)
def test_commands_load_torch_only_once_they_can_be_stopped(module):
    """Their module imports run before any signal handler: torch there made Ctrl-C a traceback."""
    import subprocess
    import sys
    from pathlib import Path

    code = f"import sys, {module}; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_modules_load_is_noted_then_one_line_exit_130(
    signum, tmp_path, monkeypatch, capsys
):
    """Raised inside an import, the stop could leave a library half loaded or be swallowed by
    it; noted, the import completes and the stop is one line after it."""
    import sys

    from trajkit.cli import load_modules

    (tmp_path / "slow_library.py").write_text(
        f"import os, signal\nos.kill(os.getpid(), {int(signum)})\nLOADED = True\n"
    )
    (tmp_path / "calm_library.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        load_modules("calm_library")
        assert capsys.readouterr().err == ""
        with pytest.raises(SystemExit) as stopped:
            load_modules("slow_library", "calm_library")
        assert stopped.value.code == 130
        assert sys.modules["slow_library"].LOADED  # the import ran to its end
        assert (
            capsys.readouterr().err == "interrupted: stopped while loading; nothing was written\n"
        )
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        for name in ("slow_library", "calm_library"):
            sys.modules.pop(name, None)
