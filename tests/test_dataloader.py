"""A stop that arrives while a loader forks its workers stops the run: it was lost in an
at-fork hook ("Exception ignored") and the epoch went on."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# A stop arriving during the fork: raised in an at-fork hook, where the interpreter's own
# (logging's) run, on the first fork only. Then: how the iteration ended, and the SIGTERM
# handler the worker had (it must be able to die of torch's SIGTERM, not just note it).
STOP_DURING_FORK = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from {module} import DataLoader

    class Handlers(torch.utils.data.Dataset):
        def __len__(self):
            return 4
        def __getitem__(self, i):
            # what the worker does with a stop: leave it to its parent from the start
            term = signal.getsignal(signal.SIGTERM)
            return str(signal.getsignal(signal.SIGINT)) + " " + getattr(term, "__name__", str(term))

    armed = sys.argv[1] == "stop"
    def stop_during_fork():
        global armed
        if armed:
            armed = False
            signal.raise_signal(signal.SIGINT)
    os.register_at_fork(after_in_parent=stop_during_fork)
    try:
        print(sorted(set(b for batch in DataLoader(Handlers(), batch_size=2, num_workers=1)
                         for b in batch)))
    except KeyboardInterrupt:
        print("stopped")
    """
)


def _run(module: str, mode: str) -> subprocess.CompletedProcess:
    script = STOP_DURING_FORK.format(module=module)
    return subprocess.run(
        [sys.executable, "-c", script, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_a_stop_during_the_fork_of_the_workers_stops_the_iteration():
    done = _run("trajkit.dataloader", "stop")
    assert done.stdout == "stopped\n" and done.stderr == "", done


def test_torch_alone_loses_it():
    """What the loader is for: torch's own goes on after printing the lost interrupt."""
    done = _run("torch.utils.data", "stop")
    assert done.stdout != "stopped\n" and "Exception ignored" in done.stderr, done


def test_the_workers_leave_stops_to_their_parent_from_their_first_instruction():
    """They got the parent's raising handlers back: a Ctrl-C to the process group before
    their worker_init_fn ran raised inside their start (tracebacks, once exit 1)."""
    done = _run("trajkit.dataloader", "go on")
    assert done.stdout == f"['{int(signal.SIG_IGN)} _leave_quietly']\n", done


@pytest.mark.parametrize("kind", ["generator", "jepa"])
def test_the_loaders_that_fork_workers_are_this_one(kind, tmp_path):
    from trajkit.dataloader import DataLoader

    if kind == "generator":
        from generator.dataformat.loader import make_loader

        for recycle, persistent in ((True, True), (True, False), (False, None)):
            loader = make_loader(
                _Items(), 2, num_workers=1, recycle=recycle, persistent_workers=persistent
            )
            assert isinstance(loader, DataLoader)
    else:
        import train.jepa.data_pipeline as pipeline
        import train.jepa.evaluation as evaluation

        assert pipeline.DataLoader is DataLoader and evaluation.DataLoader is DataLoader


class _Items:
    item_shape = (1,)
    item_dtype = torch.float32

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        return {"video": i}


def test_a_stop_while_the_deferral_starts_leaves_the_handlers_as_they_were(monkeypatch):
    """A SIGTERM between installing the two noting handlers raised before the block's
    ``try``: SIGINT stayed the noting handler, and every later Ctrl-C was swallowed."""
    import trajkit.cli as cli

    real = signal.signal

    def stop_after_the_first(signum, handler):
        previous = real(signum, handler)
        if signum == signal.SIGINT and handler is not signal.default_int_handler:
            raise KeyboardInterrupt  # SIGTERM's raising handler, just now
        return previous

    monkeypatch.setattr(cli.signal, "signal", stop_after_the_first)
    with pytest.raises(KeyboardInterrupt), cli.interrupts_deferred():
        pytest.fail("the block ran")
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert cli._deferred == []
