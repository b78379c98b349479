"""A DataLoader worker's death told in one line: torch reports it as a RuntimeError from
wherever the main process happens to be, a traceback in every trainer. No torch here: the
commands import this before torch, whose import a Ctrl-C must be able to stop cleanly."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass

# torch's report of a DataLoader worker that died: killed by a signal (the kernel's
# out-of-memory killer sends SIGKILL), or gone with an exit status of its own.
WORKER_DIED = re.compile(
    r"DataLoader worker \(pid(?:\(s\))? (?P<pid>[\d, ]+)\) (?:is killed by signal: "
    r"(?P<signal>[^.\n]+)\.|exited unexpectedly(?: with exit code (?P<code>-?\d+))?)"
)
WORKER_REPORT_WAIT = 2.0  # seconds; see worker_lost
SIGNALS = {signal.strsignal(s): s for s in signal.Signals}  # torch names a signal by strsignal
WORKER_SIGNAL_ADVICE = {
    signal.SIGKILL: "likely out of memory (the kernel's out-of-memory killer sends it)",
    signal.SIGBUS: "likely out of shared memory (/dev/shm)",
}


@dataclass(frozen=True)
class WorkerKnobs:
    """How a command's user asks for fewer or no worker processes, for the advice."""

    fewer: str  # e.g. "lower --workers or --batch-size"
    none: str  # e.g. "run with --workers 0"


def worker_died(error: BaseException, knobs: WorkerKnobs) -> str | None:
    """``error`` as one line when it is torch's report of a data-loading worker that died (the
    out-of-memory killer's SIGKILL, a crash), else None. A worker stopped by Ctrl-C or
    SIGTERM is a stop (``trajkit.cli.caused_by_interrupt``), to be checked first."""
    found = WORKER_DIED.search(str(error)) if isinstance(error, RuntimeError) else None
    if found is None:
        return None
    # torch's "exited unexpectedly" may wrap the signal's report, raised while it waited.
    cause = error.__cause__
    if isinstance(cause, RuntimeError) and (signalled := WORKER_DIED.search(str(cause))):
        found = signalled
    worker = f"a data-loading worker (pid {found['pid']})"
    if found["signal"] is None:
        code = f" with exit status {found['code']}" if found["code"] else ""
        return f"{worker} exited unexpectedly{code}; {knobs.none} to see why"
    signum = SIGNALS.get(found["signal"])
    if signum is None:
        return f"{worker} was killed by signal {found['signal']!r}"
    killed = f"{worker} was killed by signal {signum.value} ({signum.name})"
    advice = WORKER_SIGNAL_ADVICE.get(signum)
    return f"{killed}, {advice}: {knobs.fewer}" if advice else killed


def worker_lost(error: BaseException, knobs: WorkerKnobs) -> str | None:
    """For a connection that broke while a data-loading worker handed over a batch
    (ConnectionError, EOFError): torch's report of the worker's death, else None. The broken
    connection comes first and torch's SIGCHLD handler raises the report moments later,
    wherever the main process then is: it was inside this error's line, a traceback after
    half of it. An exited worker's SIGCHLD comes within milliseconds and ends the wait."""
    if not isinstance(error, (ConnectionError, EOFError)):
        return None
    try:
        time.sleep(WORKER_REPORT_WAIT)
    except RuntimeError as report:
        if (said := worker_died(report, knobs)) is None:
            raise
        return said
    return None


def worker_death(error: BaseException, knobs: WorkerKnobs) -> str | None:
    """``worker_died`` or ``worker_lost``: what every command's error handling asks."""
    return worker_died(error, knobs) or worker_lost(error, knobs)
