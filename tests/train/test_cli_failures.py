"""``python -m train`` and ``python -m train.evaluate`` facing what breaks under them: a
data-loading worker killed, a plugin extractor that breaks its contract, a run whose extractor
is gone, a batch size past any memory, an epoch larger than the process may hold. Each is one
line and an exit status, and nothing already written is lost."""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from torch import nn

from extractors import registry
from extractors.config import ExtractorConfig
from generator.dataformat.dataset import TrajectoryDataset
from tests.train.conftest import kill_a_loading_worker, loading_worker
from train.checkpoint import load_checkpoint
from train.trajectory.cli import KNOBS
from train.trajectory.cli import main as train
from train.trajectory.config import MAX_BATCH_SIZE
from train.trajectory.evaluate_cli import main as evaluate
from train.trajectory.parallel import main as train_parallel
from train.trajectory.preflight import SHUFFLE_BYTES, cgroup_memory_limit, physical_memory
from trajkit.worker_deaths import worker_died, worker_lost

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--threads", "1", "--quiet"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("failures") / "i3d"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", str(out)]
    assert train([*argv, "--workers", "0", *FAST]) == 0
    return out


# ------------------------------------------------------------ a killed data-loading worker


def test_a_killed_loading_worker_is_one_line_exit_1_and_last_pt_stays(dataset, tmp_path):
    """As the kernel's out-of-memory killer does it: SIGKILL to a worker mid-run, once an
    epoch is saved. It was torch's traceback from wherever the trainer was."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "train", "--extractor", "i3d", "--data", str(dataset)]
    command += ["--epochs", "1000", "--out", str(out), "--workers", "1", *FAST]
    code, err, pid = kill_a_loading_worker(command, out / "last.pt")
    err = err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert f"a data-loading worker (pid {pid}) was killed by signal 9 (SIGKILL)" in err
    assert "likely out of memory" in err and "lower --workers or --batch-size" in err, err
    assert f"{out / 'last.pt'} holds the last finished epoch, continue with --resume" in err
    assert load_checkpoint(out / "last.pt")["epoch"] >= 1
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "message, said",
    [
        (
            "DataLoader worker (pid 4100) is killed by signal: Killed. ",
            "a data-loading worker (pid 4100) was killed by signal 9 (SIGKILL), likely out of "
            "memory (the kernel's out-of-memory killer sends it): lower --workers or --batch-size",
        ),
        (
            "DataLoader worker (pid 7) is killed by signal: Bus error. ",
            "a data-loading worker (pid 7) was killed by signal 7 (SIGBUS), likely out of shared "
            "memory (/dev/shm): lower --workers or --batch-size",
        ),
        (
            "DataLoader worker (pid 7) is killed by signal: Segmentation fault. ",
            "a data-loading worker (pid 7) was killed by signal 11 (SIGSEGV)",
        ),
        (
            "DataLoader worker (pid 7) exited unexpectedly with exit code 3. Details are lost "
            "due to multiprocessing. Rerunning with num_workers=0 may give better error trace.",
            "a data-loading worker (pid 7) exited unexpectedly with exit status 3; run with "
            "--workers 0 to see why",
        ),
        (
            "DataLoader worker (pid(s) 7, 8) exited unexpectedly",
            "a data-loading worker (pid 7, 8) exited unexpectedly; run with --workers 0 to see why",
        ),
        ("mat1 and mat2 shapes cannot be multiplied (32x21 and 16x128)", None),
        ("a DataLoader worker (pid 7) said something else", None),
    ],
)
def test_only_torchs_report_of_a_dead_worker_is_taken_for_one(message, said):
    assert worker_died(RuntimeError(message), KNOBS) == said
    assert worker_died(ValueError(message), KNOBS) is None


def test_the_signal_is_named_when_torch_reports_it_under_exited_unexpectedly():
    """torch's SIGCHLD handler raises the signal's report inside its wait for a batch, which
    catches it and raises "exited unexpectedly" from it: the subprocess test met this."""
    try:
        try:
            raise RuntimeError("DataLoader worker (pid 7) is killed by signal: Killed. ")
        except RuntimeError as e:
            raise RuntimeError("DataLoader worker (pid(s) 7) exited unexpectedly") from e
    except RuntimeError as e:
        said = worker_died(e, KNOBS)
    assert said.startswith("a data-loading worker (pid 7) was killed by signal 9 (SIGKILL)")


class Slow(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        time.sleep(60)
        return i


def test_a_connection_a_killed_worker_broke_is_that_worker():
    """A worker killed while it handed over a batch breaks the connection first (the
    subprocess test met ConnectionResetError), and torch's report follows: awaited, it is
    the line; without a dead worker the error stays what it is."""
    batches = iter(torch.utils.data.DataLoader(Slow(), num_workers=1))
    try:
        worker = loading_worker(psutil.Process(), within=10)
        assert worker_lost(ConnectionResetError(104, "Connection reset by peer"), KNOBS) is None
        threading.Timer(0.3, worker.send_signal, (signal.SIGKILL,)).start()
        said = worker_lost(ConnectionResetError(104, "Connection reset by peer"), KNOBS)
    finally:
        del batches
    assert said.startswith(f"a data-loading worker (pid {worker.pid}) was killed by signal 9")
    assert worker_lost(OSError(28, "No space left on device"), KNOBS) is None


def test_a_killed_loading_worker_in_train_evaluate_is_one_line_exit_1(
    run, dataset, monkeypatch, capsys
):
    def killed_in_a_worker(self, i):
        if torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return read(self, i)

    read = TrajectoryDataset.__getitem__
    monkeypatch.setattr(TrajectoryDataset, "__getitem__", killed_in_a_worker)
    argv = [str(run), "--data", str(dataset), "--workers", "1", "--quiet"]
    assert evaluate(argv) == 1
    err = one_error_line(capsys)
    assert err.startswith("python -m train.evaluate: error: a data-loading worker (pid "), err
    assert "killed by signal 9 (SIGKILL)" in err or "exited unexpectedly" in err, err
    assert not (run / "evaluations").exists()


# ------------------------------------------------------------ a sample damaged in place


def damaged_in_place(dataset: Path, where: Path, split: str) -> Path:
    """A copy of ``dataset`` whose first ``split`` video has 8 bytes overwritten inside its
    tensor: same size, still loads (validate's quick check passes it); returns that video.
    The normalisation statistics are cached first, so the training loop's reads (in the
    loader's workers, with any) are the first to meet it."""
    copy = where / "data"
    shutil.copytree(dataset, copy)
    ds = TrajectoryDataset(copy, split)
    video = copy / "videos" / f"sample_{ds.indices[0]:04d}.pt"
    with open(video, "r+b") as f:
        f.seek(video.stat().st_size // 2)
        f.write(b"XXXXXXXX")
    assert torch.load(video, weights_only=True).shape == tuple(ds.meta["video_shape"])
    return video


def run_command(*args: str) -> subprocess.CompletedProcess:
    """A command as the user runs it: the workers' stderr is the terminal's too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_training_on_a_video_damaged_in_place_is_one_line_exit_1(dataset, tmp_path, workers):
    """It trained on it and exited 0: only the video's SHA-256 shows such a change."""
    video = damaged_in_place(dataset, tmp_path, "train")
    out = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(video.parents[1]), "--epochs", "1"]
    proc = run_command("train", *argv, "--out", str(out), "--workers", workers, *FAST)
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err == f"python -m train: error: {video}: the video's SHA-256 differs from its manifest"
    assert not (out / "last.pt").exists()


def test_scoring_a_video_damaged_in_place_is_one_line_exit_1(run, dataset, tmp_path):
    video = damaged_in_place(dataset, tmp_path, "test")
    argv = [str(run), "--data", str(video.parents[1]), "--workers", "2", "--quiet"]
    proc = run_command("train.evaluate", *argv)
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err == (
        f"python -m train.evaluate: error: {video}: the video's SHA-256 differs from its manifest"
    )
    assert not (run / "evaluations").exists()


# ------------------------------------------------------------ damage the preflight finds


def label_deleted(copy: Path) -> str:
    (copy / "labels" / "sample_0003.json").unlink()
    return "FAIL counts: 1 problem(s); - labels/sample_0003.json is missing"


def label_of_another_video(copy: Path) -> str:
    """Sample 3's label vouches for sample 4's video, its own SHA-256 recorded in the manifest
    (a label from another dataset, the manifest edited with it): it was trained on."""
    label = copy / "labels" / "sample_0003.json"
    other = json.loads((copy / "labels" / "sample_0004.json").read_text())["video_sha256"]
    data = json.dumps({**json.loads(label.read_text()), "video_sha256": other}).encode()
    label.write_bytes(data)
    for manifest in (copy / "checkpoints").glob("checkpoint_*.json"):
        m = json.loads(manifest.read_text())
        for e in m["samples"]:
            if e["index"] == 3:
                e["label_sha256"] = hashlib.sha256(data).hexdigest()
        manifest.write_text(json.dumps(m))
    return "FAIL label schema: 1 problem(s); - labels/sample_0003.json does not vouch for its video"


@pytest.mark.parametrize("damage", [label_deleted, label_of_another_video])
def test_training_on_a_dataset_its_preflight_finds_damaged_is_exit_1(dataset, tmp_path, damage):
    """Damage is a data error wherever it is found: exit 1, as a read during training says it.
    Found by the preflight's quick validate, it was exit 2."""
    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    failed = damage(copy)
    out = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(copy), "--epochs", "1", "--out", str(out)]
    proc = run_command("train", *argv, "--workers", "0", *FAST)
    err = proc.stderr.strip()
    assert proc.returncode == 1 and err == (
        f"python -m train: error: dataset {copy} failed validation: {failed} "
        f"(run python -m generator validate {copy})"
    ), (proc.returncode, err)
    assert not (out / "last.pt").exists()


