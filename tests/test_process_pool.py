"""joblib's worker processes end with the command that started them, even one killed with
SIGKILL: they waited out loky's 300 s idle timeout, about 680 MB each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STARTS_WORKERS = textwrap.dedent(
    """
    import os, sys, time
    from joblib import delayed
    from trajkit.workers import process_pool

    def pid(_):
        time.sleep(0.5)  # so each worker takes one
        return os.getpid()

    with process_pool(2) as parallel:
        print(*sorted(set(parallel(delayed(pid)(i) for i in range(4)))), flush=True)
        time.sleep(600)  # killed here, its workers idle
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_workers_of_a_killed_command_end_within_seconds():
    command = subprocess.Popen(
        [sys.executable, "-c", STARTS_WORKERS], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        workers = [int(p) for p in command.stdout.readline().split()]
        assert workers and command.pid not in workers
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in workers if _alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, f"workers {left} outlived the killed command"
    finally:
        command.kill()
