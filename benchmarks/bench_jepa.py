"""``make bench-jepa``: does H-JEPA pretraining learn, on every seed, without collapsing?

For each config of ``--configs`` (by default ``configs/jepa/tiny.yaml``, synthetic shapes, and
``configs/jepa/digits.yaml``, scikit-learn's 1,797 real handwritten digits, both offline) and
each of ``--seeds`` (three by default; the seed sets the data, the masks and the init):

1. pretrains and records its training throughput (images/s) and the collapse watch's verdict
   at the last epoch;
2. measures on the held-out test split (20-NN, T=0.07; a linear probe; RankMe of the train
   features) three encoders: the pretrained target encoder, the same network at random
   initialisation, and the raw pixels (the floor any representation is judged against).

Exit status 0 only if, for every config: no seed collapses (RankMe of the pretrained features
above the random network's, and no collapse warning at the last epoch), the mean k-NN gain
over random init is at least ``--margin`` (+0.15), and McNemar's exact test on the same held-out
images, pooled over the seeds, gives one-sided p < ``--alpha``. Writes ``<out>/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from train.jepa.config import apply_overrides, load_config
from train.jepa.evaluate import RawPixels, evaluate, load_encoder
from train.jepa.probes import mcnemar_greater
from train.jepa.train import train
from trajkit.cli import OneLineParser
from trajkit.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [str(ROOT / "configs/jepa/tiny.yaml"), str(ROOT / "configs/jepa/digits.yaml")]
ENCODERS = ("pretrained", "random_init", "raw_pixels")


def run_seed(config: str, out: Path, seed: int, epochs: int | None) -> dict:
    """Pretrain one seed, then measure it, its random initialisation and the raw pixels."""
    raw = load_config(config)
    raw.setdefault("run", {})["seed"] = seed
    cfg = apply_overrides(raw, argparse.Namespace(out=str(out / f"seed{seed}"), epochs=epochs))
    start = time.perf_counter()
    train(cfg, quiet=True, force=True)
    train_seconds = time.perf_counter() - start
    epochs_logged = [
        json.loads(line)
        for line in (Path(cfg.run.out) / "metrics.jsonl").read_text().splitlines()
        if '"level_loss"' in line
    ]
    speeds = [e["images_per_second"] for e in epochs_logged]
    spec = cfg.data.datasets[0]
    encoders = {
        "pretrained": load_encoder(Path(cfg.run.out) / "last.pt", cfg, cfg.run.seed),
        "random_init": load_encoder(None, cfg, cfg.run.seed),
        "raw_pixels": RawPixels(),
    }
    results = {
        label: evaluate(encoder, cfg, spec, cfg.data.data_path, keep_knn_correct=True)
        for label, encoder in encoders.items()
    }
    correct = {label: r.pop("knn_correct") for label, r in results.items()}
    return {
        "seed": seed,
        "epochs": cfg.optim.epochs,
        "train_seconds": train_seconds,
        # the first epoch pays start-up costs
        "train_images_per_second": statistics.median(speeds[1:] or speeds),
        "final_epoch": epochs_logged[-1],
        **results,
        "knn_gain": results["pretrained"]["knn_accuracy"] - results["random_init"]["knn_accuracy"],
        "knn_gain_p_value": mcnemar_greater(correct["pretrained"], correct["random_init"]),
        "knn_correct": correct,
    }


def collapse_reasons(run: dict) -> list[str]:
    """Why a run counts as collapsed (empty if it does not)."""
    reasons = []
    pretrained, random_init = run["pretrained"]["rankme"], run["random_init"]["rankme"]
    if pretrained <= random_init:
        reasons.append(f"RankMe {pretrained:.1f} not above random init's {random_init:.1f}")
    if run["final_epoch"]["collapse_warning"]:
        reasons.append("the collapse watch warned at the last epoch")
    return reasons


def verdict(runs: list[dict], pooled_p: float, margin: float, alpha: float) -> list[str]:
    """The failures of one config's runs: collapsed seeds, too small a gain, no significance."""
    failures = [
        f"seed {run['seed']} collapsed ({'; '.join(reasons)})"
        for run in runs
        if (reasons := collapse_reasons(run))
    ]
    mean_gain = statistics.fmean(run["knn_gain"] for run in runs)
    if mean_gain < margin:
        failures.append(f"mean k-NN gain {mean_gain:+.3f} < {margin:+.2f}")
    if pooled_p >= alpha:
        failures.append(f"McNemar one-sided p = {pooled_p:.2g} >= {alpha}")
    return failures


