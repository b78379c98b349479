"""A stop that arrives while a loader forks its workers stops the run: it was lost in an
at-fork hook ("Exception ignored") and the epoch went on."""

from __future__ import annotations

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
            return str(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)

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


def test_the_workers_keep_the_handlers_of_their_parent_not_the_deferral():
    done = _run("trajkit.dataloader", "go on")
    assert done.stdout == "['True']\n", done


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