def test_a_round_on_a_dataset_its_check_finds_damaged_is_exit_1(dataset, tmp_path, capsys):
    """train.parallel checks every run before any starts; damage it found was exit 2 where
    each run's own train says exit 1."""
    from train.trajectory.parallel import main as parallel

    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    failed = label_deleted(copy)
    out = tmp_path / "runs"
    argv = ["--extractors", "i3d", "magvit", "--data", str(copy), "--epochs", "1"]
    assert parallel([*argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"python -m train.parallel: error: i3d: dataset {copy} failed validation: {failed} "
        f"(run python -m generator validate {copy})"
    ), err
    assert not list(out.glob("*/last.pt"))


def test_scoring_on_a_dataset_its_preflight_finds_damaged_is_exit_1(run, dataset, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    failed = label_deleted(copy)
    proc = run_command("train.evaluate", str(run), "--data", str(copy), "--quiet")
    err = proc.stderr.strip()
    assert proc.returncode == 1 and err == (
        f"python -m train.evaluate: error: dataset {copy} failed validation: {failed} "
        f"(run python -m generator validate {copy})"
    ), (proc.returncode, err)
    assert not (run / "evaluations").exists()


# ------------------------------------------------------------- a plugin that breaks its contract


class ToyConfig(ExtractorConfig):
    presets = {"tiny": {"embed_dim": 4}, "base": {"embed_dim": 4}}


class Toy(nn.Module):
    """A working extractor whose output ``changed`` makes a broken one."""

    def __init__(self, config: ToyConfig, changed=lambda y: y) -> None:
        super().__init__()
        self.embed_dim = config.embed_dim
        self.linear = nn.Linear(3, config.embed_dim)
        self.changed = changed

    def forward(self, x):
        return self.changed(self.linear(x.mean(dim=(2, 3, 4))))


def with_embed_dim(value):
    def build(config):
        model = Toy(config)
        model.embed_dim = value
        return model

    return build


def factory_fails(config):
    raise KeyError("factory fails")


def refuses(kind):
    def forward(y):
        raise kind("forward refuses")

    return forward


BROKEN = f"extractor 'broken' ({__name__}) breaks the contract: "


@pytest.mark.parametrize(
    "factory, said",
    [
        (
            lambda c: Toy(c, lambda y: torch.cat([y, y], dim=1)),
            f"{BROKEN}forward on a 4x3x8x16x16 clip returned 4x8, not 4x4 (batch, embed_dim)",
        ),
        (lambda c: Toy(c, lambda y: y[:, :, None]), "clip returned 4x4x1, not 4x4"),
        (lambda c: Toy(c, lambda y: y[:1]), "clip returned 1x4, not 4x4 (batch, embed_dim)"),
        (lambda c: Toy(c, lambda y: (y, y)), "forward returned a tuple, not a tensor"),
        (
            lambda c: Toy(c, lambda y: y.double()),
            f"extractor 'broken' ({__name__}): the run's model fails on one sample (Runtime",
        ),
        (with_embed_dim("4"), "must set a positive int 'embed_dim', got '4'"),
        (factory_fails, f"{BROKEN}building it raised KeyError: 'factory fails'"),
        (lambda c: Toy(c, refuses(ValueError)), "clip raised ValueError: forward refuses"),
        (lambda c: Toy(c, refuses(TypeError)), "clip raised TypeError: forward refuses"),
        (lambda c: Toy(c, refuses(KeyError)), "clip raised KeyError: 'forward refuses'"),
    ],
)
def test_an_extractor_that_breaks_the_contract_is_refused_before_the_run_folder(
    factory, said, dataset, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_extractor("broken", description="x", config=ToyConfig)(factory)
    out = tmp_path / "run"
    argv = ["--extractor", "broken", "--data", str(dataset), "--epochs", "1", "--out", str(out)]
    assert train([*argv, "--workers", "0", *FAST]) == 2
    err = one_error_line(capsys)
    assert err.startswith("python -m train: error: extractor 'broken' (") and said in err, err
    assert not out.exists()


def test_the_model_check_leaves_the_random_numbers_and_threads_as_they_were(dataset, tmp_path):
    """The run seeds its model itself, but a resumed run restores the generator's state from
    its checkpoint before anything else draws: the check must not draw from it."""
    from generator.dataformat.dataset import read_metadata
    from train.trajectory.config import merged_values, validated_config
    from train.trajectory.preflight import check_model

    values = {"extractor": "i3d", "data": str(dataset), "out": str(tmp_path), "epochs": 1}
    cfg = validated_config(merged_values(values, None))
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    check_model(cfg, read_metadata(dataset))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------- a run whose extractor cannot be built here


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"extractor": "gone"}, "unknown extractor 'gone'; known: "),
        ({"extractor_options": {"bogus": 1}}, "I3DConfig: bogus: unknown field"),
    ],
)
def test_evaluating_a_run_whose_extractor_cannot_be_built_is_one_line_exit_2(
    run, dataset, tmp_path, capsys, change, reason
):
    """A plugin uninstalled since, or a config field an extractor no longer has."""
    copy = tmp_path / "run"
    copy.mkdir()
    state = torch.load(run / "best.pt", weights_only=True)
    state["config"].update(change)
    torch.save(state, copy / "best.pt")
    assert evaluate([str(copy), "--data", str(dataset), "--workers", "0", "--quiet"]) == 2
    err = one_error_line(capsys)
    assert f"{copy}: its extractor {state['config']['extractor']!r} cannot be built here (" in err
    assert reason in err, err
    assert sorted(p.name for p in copy.iterdir()) == ["best.pt"]


