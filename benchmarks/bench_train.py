"""``make bench-train``: the four tiny extractors trained side by side on 2,000 samples, 10 epochs.

Generates the dataset under ``data/.bench/`` (reused when it is already
there), runs ``python -m train.parallel`` and prints its summary table with
the targets: every extractor at 95% validation accuracy or more, future RMSE
under 5% of the scene's extent, the round under 30 minutes. Exit 1 when a
target is missed. Usage:

    python benchmarks/bench_train.py [--n 2000] [--epochs 10] [--extractors ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_ACCURACY = 0.95
TARGET_RMSE_FRACTION = 0.05
TARGET_MINUTES = 30.0


def run(cmd: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--extractors", nargs="+", default=["i3d", "slowfast", "transformer", "magvit"])
    p.add_argument("--data", type=Path, default=None, help="default data/.bench/train_N")
    p.add_argument("--out", type=Path, default=ROOT / "data" / ".bench" / "train_runs")
    args = p.parse_args()
    data = args.data or ROOT / "data" / ".bench" / f"train_{args.n}"

    if not (data / "metadata.json").exists():
        workers = str(len(os.sched_getaffinity(0)))
        code = run([sys.executable, "-m", "generator", "--n", str(args.n), "--out", str(data),
                    "--workers", workers, "--resume", "--quiet"])  # fmt: skip
        if code:
            return code
    shutil.rmtree(args.out, ignore_errors=True)  # a fresh round each time: its own scratch folder
    start = time.monotonic()
    code = run([sys.executable, "-m", "train.parallel", "--extractors", *args.extractors,
                "--data", str(data), "--epochs", str(args.epochs), "--out", str(args.out)])  # fmt: skip
    minutes = (time.monotonic() - start) / 60
    summary = args.out / "summary.json"
    if not summary.exists():
        print(f"no summary written (train.parallel exit {code})")
        return 1
    rows = json.loads(summary.read_text())["runs"]
    print(f"\n{len(args.extractors)} extractors, {args.epochs} epochs, {args.n} samples: "
          f"{minutes:.1f} min on {len(os.sched_getaffinity(0))} cores")  # fmt: skip
    missed = []
    for r in rows:
        acc, frac = r["val_accuracy"], r["val_future_rmse_fraction"]
        if acc is None or acc < TARGET_ACCURACY:
            missed.append(f"{r['extractor']}: val accuracy {acc} < {TARGET_ACCURACY}")
        if frac is None or frac >= TARGET_RMSE_FRACTION:
            missed.append(
                f"{r['extractor']}: future RMSE {frac} of extent >= {TARGET_RMSE_FRACTION}"
            )
    if minutes >= TARGET_MINUTES:
        missed.append(f"wall time {minutes:.1f} min >= {TARGET_MINUTES}")
    print("targets: " + ("all met" if not missed else "MISSED\n  " + "\n  ".join(missed)))
    print(f"comparison plot: {args.out / 'comparison.png'}")
    return 1 if missed or code else 0


if __name__ == "__main__":
    sys.exit(main())
