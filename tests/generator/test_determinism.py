"""Sample i depends only on (seed, i): worker count, chunking and interruptions change no byte."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from generator.render.sample import class_of

ROOT = Path(__file__).resolve().parents[2]


def test_same_bytes_with_one_or_two_workers_and_any_chunking(tmp_path, small_dataset, cli, digests):
    other = tmp_path / "two_workers"
    assert cli("--n", 24, "--out", other, "--workers", 2, "--checkpoint-every", 7, "--quiet") == 0
    assert digests(other) == digests(small_dataset)
    ends = sorted(
        int(p.stem.split("_")[1]) for p in (other / "checkpoints").glob("checkpoint_*.json")
    )
    assert ends == [7, 14, 21, 24]


def test_different_seed_gives_different_data(tmp_path, small_dataset, cli, digests):
    other = tmp_path / "seed1"
    assert cli("--n", 4, "--out", other, "--seed", 1, "--workers", 1, "--quiet") == 0
    a, b = digests(other), digests(small_dataset)
    assert all(a[k] != b[k] for k in a if k.startswith("videos/"))


def test_every_prefix_is_balanced():
    for seed in (0, 7):
        counts = [0, 0, 0, 0]
        for i in range(400):
            counts[class_of(seed, i)] += 1
            assert max(counts) - min(counts) <= 1


def test_extending_with_larger_n_keeps_existing_samples(tmp_path, small_dataset, cli, digests):
    root = tmp_path / "grow"
    assert cli("--n", 10, "--out", root, "--workers", 1, "--checkpoint-every", 10, "--quiet") == 0
    assert (
        cli(
            "--n",
            24,
            "--out",
            root,
            "--workers",
            1,
            "--checkpoint-every",
            10,
            "--resume",
            "--quiet",
        )
        == 0
    )
    assert digests(root) == digests(small_dataset)
    assert json.loads((root / "metadata.json").read_text())["total_samples"] == 24


def _uninterrupted_then_killed(tmp_path, workers: int, run_cli, file_digests, kill_when) -> None:
    ref = tmp_path / "ref"
    assert (
        run_cli("--n", 48, "--out", ref, "--workers", 1, "--checkpoint-every", 16, "--quiet") == 0
    )
    killed = tmp_path / "killed"
    args = ["--n", 48, "--out", killed, "--workers", workers, "--checkpoint-every", 16, "--quiet"]
    # Kill mid-chunk: after the first manifest and a few samples of the second chunk.
    kill_when(
        args,
        lambda: (
            (killed / "checkpoints" / "checkpoint_16.json").exists()
            and len(list((killed / "labels").glob("*.json"))) >= 20
        ),
    )
    assert not (killed / "metadata.json").exists()
    assert (
        run_cli(
            "--n",
            48,
            "--out",
            killed,
            "--workers",
            workers,
            "--checkpoint-every",
            16,
            "--resume",
            "--quiet",
        )
        == 0
    )
    assert file_digests(killed) == file_digests(ref)
    for name in ("checkpoint_16.json", "checkpoint_32.json", "checkpoint_48.json"):
        a = json.loads((ref / "checkpoints" / name).read_text())["samples"]
        b = json.loads((killed / "checkpoints" / name).read_text())["samples"]
        assert a == b
    assert not [p for p in killed.rglob(".tmp-*")]


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, cli, digests, kill_when):
    _uninterrupted_then_killed(tmp_path, 2, cli, digests, kill_when)


def test_one_renderer_shared_by_threads_gives_the_same_clips():
    """Dask workers run tasks in threads that share a process's renderer (its compiled pass drops the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from generator.config import GeneratorConfig
    from generator.render.sample import SampleMaker

    cfg = GeneratorConfig(image_size=32, frames=8)
    alone = [SampleMaker(cfg).make(3, i)[0] for i in range(12)]
    shared = SampleMaker(cfg)
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda i: shared.make(3, i)[0], range(12)))
    assert all((a == b).all() for a, b in zip(alone, threaded, strict=True))