# ------------------------------------------------------------------ the batch size's bound


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("size", [str(MAX_BATCH_SIZE + 1), "99999999999999999999"])
def test_a_batch_size_past_the_bound_is_a_usage_error(command, size, run, dataset, capsys):
    """Past sys.maxsize it was a traceback from torch's batch sampler."""
    if command == "train":
        argv = ["--extractor", "i3d", "--data", str(dataset), "--epochs", "1", "--out", "o"]
        main = train
    else:
        argv, main = [str(run), "--data", str(dataset)], evaluate
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--batch-size", size, "--workers", "0", "--quiet"])
    assert exited.value.code == 2
    err = one_error_line(capsys)
    assert f"argument --batch-size: must be 1..{MAX_BATCH_SIZE}, got {size}" in err, err


# ------------------------------------------------------------------ the memory an epoch takes


def test_an_epoch_past_the_address_space_limit_is_refused_naming_it(tmp_path):
    """Under ``ulimit -v`` (as under a container's or Slurm's limit) the check compared with
    the machine's memory, and the run failed some 40 s in as 'out of memory ... lower the
    batch size'."""
    limit = 6 * 2**30  # room for torch, whose libraries alone map 3 GiB of address space
    samples = math.ceil(1.5 * limit / SHUFFLE_BYTES)
    if (physical_memory() or 0) < SHUFFLE_BYTES * samples:
        pytest.skip("this machine's memory is below the limit tested")

    def lower_the_limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

    out = tmp_path / "run"
    command = [sys.executable, "-m", "train", "--extractor", "i3d", "--render", "--epochs", "1"]
    command += ["--epoch-samples", str(samples), "--eval-samples", "8", "--out", str(out)]
    command += ["--workers", "0", *FAST]
    started = time.monotonic()
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lower_the_limit,
        timeout=120,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert f"--epoch-samples {samples:,}: shuffling an epoch takes about 9 GiB" in err, err
    assert "more than the 6 GiB of this process's limit RLIMIT_AS (ulimit -v)" in err, err
    assert time.monotonic() - started < 30
    assert not out.exists()


