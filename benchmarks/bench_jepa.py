"""``make bench-jepa``: speed of the tiny H-JEPA config, and does pretraining learn anything?

For each of ``--seeds`` (three by default):

1. pretrains ``configs/jepa/tiny.yaml`` (synthetic shapes, offline; the seed sets the data,
   the masks and the initialisation) and records its training throughput in images/s;
2. measures the frozen target encoder on the held-out synthetic test split (20-NN, T=0.07,
   and a linear probe) against the same network at random initialisation.

Several seeds, because one is not enough: with the committed config the k-NN gain of single
runs ranged from +0.05 to +0.085 (train/jepa/README.md). Exit status 0 only if pretraining
beats random init on every seed, by at least ``--margin`` on average, and significantly:
McNemar's exact test on the same held-out images, pooled over the seeds, one-sided
p < ``--alpha``. Writes ``<out>/bench.json``; takes about 10 minutes on 2 CPU cores.
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


def run_seed(config: str, out: Path, seed: int, epochs: int | None) -> dict:
    """Pretrain one seed, then measure it and its random initialisation on the test split."""
    raw = load_config(config)
    raw.setdefault("run", {})["seed"] = seed
    cfg = apply_overrides(raw, argparse.Namespace(out=str(out / f"seed{seed}"), epochs=epochs))
    start = time.perf_counter()
    train(cfg, quiet=True)
    train_seconds = time.perf_counter() - start
    epochs_logged = [
        json.loads(line)
        for line in (Path(cfg.run.out) / "metrics.jsonl").read_text().splitlines()
        if '"level_loss"' in line
    ]
    speeds = [e["images_per_second"] for e in epochs_logged]
    spec = cfg.data.datasets[0]
    results = {}
    for label, checkpoint in (("pretrained", Path(cfg.run.out) / "last.pt"), ("random_init", None)):
        encoder = load_encoder(checkpoint, cfg, cfg.run.seed)
        results[label] = evaluate(encoder, cfg, spec, cfg.data.data_path, keep_knn_correct=True)
    correct = {label: r.pop("knn_correct") for label, r in results.items()}
    return {
        "seed": seed,
        "epochs": cfg.optim.epochs,
        "train_seconds": train_seconds,
        # the first epoch pays start-up costs
        "train_images_per_second": statistics.median(speeds[1:] or speeds),
        **results,
        "knn_gain": results["pretrained"]["knn_accuracy"] - results["random_init"]["knn_accuracy"],
        "knn_gain_p_value": mcnemar_greater(correct["pretrained"], correct["random_init"]),
        "knn_correct": correct,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/jepa/tiny.yaml"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-jepa"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--margin", type=float, default=0.05, help="required mean k-NN gain")
    parser.add_argument(
        "--alpha", type=float, default=0.01, help="required significance (McNemar, one-sided)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    runs = []
    for seed in args.seeds:
        run = run_seed(args.config, args.out, seed, args.epochs)
        print(
            f"seed {seed}: {run['train_images_per_second']:.0f} images/s "
            f"({run['epochs']} epochs in {run['train_seconds']:.0f} s)",
            flush=True,
        )
        for label in ("pretrained", "random_init"):
            r = run[label]
            print(
                f"  {label:>11}: 20-NN {r['knn_accuracy']:.3f}, linear probe "
                f"{r['linear_probe_accuracy']:.3f}, RankMe {r['rankme']:.1f} "
                f"(held-out {r['test_samples']} images, {r['num_classes']} classes)"
            )
        print(
            f"  k-NN gain {run['knn_gain']:+.3f} (McNemar one-sided p = {run['knn_gain_p_value']:.2g})"
        )
        runs.append(run)

    correct = [run.pop("knn_correct") for run in runs]
    pooled = {
        label: torch.cat([c[label] for c in correct]) for label in ("pretrained", "random_init")
    }
    gains = [run["knn_gain"] for run in runs]
    mean_gain = statistics.fmean(gains)
    p_value = mcnemar_greater(pooled["pretrained"], pooled["random_init"])
    images_per_second = statistics.median(run["train_images_per_second"] for run in runs)
    report = {
        "config": args.config,
        "threads": torch.get_num_threads(),
        "train_images_per_second": images_per_second,
        "runs": runs,
        "knn_gain_mean": mean_gain,
        "knn_gain_min": min(gains),
        "knn_gain_pooled_p_value": p_value,
        "margin": args.margin,
        "alpha": args.alpha,
    }
    write_json_atomic(args.out / "bench.json", report)
    print(
        f"tiny H-JEPA training: {images_per_second:.0f} images/s "
        f"(median over seeds, {torch.get_num_threads()} threads)"
    )
    verdict = (
        f"pretraining gained {mean_gain:+.3f} k-NN accuracy on average over {len(runs)} seeds "
        f"(least {min(gains):+.3f}; McNemar one-sided p = {p_value:.2g} on "
        f"{len(pooled['pretrained'])} held-out images)"
    )
    if mean_gain < args.margin or min(gains) <= 0 or p_value >= args.alpha:
        print(
            f"FAIL: {verdict}; required: a gain on every seed, at least {args.margin} "
            f"on average, p < {args.alpha}"
        )
        return 1
    print(f"ok: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
