"""What ``torchrun`` tells its processes through the environment, read without torch: a
command that runs in one process refuses a ``torchrun`` start before it loads anything."""

from __future__ import annotations

import os
import sys


def env_world_size() -> int:
    """The job's process count as ``torchrun`` set it (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """This process's rank as ``torchrun`` set it: 0 alone (a ``RANK`` left in the
    environment of a one-process run does not make it a non-writer)."""
    if env_world_size() <= 1:
        return 0
    return int(os.environ.get("RANK", "0"))


def refusal_under_torchrun(prog: str) -> int | None:
    """The exit status of ``prog``, which runs in one process, started by ``torchrun``; None
    without it. Each rank took the others for another command holding its lock, or computed
    everything again and printed it again. Rank 0 says why and exits 2; the others leave
    quietly with 0, as torchrun stops every rank once one fails: a rank that failed first
    stopped rank 0 before it could say anything (one run in two)."""
    if env_world_size() <= 1:
        return None
    if env_rank() != 0:
        return 0
    print(f"{prog}: error: it runs in one process: run it without torchrun", file=sys.stderr)
    return 2
