import errno
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest
import torch

from generator.__main__ import main as generate
from trajkit.files import temporary_beside


def small_clips_dataset(where: Path, n: int) -> Path:
    """``n`` samples of 4 cameras x 8 frames x 32 x 32 under ``where``: seconds to make."""
    (where / "gen.yaml").write_text("image_size: 32\nframes: 8\n")
    root = where / "ds"
    args = ["--n", n, "--out", root, "--workers", "1", "--config", where / "gen.yaml", "--quiet"]
    assert generate([str(a) for a in args]) == 0
    return root


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """48 samples: enough for every split."""
    return small_clips_dataset(tmp_path_factory.mktemp("train_data"), 48)


@pytest.fixture
def stop_after_first_epoch(monkeypatch):
    """Call it to make the next ``Run.fit`` raise KeyboardInterrupt once epoch 1 is saved."""
    from train.trajectory.loop import Run

    fit = Run.fit

    def fit_interrupted_after_first_epoch(self, on_epoch_end=None):
        def stop(epoch):
            if epoch == 1:
                raise KeyboardInterrupt

        return fit(self, stop)

    return lambda: monkeypatch.setattr(Run, "fit", fit_interrupted_after_first_epoch)


@pytest.fixture
def disk_full_after_first_last_pt():
    """A context in which every later save of a ``last.pt`` fails as a full disk does: half
    written, then ENOSPC with no file name. The first one is written, so a run stops at its
    second epoch with epoch 1's checkpoint to resume from."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        temporary = Path(getattr(f, "name", ""))
        last = temporary.parent / "last.pt"
        if temporary == temporary_beside(last) and last.exists():
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    @contextmanager
    def full():
        with pytest.MonkeyPatch.context() as m:
            m.setattr(torch, "save", save)
            yield

    return full


def assert_stopped_on_the_full_disk(capsys, run: Path) -> None:
    """One error line naming the full disk and the file (after the epochs' log lines, which
    the JEPA trainer prints), last.pt whole at epoch 1, no temporary."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if not line.startswith("epoch ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"No space left on device: {run / 'last.pt'}" in errors[0], err
    assert "--resume" in errors[0], err
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    assert not [p.name for p in run.iterdir() if p.name.startswith(".tmp-")]


@pytest.fixture
def tensorboard_disk_full(monkeypatch):
    """Every TensorBoard event write fails as on a full disk, with no file name: its writer
    thread's error, which the trainer gets at its next write or flush."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RecordWriter, "write", full)


def assert_stopped_naming_tensorboard(capsys, run: Path) -> str:
    """One error line naming the run's TensorBoard folder (it named no file at all); returns it."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if not line.startswith(("epoch ", "resuming "))]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"No space left on device: {run / 'tensorboard'};" in errors[0], err
    return errors[0]


NO_EPOCH_FINISHED = "no epoch finished, {run} holds no checkpoint: run the same command again"


def loading_worker(trainer: psutil.Process, within: float) -> psutil.Process:
    """A DataLoader worker of ``trainer``: a forked child, so its command line is the
    trainer's (the dataset check's pool workers run a command of their own)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for child in trainer.children():
            try:
                if child.cmdline() == trainer.cmdline():
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.05)
    pytest.fail(f"no data-loading worker of process {trainer.pid} within {within} s")


def kill_a_loading_worker(command: list[str], last_pt: Path) -> tuple[int, str, int]:
    """Run the trainer ``command`` (its data loader with a worker process), SIGKILL that
    worker once ``last_pt`` is saved, as the kernel's out-of-memory killer does; returns the
    exit status, stderr and the worker's pid."""
    victims = []

    def worker(trainer: psutil.Process) -> psutil.Process:
        victims.append(loading_worker(trainer, within=30))
        return victims[0]

    code, err = kill_once_saved(command, last_pt, worker)
    return code, err, victims[0].pid


def torchrun_command(*argv: str) -> list[str]:
    """Two CPU processes of ``argv``; torchrun polls its processes every 5 s, not 0.1 s, so a
    survivor meets its dead twin in a collective before torchrun stops it with SIGTERM."""
    import sys

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, "--nproc_per_node", "2", "--monitor-interval", "5", *argv]


def kill_job(pid: int) -> None:
    """SIGKILL torchrun ``pid`` and its processes: they run in sessions of their own, and one
    hung in a collective waits out gloo's 30-minute timeout, holding the output pipes."""
    job = psutil.Process(pid)
    for process in [*job.children(recursive=True), job]:
        with suppress(psutil.NoSuchProcess):
            process.kill()


def kill_a_rank(command: list[str], last_pt: Path, rank: int) -> tuple[int, str]:
    """Run the torchrun ``command``, SIGKILL its process of ``rank`` once ``last_pt`` is
    saved; returns torchrun's exit status and stderr (its processes' and its own)."""

    def of_rank(job: psutil.Process) -> psutil.Process:
        return next(p for p in job.children() if p.environ().get("RANK") == str(rank))

    return kill_once_saved(command, last_pt, of_rank, {"OMP_NUM_THREADS": "1"})


def kill_once_saved(
    command: list[str], last_pt: Path, victim: Callable, env: dict | None = None
) -> tuple[int, str]:
    """Run ``command`` (with ``env`` added), SIGKILL the process ``victim`` picks of it once
    ``last_pt`` is saved; returns the command's exit status and stderr."""
    import os
    import signal
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    proc = subprocess.Popen(command, cwd=root, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not last_pt.exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "no epoch finished within 120 s"
            time.sleep(0.1)
        victim(psutil.Process(proc.pid)).send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            kill_job(proc.pid)
            proc.wait()
    return proc.returncode, err


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    """A generator config small enough to render runs' samples on the fly in seconds."""
    path = tmp_path_factory.mktemp("render") / "gen.yaml"
    path.write_text("image_size: 32\nframes: 8\n")
    return path
