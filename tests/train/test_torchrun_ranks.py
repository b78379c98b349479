"""``python -m train`` under torchrun when its processes do not meet alike: a split with fewer
samples than processes, and a process that dies mid-run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from subprocess import PIPE

import pytest
import torch
import torch.distributed as dist

from tests.train.conftest import kill_a_rank, kill_job, torchrun_command
from train.distributed import peer_stopped

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--workers", "0", "--threads", "1", "--quiet"]
GLOO_RESET = (
    "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error "
    "[127.0.0.1]:40000: Connection reset by peer"
)
STOPPED = (
    "python -m train: error: another process of this run stopped (torchrun reports it below), "
    "so this one stops too; a --resume needs the same process count; "
)


def torchrun(*argv: str, timeout: float) -> subprocess.CompletedProcess:
    """Two processes of ``argv``; a hang past ``timeout`` fails the test, with every process
    of the job killed (``subprocess.run`` would kill torchrun alone and leave its workers)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = torchrun_command(*argv)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_job(proc.pid)
        proc.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_a_split_smaller_than_the_process_count_is_scored_once(small_config, tmp_path):
    """About 15 s. Rank 1 had no validation clip and waited in the sum of the metrics while
    rank 0 scored its clip through DDP, whose forward waits for every rank: a hang for ever."""
    out = tmp_path / "run"
    argv = ["-m", "train", "--extractor", "i3d", "--render", str(small_config), "--out", str(out)]
    argv += ["--eval-samples", "1", "--epoch-samples", "4", "--batch-size", "2", "--epochs", "1"]
    proc = torchrun(*argv, *FAST, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2
    for split in ("val", "test"):
        assert results[f"{split}_samples"] == 1
        assert sum(map(sum, results[f"{split}_confusion"])) == 1
        assert results[f"{split}_loss"] > 0 and results[f"{split}_future_rmse"] > 0


@pytest.mark.slow
def test_a_killed_process_leaves_its_twin_one_line_and_exit_1(small_config, tmp_path):
    """About 25 s. SIGKILL to rank 1 once epoch 1 is saved: rank 0 printed 40 lines of gloo's
    "Connection reset by peer" traceback from whichever collective it was in."""
    out = tmp_path / "run"
    argv = ["-m", "train", "--extractor", "i3d", "--render", str(small_config), "--out", str(out)]
    argv += ["--eval-samples", "2", "--epoch-samples", "4", "--batch-size", "2", "--epochs", "500"]
    code, err = kill_a_rank(torchrun_command(*argv, *FAST), out / "last.pt", rank=1)
    said = [line for line in err.splitlines() if line.startswith("python -m train")]
    assert said == [
        f"{STOPPED}{out / 'last.pt'} holds the last finished epoch, continue with --resume"
    ]
    assert "[rank0]: Traceback" not in err and err.count("Traceback") == 1, err  # torchrun's only
    assert code == 1 and "exitcode  : 1" in err, err  # rank 0's exit, not torchrun's SIGTERM
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1


def test_only_a_collective_s_failure_under_torchrun_is_a_stopped_process(monkeypatch):
    """An error of the same words in a process alone, or another error under torchrun, is
    not turned into the line: the trainers raise it as before."""
    assert peer_stopped(RuntimeError(GLOO_RESET)) is None  # no torchrun job
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert peer_stopped(RuntimeError(GLOO_RESET)).startswith("another process of this run")
    assert peer_stopped(dist.DistBackendError(GLOO_RESET)) is not None
    assert peer_stopped(RuntimeError("shape mismatch")) is None
    assert peer_stopped(OSError("Connection reset by peer")) is None
