import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_torchrun_two_processes_on_cpu(tmp_path, jepa_files):
    """DDP under torchrun (gloo on CPU): both ranks train on disjoint shards, rank 0 writes."""
    raw = jepa_files.tiny_config(tmp_path, optim={"epochs": 1, "batch_size": 8})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",  # a free port of its own: two suites on one machine do not collide
        "-m",
        "train.jepa",
        "--config",
        str(path),
        "--quiet",
    ]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "run"
    epoch = [
        json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "level_loss" in x
    ]
    # 48 images, 24 per rank, 3 batches of 8 per rank: 48 consumed in all, counted across ranks
    assert epoch[-1]["dataset_counts"] == {"synthetic": 48}
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and not any(k.startswith("module.") for k in ckpt["student"])


@pytest.mark.slow
def test_a_killed_process_leaves_its_twin_one_line_and_exit_1(tmp_path, jepa_files):
    """About 25 s. SIGKILL to rank 1 once epoch 1 is saved: rank 0 printed 40 lines of gloo's
    "Connection reset by peer" traceback from whichever collective it was in."""
    from tests.train.conftest import kill_a_rank, torchrun_command

    raw = jepa_files.tiny_config(tmp_path, optim={"epochs": 1000, "batch_size": 8})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    last = tmp_path / "run" / "last.pt"
    command = torchrun_command("-m", "train.jepa", "--config", str(path), "--quiet")
    code, err = kill_a_rank(command, last, rank=1)
    said = [line for line in err.splitlines() if line.startswith("error:")]
    assert said == [
        "error: another process of this run stopped (torchrun reports it below), so this one "
        f"stops too; a --resume needs the same process count; {last} holds the last finished "
        "epoch, continue with --resume"
    ], err
    assert "[rank0]: Traceback" not in err and err.count("Traceback") == 1, err  # torchrun's only
    assert code == 1 and "exitcode  : 1" in err, err  # rank 0's exit, not torchrun's SIGTERM
    assert torch.load(last, weights_only=True)["epoch"] >= 1