def print_run(run: dict) -> None:
    print(
        f"  seed {run['seed']}: {run['train_images_per_second']:.0f} images/s "
        f"({run['epochs']} epochs in {run['train_seconds']:.0f} s), last epoch: RankMe "
        f"{run['final_epoch']['rankme']:.1f}, collapse warning "
        f"{'yes' if run['final_epoch']['collapse_warning'] else 'no'}",
        flush=True,
    )
    for label in ENCODERS:
        r = run[label]
        print(
            f"    {label:>11}: 20-NN {r['knn_accuracy']:.3f}, linear probe "
            f"{r['linear_probe_accuracy']:.3f}, RankMe {r['rankme']:.1f}"
        )
    print(
        f"    k-NN gain {run['knn_gain']:+.3f} (McNemar one-sided p = "
        f"{run['knn_gain_p_value']:.2g}) on {run['pretrained']['test_samples']} held-out images",
        flush=True,
    )


def bench_config(config: str, out: Path, args: argparse.Namespace) -> dict:
    """All seeds of one config, printed as they finish, and the config's verdict."""
    print(f"{Path(config).name}:", flush=True)
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(config, out, seed, args.epochs))
        print_run(runs[-1])
    correct = [run.pop("knn_correct") for run in runs]
    pooled = {
        label: torch.cat([c[label] for c in correct]) for label in ("pretrained", "random_init")
    }
    p_value = mcnemar_greater(pooled["pretrained"], pooled["random_init"])
    gains = [run["knn_gain"] for run in runs]
    failures = verdict(runs, p_value, args.margin, args.alpha)
    summary = (
        f"mean k-NN gain {statistics.fmean(gains):+.3f} over {len(runs)} seeds (least "
        f"{min(gains):+.3f}; pooled McNemar p = {p_value:.2g} on {len(pooled['pretrained'])} "
        f"images); median {statistics.median(r['train_images_per_second'] for r in runs):.0f} "
        "images/s"
    )
    print(f"  {'FAIL' if failures else 'ok'}: {summary}" + "".join(f"; {f}" for f in failures))
    return {
        "config": config,
        "runs": runs,
        "knn_gain_mean": statistics.fmean(gains),
        "knn_gain_min": min(gains),
        "knn_gain_pooled_p_value": p_value,
        "train_images_per_second": statistics.median(r["train_images_per_second"] for r in runs),
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="bench_jepa.py", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-jepa"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the configs' epochs")
    parser.add_argument("--margin", type=float, default=0.15, help="required mean k-NN gain")
    parser.add_argument(
        "--alpha", type=float, default=0.01, help="required significance (McNemar, one-sided)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wall, cpu = time.perf_counter(), time.process_time()
    reports = [bench_config(config, args.out / Path(config).stem, args) for config in args.configs]
    report = {
        "threads": torch.get_num_threads(),
        "seeds": args.seeds,
        "margin": args.margin,
        "alpha": args.alpha,
        "configs": reports,
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
    }
    write_json_atomic(args.out / "bench.json", report)
    print(
        f"{report['wall_seconds'] / 60:.1f} min, {report['cpu_seconds'] / 60:.1f} CPU min "
        f"({report['threads']} threads)"
    )
    failed = [Path(r["config"]).name for r in reports if r["failures"]]
    if failed:
        print(f"FAIL: {', '.join(failed)} (see above)")
        return 1
    print(f"ok: every config learns on every seed without collapse (margin {args.margin:+.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
