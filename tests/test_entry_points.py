"""Every command line's process, to its very end: a stop that comes after the command has
returned (in an exit function: joblib's folders, multiprocessing's children) is one line
and exit 130, not a traceback, a silent exit 0 or an unannounced 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    "generator",
    "extractors",
    "train",
    "train.parallel",
    "train.evaluate",
    "train.jepa",
    "train.jepa.evaluate",
    "train.jepa.download",
    "train.saliency",
    "train.saliency.parallel",
    "train.saliency.verify",
    "train.saliency.convert",
    "train.saliency.synthetic",
]

# ``python -m MODULE ARGS`` that signals itself from an exit function, after the command.
STOP_FROM_AN_EXIT_FUNCTION = """
import atexit, os, runpy, signal, sys
signum = int(sys.argv.pop(1))
atexit.register(os.kill, os.getpid(), signum)
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


def stopped_at_exit(module: str, *args: str, signum: int = signal.SIGINT):
    return subprocess.run(
        [sys.executable, "-c", STOP_FROM_AN_EXIT_FUNCTION, str(int(signum)), module, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("module", COMMANDS)
def test_a_stop_after_the_command_is_one_line_and_130(module):
    done = stopped_at_exit(module, "--help")
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted: the command had ended (exit 0) before the stop\n"
    assert "usage:" in done.stdout  # the command's own output is whole


def test_sigterm_after_a_failed_command_names_its_exit_code():
    done = stopped_at_exit("train", "--epochs", "0", signum=signal.SIGTERM)
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines()[1:] == [
        "interrupted: the command had ended (exit 2) before the stop"
    ]
