"""Fixtures every test package may use."""

import importlib.util
import signal
from pathlib import Path

import pytest
from joblib.externals.loky import get_reusable_executor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def stop_handlers_as_in_a_terminal():
    """Each test starts, and leaves, with the stop handlers Python has when started from a
    terminal. A background job (``make test &``, a CI runner without a terminal) starts with
    SIGINT ignored, and in-process ``main`` calls install their own: a Ctrl-C test then passed
    or failed by which tests had run before it (1 whole run in 4, and always alone)."""
    wanted = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    for signum, handler in wanted.items():
        signal.signal(signum, handler)
    yield
    for signum, handler in wanted.items():
        signal.signal(signum, handler)


@pytest.fixture
def in_tmp_path(tmp_path: Path, monkeypatch) -> Path:
    """Run the test inside `tmp_path`.

    joblib keeps its worker processes for the next call, and a worker keeps the folder it
    started in as its working directory; once pytest deletes `tmp_path`, such a worker
    cannot import a module any more, so the workers are stopped with the test.
    """
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    get_reusable_executor().shutdown(wait=True)


@pytest.fixture
def bench():
    """``benchmarks/bench_train.py`` as a module, fresh for each test (some patch it)."""
    spec = importlib.util.spec_from_file_location(
        "bench_train", ROOT / "benchmarks" / "bench_train.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
