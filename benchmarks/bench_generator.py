"""Generator throughput against the disk's own sequential write speed (``make bench``).

Prints samples/s and MB/s for a run with 2 workers, the raw write speed of the
same filesystem measured in the same run (same bytes, written and synced), and
their ratio. Reference: the tool this replaces made 10,000 samples in 448 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raw_write_speed(folder: Path, total_bytes: int, block: int = 4 << 20) -> float:
    """MB/s of writing ``total_bytes`` sequentially to ``folder`` and syncing (like a generator chunk)."""
    path = folder / "raw_write_probe.bin"
    buf = os.urandom(block)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        written = 0
        while written < total_bytes:
            f.write(buf)
            written += block
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - t0
    path.unlink()
    return written / elapsed / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--where", type=Path, default=ROOT / "data" / ".bench")
    args = p.parse_args()

    from generator.config import GeneratorConfig
    from generator.generate import Request, generate
    from generator.preflight import bytes_per_sample

    args.where.mkdir(parents=True, exist_ok=True)
    out = args.where / "bench_generator"
    shutil.rmtree(out, ignore_errors=True)
    cfg = GeneratorConfig()
    try:
        t0 = time.perf_counter()
        generate(
            Request(n=args.n, out=out, workers=args.workers, checkpoint_every=2000, quiet=True), cfg
        )
        elapsed = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        shutil.rmtree(out, ignore_errors=True)
        raw = raw_write_speed(args.where, size)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rate = args.n / elapsed
    mbs = size / elapsed / 1e6
    print(
        f"generator: {args.n} samples with {args.workers} workers in {elapsed:.1f} s "
        f"= {rate:.0f} samples/s, {mbs:.0f} MB/s ({size / 1e9:.2f} GB, {bytes_per_sample(cfg) / 1e6:.2f} MB/sample)"
    )
    print(f"disk: raw sequential write of the same {size / 1e9:.2f} GB with fsync = {raw:.0f} MB/s")
    print(f"ratio: generator / disk = {mbs / raw:.0%}")
    print(f"10,000 samples at this rate: {10000 / rate:.0f} s (reference 448 s, target <= 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
