"""An error raised in a DataLoader worker reaches the user as one line of its own, and the
command that reports it ends: it neither prints the worker's traceback nor waits for ever
at exit on a worker that ignored torch's SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from trajkit.cli import first_line, leave_stops_to_main_process, one_line

ROOT = Path(__file__).resolve().parents[1]


class Damaged(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> int:
        if i == 5:
            try:
                raise KeyError(i)
            except KeyError:  # a chained error: the worker's traceback holds both
                raise ValueError(f"sample {i} is damaged: see validate") from None
        return i


def _worker_error() -> Exception:
    loader = torch.utils.data.DataLoader(
        Damaged(), batch_size=2, num_workers=1, worker_init_fn=leave_stops_to_main_process
    )
    with pytest.raises(ValueError) as caught:
        list(loader)
    return caught.value


def test_a_worker_error_is_its_own_message_on_one_line():
    error = _worker_error()
    assert "Original Traceback" in str(error)  # what torch hands on
    assert one_line(f"error: {error}; run validate") == (
        "error: sample 5 is damaged: see validate; run validate"
    )
    assert first_line(error) == "sample 5 is damaged: see validate"
    assert first_line(ValueError("first\nsecond")) == "first"
    assert one_line("a\nb") == "a\\nb"  # anything else keeps every line, escaped


EXITS = textwrap.dedent(
    """
    import sys, torch
    from trajkit.cli import leave_stops_to_main_process, one_line
    sys.path.insert(0, {tests!r})
    from test_worker_errors import Damaged
    loader = torch.utils.data.DataLoader(
        Damaged(), batch_size=1, num_workers=2, worker_init_fn=leave_stops_to_main_process
    )
    try:
        list(loader)
    except ValueError as e:
        print(one_line(f"error: {{e}}"), file=sys.stderr)
        sys.exit(2)
    """
)


def test_a_command_that_reports_a_worker_error_ends():
    """With SIGTERM ignored in the workers, this hung at exit every time: torch's shutdown
    ends a worker that did not stop with SIGTERM, and Python's exit waits for its children."""
    script = EXITS.format(tests=str(Path(__file__).parent))
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process hung at exit after a worker error")
    assert done.returncode == 2
    assert done.stderr == "error: sample 5 is damaged: see validate\n"