def test_the_control_group_limit_is_the_tightest_of_the_group_and_those_above(tmp_path):
    """cgroup v1 (a memory controller's folder) and v2 (one hierarchy); a group the process
    names that is not under the root (a container's view) is looked for above."""
    v1 = tmp_path / "v1"
    for folder, limit in [("", 2**63 - 4096), ("job", 8 * 2**30), ("job/step", 16 * 2**30)]:
        (v1 / "memory" / folder).mkdir(parents=True, exist_ok=True)
        (v1 / "memory" / folder / "memory.limit_in_bytes").write_text(f"{limit}\n")
    membership = tmp_path / "cgroup"
    membership.write_text("5:cpu,cpuacct:/job/step\n4:memory:/job/step\n0::/\n")
    assert cgroup_memory_limit(v1, membership) == (
        8 * 2**30,
        v1 / "memory" / "job" / "memory.limit_in_bytes",
    )

    v2 = tmp_path / "v2"
    (v2 / "user.slice").mkdir(parents=True)
    (v2 / "user.slice" / "memory.max").write_text("max\n")
    (v2 / "memory.max").write_text(f"{4 * 2**30}\n")
    membership.write_text("0::/user.slice/gone.scope\n")
    assert cgroup_memory_limit(v2, membership) == (4 * 2**30, v2 / "memory.max")

    (v2 / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(v2, membership) is None
    assert cgroup_memory_limit(v2, tmp_path / "no such file") is None


# ----------------------------------------------------- a --config file given with --resume


def test_a_config_file_given_with_resume_may_not_change_the_run(dataset, tmp_path, capsys):
    """It was ignored without a word: the run resumed with its saved lr, not the file's."""
    out = tmp_path / "run"
    argv = ["--extractor", "i3d", "--data", str(dataset), "--out", str(out), "--workers", "0"]
    assert train([*argv, "--epochs", "1", *FAST]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    changed, same = tmp_path / "changed.yaml", tmp_path / "same.yaml"
    changed.write_text(f"lr: {saved['lr'] * 10}\n")
    same.write_text(
        f"lr: {saved['lr']}\nper_extractor: {{i3d: {{grad_clip: {saved['grad_clip']}}}}}\n"
    )
    capsys.readouterr()
    resume = [*argv, "--epochs", "2", "--resume", *FAST]
    assert train([*resume, "--config", str(changed)]) == 2
    err = one_error_line(capsys)
    assert f"--resume cannot change lr {saved['lr']!r} -> {saved['lr'] * 10!r}" in err, err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    # The same value spelt 1e-03, which YAML reads as text: "cannot change lr 0.001 -> '1e-03'".
    spelt = tmp_path / "spelt.yaml"
    spelt.write_text(f"lr: {saved['lr']:.0e}\n")
    assert isinstance(yaml.safe_load(spelt.read_text())["lr"], str)
    assert train([*resume, "--config", str(spelt)]) == 0, one_error_line(capsys)
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    assert train([*argv, "--epochs", "3", "--resume", *FAST, "--config", str(same)]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 3


@pytest.mark.parametrize(
    "flags, said",
    [
        (
            ["--epochs", str(10**30)],
            "--epochs: must be 1..100000, got 1000000000000000000000000000000",
        ),
        (["--epochs", "100001"], "--epochs: must be 1..100000"),
        (["--epochs", "1", "--config", "{config}"], "batch_size"),
    ],
)
@pytest.mark.timeout(120)  # before the bound, 1e30 epochs trained for ever
def test_epochs_and_a_config_files_batch_size_are_bounded(flags, said, dataset, tmp_path, capsys):
    """--epochs 1e30 trained for ever (the tester's case); a config file's batch size of 1e20
    went round the flag's bound."""
    config = tmp_path / "huge.yaml"
    config.write_text("batch_size: 100000000000000000000\n")
    flags = [f.replace("{config}", str(config)) for f in flags]
    argv = ["--extractor", "i3d", "--data", str(dataset), "--out", str(tmp_path / "run")]
    try:
        code = train([*argv, *flags, *FAST])
    except SystemExit as e:
        code = e.code
    err = one_error_line(capsys)
    assert code == 2 and said in err and not (tmp_path / "run").exists(), err


@pytest.mark.parametrize("command", [train, train_parallel], ids=["train", "train.parallel"])
def test_an_empty_config_file_is_one_line_exit_2(command, dataset, tmp_path, capsys):
    """A 0-byte --config was taken for the preset alone (train.jepa and train.saliency
    refuse it)."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    run = ["--extractor" if command is train else "--extractors", "i3d", "--epochs", "1"]
    argv = [*run, "--data", str(dataset), "--out", str(tmp_path / "runs"), "--workers", "0"]
    assert command([*argv, "--config", str(empty)]) == 2
    err = one_error_line(capsys)
    assert f"config {empty} holds no settings" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.yaml"]