@pytest.mark.parametrize("fmt", ["pt", "shards"])
@pytest.mark.parametrize("flush_every", [3, 256])
def test_every_file_leaves_the_page_cache_once_synced(tmp_path, cli, monkeypatch, fmt, flush_every):
    """Every file of a run is evicted once (flushes within a chunk, then the seal)."""
    import generator.pipeline.generate

    dropped = []
    monkeypatch.setattr(
        generator.pipeline.generate, "drop_cached", lambda paths: dropped.extend(paths)
    )
    monkeypatch.setattr(generator.pipeline.generate, "FLUSH_EVERY", flush_every)
    out = tmp_path / fmt
    args = ["--n", 12, "--out", out, "--workers", 1, "--checkpoint-every", 5, "--quiet"]
    size = ["--shard-size", 2] if fmt == "shards" else []
    assert cli(*args, "--format", fmt, *size) == 0
    written = {p for sub in ("videos", "labels", "shards") for p in (out / sub).glob("*.*")}
    assert written and set(dropped) == written and len(dropped) == len(written)


def test_drop_cached_skips_missing_files(tmp_path):
    from trajkit.files import drop_cached

    (tmp_path / "a").write_bytes(b"x" * 10_000)
    drop_cached([tmp_path / "a", tmp_path / "gone"])
    assert (tmp_path / "a").read_bytes() == b"x" * 10_000


def test_a_failed_sync_stops_the_run_and_keeps_whole_samples(tmp_path, cli, monkeypatch, capsys):
    import generator.pipeline.generate

    calls = []

    def failing_sync(folder):
        calls.append(folder)
        if len(calls) == 3:  # a flush in the second chunk
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(generator.pipeline.generate, "sync_filesystem", failing_sync)
    monkeypatch.setattr(generator.pipeline.generate, "FLUSH_EVERY", 4)
    out = tmp_path / "ds"
    assert cli("--n", 24, "--out", out, "--workers", 1, "--checkpoint-every", 8, "--quiet") == 1
    assert "Input/output error" in capsys.readouterr().err
    assert not (out / "metadata.json").exists() and not list(out.rglob(".tmp-*"))
    monkeypatch.undo()
    assert cli("--n", 24, "--out", out, "--workers", 1, "--resume", "--quiet") == 0
    assert cli("validate", out) == 0


_SAMPLES_DIGEST = """
import hashlib
from generator.config import GeneratorConfig
from generator.render.sample import SampleMaker
from generator.dataformat.layout import label_bytes
maker, h = SampleMaker(GeneratorConfig()), hashlib.sha256()
for i in range(120):
    video, label = maker.make(7, i)
    h.update(video.tobytes() + label_bytes(label))
print(h.hexdigest())
"""


def _baseline_only() -> str:
    """NumPy's SIMD targets above its baseline that this CPU has: disabled, NumPy runs as on an old CPU."""
    import numpy._core._multiarray_umath as umath

    found = umath.__cpu_features__
    return " ".join(f for f in umath.__cpu_dispatch__ if found.get(f))


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="emulates other x86-64 CPUs"
)
@pytest.mark.parametrize(
    "cpu",
    [
        {"OPENBLAS_CORETYPE": "Haswell"},  # AVX2 laptops and most AMD: another BLAS kernel
        {
            "OPENBLAS_CORETYPE": "Prescott",
            "NPY_DISABLE_CPU_FEATURES": _baseline_only(),
            "NUMBA_CPU_NAME": "x86-64",  # the compositing compiled for the oldest x86-64
            "NUMBA_CPU_FEATURES": "",
        },
    ],
    ids=["avx2-blas", "sse-blas-numpy-and-numba"],
)
def test_samples_are_the_same_bytes_on_other_cpus(cpu):
    """A dataset made on a laptop and extended on a cluster node must not differ in a bit.

    The BLAS, NumPy and numba all pick code by CPU, and each can be told to pick
    as another CPU would. Before ``generator.render.arith``, 6% of these samples' labels
    differed with the first, and 20% of their videos with the second.
    """

    def digest(extra: dict) -> str:
        env = {**os.environ, **extra}
        run = subprocess.run(
            [sys.executable, "-c", _SAMPLES_DIGEST], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert digest(cpu) == digest({})
