"""Where generation tasks run: local processes (joblib's loky) or a Dask cluster.

Both go through one ``joblib.Parallel``, so the tasks, their arguments and
hence the bytes written are the same; with Dask, joblib's ``dask`` backend
ships each task to the cluster (https://joblib.readthedocs.io/en/stable/
auto_examples/parallel/distributed_backend_simple.html). Dask workers write
to ``--out`` themselves, so it must be a path they all see (a shared
filesystem) and the ``generator`` package must be importable on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from joblib import Parallel, parallel_config

from generator.pipeline.request import Request
from trajkit.workers import process_pool

BACKENDS = ("loky", "dask")
CONNECT_TIMEOUT = "10s"


class BackendError(RuntimeError):
    """The cluster cannot be reached or used; the message is one line."""


@contextmanager
def open_backend(req: Request) -> Iterator[Parallel]:
    """A ``Parallel`` yielding task results as they finish, on the requested backend."""
    if req.backend == "loky":
        with process_pool(req.workers) as parallel:
            yield parallel
        return
    if req.backend != "dask":
        raise BackendError(f"unknown backend {req.backend!r}; choose one of {', '.join(BACKENDS)}")
    if not req.scheduler:
        raise BackendError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    try:
        from dask.distributed import Client
    except ImportError:
        raise BackendError(
            "--backend dask needs Dask: pip install 'trajectory-suite[dask]'"
        ) from None
    try:
        client = Client(req.scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as e:
        raise BackendError(
            f"cannot reach the Dask scheduler at {req.scheduler}: {str(e).splitlines()[0]}"
        ) from None
    try:
        with parallel_config(backend="dask", wait_for_workers_timeout=30):
            with Parallel(n_jobs=-1, return_as="generator_unordered") as parallel:
                yield parallel
    finally:
        client.close()
