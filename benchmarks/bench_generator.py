"""Generator throughput against the disk's own write speed, both layouts, and peak memory (``make bench``).

For each layout ("pt" files, zstd "shards"): samples/s and MB/s of a run of
2,000 samples (``--n 10000`` for the main job's size) with 2 workers, CPU milliseconds per sample (parent + workers: the figure that does
not depend on how busy the machine is), size on disk, and read samples/s of
every sample back through the dataset's reader. The disk's raw sequential
write speed is measured in the same run on the same filesystem (as many bytes,
written and synced), before and after the generator runs, and the ratio is
given against both: on this project's VM the same probe has measured anything
from 390 to 3,000 MB/s within minutes. A third probe, after, writes with direct
I/O as the generator writes its videos: the device itself, without the page
cache's copy (which in this VM costs the CPU more than the disk does). Last, the peak RSS of the
generator and its workers for 1,000 against 20,000 samples, each run in its
own process, with a small config (16 px, 8 frames) so 20,000 samples fit and
finish quickly: memory must not grow with --n. The load average is printed
beside the figures; other users of the CPUs make absolute numbers noisy.
Start it at least 6 minutes after deleting many files on the same filesystem
(an earlier run's output included): ext4 without a journal, as on this
project's VM, skips inodes freed in the last 1-6 minutes, scanning past every
one of them for each file it creates. Under ``perf``, file creation took 8-18%
of the CPU of a "pt" run started within that window and 1.5% of one started after it.
Reference: the tool this replaces made 10,000 samples in 448 s.
"""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajkit.cli import (  # noqa: E402
    MAX_WORKERS,
    OneLineParser,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    one_line,
    whole_number,
)

SMALL_CONFIG = "image_size: 16\nframes: 8\nhorizon: 2\n"


class TreeSampler:
    """Polls a process and its descendants: peak summed RSS (and PSS), total CPU seconds.

    RSS counts shared pages (torch's libraries, mapped by every worker) once
    per process; PSS divides them among their sharers, so its sum is the tree's
    real footprint. PSS reads smaps, which is slow: only with ``pss=True``.
    """

    def __init__(self, pid: int, interval: float = 0.05, pss: bool = False) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.pss = pss
        self.peak_rss = 0
        self.peak_pss = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> None:
        rss = pss = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                if self.pss:
                    full = p.memory_full_info()
                    rss, pss = rss + full.rss, pss + full.pss
                else:
                    rss += p.memory_info().rss
                t = p.cpu_times()
                self.cpu[p.pid] = t.user + t.system
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def raw_write_speed(
    folder: Path, total_bytes: int, block: int = 4 << 20, direct: bool = False
) -> float:
    """MB/s of writing ``total_bytes`` sequentially to ``folder`` and syncing (like a generator chunk).

    ``direct`` writes with ``O_DIRECT`` from an aligned buffer, as the generator writes its
    videos: the device's speed without the page cache's copy (a raw ``fio --direct=1``).
    """
    buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(block))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".bench_generator-") as tmp:
        path = Path(tmp) / "raw_write_probe.bin"
        os.sync()  # finish earlier deletions first: with the "discard" mount option they cost I/O
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
        t0 = time.perf_counter()
        fd = os.open(path, flags, 0o644)
        try:
            written = 0
            while written < total_bytes:
                written += os.write(fd, buf)
            os.fsync(fd)
        finally:
            os.close(fd)
        elapsed = time.perf_counter() - t0
    return written / elapsed / 1e6


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_layout(fmt: str, n: int, workers: int, out: Path) -> dict:
    """Write ``n`` samples in layout ``fmt``, then read them all back; returns the figures."""
    from generator.config import GeneratorConfig
    from generator.dataformat.dataset import read_metadata
    from generator.dataformat.sources import open_source
    from generator.pipeline.generate import generate
    from generator.pipeline.request import Request

    shutil.rmtree(out, ignore_errors=True)
    os.sync()  # as before the raw write: each timed phase starts from a settled disk
    load_before = load()
    with TreeSampler(os.getpid()) as tree:
        tree.sample()
        cpu0 = tree.cpu_seconds
        t0 = time.perf_counter()
        generate(
            Request(n=n, out=out, workers=workers, checkpoint_every=2000, quiet=True, format=fmt),
            GeneratorConfig(),
        )
        elapsed = time.perf_counter() - t0
        tree.sample()
    cpu = tree.cpu_seconds - cpu0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    meta = read_metadata(out)
    source = open_source(out, meta)
    t0 = time.perf_counter()
    for i in range(n):
        source.read(i)[0].clone()  # touch every byte, as training does
    read = n / (time.perf_counter() - t0)
    return {
        "format": fmt,
        "rate": n / elapsed,
        "elapsed": elapsed,
        "mbs": size / elapsed / 1e6,
        "size": size,
        "cpu_ms": cpu / n * 1e3,
        "read": read,
        "load": load_before,
    }


