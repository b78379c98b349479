"""Fixtures every test package may use."""

from pathlib import Path

import pytest
from joblib.externals.loky import get_reusable_executor


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
