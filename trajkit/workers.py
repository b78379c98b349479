"""joblib's process workers, ended by the command that started them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from joblib import Parallel

PARENT_CHECK_SECONDS = 1.0


@contextmanager
def process_pool(workers: int) -> Iterator[Parallel]:
    """A ``Parallel`` of ``workers`` processes yielding results as they finish, whose
    processes end with the block (one worker runs in this process)."""
    try:
        with Parallel(
            n_jobs=workers,
            return_as="generator_unordered",
            initializer=end_with_parent,
            initargs=(os.getpid(),),
        ) as parallel:
            yield parallel
    finally:
        if workers > 1:
            stop_process_workers()


def stop_process_workers() -> None:
    """End loky's reusable worker processes now, inside the command's stop handler.

    Left to the interpreter's exit, multiprocessing joined them until their idle timeout
    (300 s after a finished ``convert``), and they were shut down after the handler was gone:
    a Ctrl-C there printed their tracebacks and exited 0, a SIGTERM exited 143 unannounced.
    """
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor(reuse=True).shutdown(wait=True, kill_workers=True)


def end_with_parent(parent: int) -> None:
    """In a worker process: end it once ``parent``, the command that started it, is gone.
    A command killed with SIGKILL cannot stop its workers, and they waited out loky's idle
    timeout, 300 s, holding about 680 MB each (measured after ``generate --workers 2``)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