def peak_memory(n: int, workers: int, where: Path, fmt: str = "pt") -> tuple[int, int, float]:
    """Peak RSS and PSS (bytes) of ``python -m generator`` and its workers for ``n`` small
    samples in layout ``fmt``, and seconds. Its config and dataset go to a temporary folder
    in ``where``: a file or folder of the user's there is neither replaced nor removed."""
    with tempfile.TemporaryDirectory(dir=where, prefix=".bench_generator-") as tmp:
        cfg, out = Path(tmp) / "small.yaml", Path(tmp) / f"mem_{n}"
        cfg.write_text(SMALL_CONFIG)
        cmd = [sys.executable, "-m", "generator", "--n", str(n), "--out", str(out),
               "--config", str(cfg), "--format", fmt, "--workers", str(workers), "--quiet",
               "--checkpoint-every", "2000"]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        with TreeSampler(proc.pid, interval=0.2, pss=True) as tree:
            proc.wait()
    seconds = time.perf_counter() - t0  # with the removal of what it wrote, as before
    if proc.returncode != 0:
        raise SystemExit(f"generator failed with exit {proc.returncode}")
    return tree.peak_rss, tree.peak_pss, seconds


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="bench_generator.py", description=__doc__.splitlines()[0])
    positive = whole_number(1)
    p.add_argument(
        "--n", type=positive, default=2000, help="samples per layout (--n 10000 times the main job)"
    )
    p.add_argument("--workers", type=whole_number(1, MAX_WORKERS), default=2)
    p.add_argument("--formats", nargs="+", default=["pt", "shards"], choices=["pt", "shards"])
    p.add_argument(
        "--memory", nargs=2, type=positive, default=[1000, 20000], metavar=("SMALL", "LARGE")
    )
    p.add_argument("--memory-format", choices=["pt", "shards"], default="pt")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--where", type=folder_arg, default=ROOT / "data" / ".bench")
    args = p.parse_args(argv)
    try:
        return measure(args)
    except OSError as e:  # a full disk, --where under a file or unwritable
        print(f"bench_generator.py: error: {failed_io(e)}", file=sys.stderr)
        return 1


def measure(args) -> int:
    from generator.config import GeneratorConfig
    from generator.pipeline.generate import GenerationError
    from generator.pipeline.preflight import bytes_per_sample

    args.where.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs; {load()} at start; {args.n} samples, {args.workers} workers")
    results = []
    raws = []  # MB/s, before and after the generator runs: this VM's disk is not steady
    size = bytes_per_sample(GeneratorConfig()) * args.n  # every probe writes a pt run's bytes
    with tempfile.TemporaryDirectory(dir=args.where, prefix=".bench_generator-") as tmp:
        out = Path(tmp) / "dataset"
        if not args.skip_speed:
            raws.append(raw_write_speed(args.where, size))
        for fmt in [] if args.skip_speed else args.formats:
            try:
                r = bench_layout(fmt, args.n, args.workers, out)
            except GenerationError as e:
                print(f"bench_generator.py: error: {one_line(e)}", file=sys.stderr)
                return e.exit_code
            results.append(r)
            print(
                f"{fmt:>6}: write {r['rate']:.0f} samples/s ({r['elapsed']:.1f} s, {r['mbs']:.0f} MB/s), "
                f"{r['cpu_ms']:.1f} CPU ms/sample, {r['size'] / 1e9:.2f} GB on disk "
                f"({r['size'] / args.n / 1e6:.2f} MB/sample), read {r['read']:.0f} samples/s "
                f"(1 process, from disk: a run evicts what it wrote from the page cache); {r['load']} before"
            )
        shutil.rmtree(out, ignore_errors=True)
        if results:
            raws.append(raw_write_speed(args.where, size))
            direct = raw_write_speed(args.where, size, direct=True)
    if results:
        print(
            f"disk: raw sequential write of {size / 1e9:.2f} GB with fsync = "
            f"{raws[0]:.0f} MB/s before, {raws[1]:.0f} MB/s after ({load()}); "
            f"with direct I/O (no page cache) {direct:.0f} MB/s"
            + "".join(f", {r['format']} at {r['mbs'] / direct:.0%} of it" for r in results)
        )

    def share(mbs: float) -> str:
        return "-".join(f"{mbs / raw:.0%}" for raw in sorted(raws, reverse=True))

    for r in results:
        ceiling = args.workers * 1000 / r["cpu_ms"]  # samples/s if the CPUs did nothing else
        print(
            f"ratio {r['format']}: generator / disk = {share(r['mbs'])}; "
            f"10,000 samples at this rate: {10000 / r['rate']:.0f} s"
            + ("" if args.n == 10000 else f" (start-up included {10000 // args.n} times)")
            + " (reference 448 s, target <= 60 s); "
            f"CPU-bound ceiling with {args.workers} idle cores: "
            f"{ceiling:.0f} samples/s = {share(ceiling * r['size'] / args.n / 1e6)} of the disk"
        )
    print(
        "preflight's estimates: "
        + ", ".join(
            f"{fmt} {bytes_per_sample(GeneratorConfig(), fmt) / 1e6:.2f} MB/sample"
            for fmt in ("pt", "shards")
        )
    )
    if not args.skip_memory:
        for n in args.memory:
            rss, pss, secs = peak_memory(n, args.workers, args.where, args.memory_format)
            print(
                f"peak memory, generator + workers, {n} samples ({args.memory_format}, 16 px, 8 frames): "
                f"RSS {rss / 2**20:.0f} MiB, PSS {pss / 2**20:.0f} MiB ({secs:.0f} s; {load()})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_interrupt(main, "bench_generator stopped; what it wrote was removed"))
