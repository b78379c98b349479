import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> int:
    """Run ``python -m generator`` in-process; returns the exit code."""
    return main([str(a) for a in args])


def kill_generator_when(args: list[str], ready, timeout: float = 120.0) -> None:
    """Start ``python -m generator ARGS`` in its own process group and SIGKILL the whole group
    (workers too) as soon as ``ready()`` is true; fails if the run ends first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def kill_when():
    return kill_generator_when


def run_subprocess(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "generator", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        **kw,
    )


def file_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every video and label file, keyed by relative path."""
    out = {}
    for sub in ("videos", "labels"):
        for p in sorted((root / sub).iterdir()):
            out[f"{sub}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def digests():
    return file_digests


@pytest.fixture
def subprocess_cli():
    return run_subprocess


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """24 samples in chunks of 10, made once for the read-only tests."""
    root = tmp_path_factory.mktemp("ds") / "small"
    assert (
        run_cli("--n", 24, "--out", root, "--workers", 1, "--checkpoint-every", 10, "--quiet") == 0
    )
    return root


@pytest.fixture(scope="session")
def small_shard_dataset(tmp_path_factory) -> Path:
    """12 samples in shards of 4 and chunks of 8, made once for the read-only tests."""
    root = tmp_path_factory.mktemp("ds") / "small_shards"
    args = ["--n", 12, "--out", root, "--workers", 1, "--checkpoint-every", 8, "--quiet"]
    assert run_cli(*args, "--format", "shards", "--shard-size", 4) == 0
    return root
