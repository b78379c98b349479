"""joblib's process workers, ended by the command that started them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from joblib import Parallel


@contextmanager
def process_pool(workers: int) -> Iterator[Parallel]:
    """A ``Parallel`` of ``workers`` processes yielding results as they finish, whose
    processes end with the block (one worker runs in this process)."""
    try:
        with Parallel(n_jobs=workers, return_as="generator_unordered") as parallel:
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
