"""``make bench-jepa``: speed of the tiny H-JEPA config, and does pretraining learn anything?

1. Pretrains ``configs/jepa/tiny.yaml`` (synthetic shapes, offline) and reports its training
   throughput in images/s (median of the epochs after the first, which pays start-up costs).
2. Measures the frozen target encoder on the held-out synthetic test split (20-NN, T=0.07, and
   a linear probe), against the same network at random initialisation.

Exit status 0 only if the pretrained k-NN accuracy beats random init by at least ``--margin``
and significantly: McNemar's exact test on the same held-out images, one-sided p < ``--alpha``.
Writes ``<out>/bench.json``. Takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from generator.store import write_json_atomic
from train.jepa.config import apply_overrides, load_config
from train.jepa.evaluate import evaluate, load_encoder
from train.jepa.probes import mcnemar_greater
from train.jepa.train import train

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/jepa/tiny.yaml"))
    parser.add_argument("--out", default="runs/bench-jepa")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--margin", type=float, default=0.10, help="required k-NN gain")
    parser.add_argument(
        "--alpha", type=float, default=0.01, help="required significance (McNemar, one-sided)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = argparse.Namespace(out=args.out, epochs=args.epochs)
    cfg = apply_overrides(load_config(args.config), overrides)

    start = time.perf_counter()
    train(cfg, quiet=True)
    train_seconds = time.perf_counter() - start
    epochs = [
        json.loads(line)
        for line in (Path(cfg.run.out) / "metrics.jsonl").read_text().splitlines()
        if '"level_loss"' in line
    ]
    speeds = [e["images_per_second"] for e in epochs]
    images_per_second = statistics.median(speeds[1:] or speeds)

    spec = cfg.data.datasets[0]
    results = {}
    for label, checkpoint in (("pretrained", Path(cfg.run.out) / "last.pt"), ("random_init", None)):
        encoder = load_encoder(checkpoint, cfg, cfg.run.seed)
        results[label] = evaluate(encoder, cfg, spec, cfg.data.data_path, keep_knn_correct=True)
    correct = {label: r.pop("knn_correct") for label, r in results.items()}
    gain = results["pretrained"]["knn_accuracy"] - results["random_init"]["knn_accuracy"]
    p_value = mcnemar_greater(correct["pretrained"], correct["random_init"])
    report = {
        "config": args.config,
        "epochs": cfg.optim.epochs,
        "train_seconds": train_seconds,
        "train_images_per_second": images_per_second,
        "train_images_per_second_by_epoch": speeds,
        "threads": torch.get_num_threads(),
        "pretrained": results["pretrained"],
        "random_init": results["random_init"],
        "knn_gain": gain,
        "knn_gain_p_value": p_value,
        "margin": args.margin,
        "alpha": args.alpha,
    }
    write_json_atomic(Path(cfg.run.out) / "bench.json", report)
    print(
        f"tiny H-JEPA training: {images_per_second:.0f} images/s "
        f"({cfg.optim.epochs} epochs in {train_seconds:.0f} s, {torch.get_num_threads()} threads)"
    )
    for label in ("pretrained", "random_init"):
        r = results[label]
        print(
            f"{label:>11}: 20-NN {r['knn_accuracy']:.3f}, linear probe "
            f"{r['linear_probe_accuracy']:.3f}, RankMe {r['rankme']:.1f} "
            f"(held-out {r['test_samples']} images, {r['num_classes']} classes)"
        )
    verdict = f"pretraining gained {gain:+.3f} k-NN accuracy (McNemar one-sided p = {p_value:.2g})"
    if gain < args.margin or p_value >= args.alpha:
        print(f"FAIL: {verdict}; required: at least {args.margin} with p < {args.alpha}")
        return 1
    print(f"ok: {verdict} over random init")
    return 0


if __name__ == "__main__":
    sys.exit(main())
