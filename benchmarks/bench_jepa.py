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
over random init is at least ``--margin`` (+0.15), and the image-level sign test
(``image_sign_test``) gives one-sided p < ``--alpha``. Each seed's own McNemar p is printed too.
Writes ``<out>/bench.json``.

The (config, seed) cells are independent: they run in ``--jobs`` processes (one per core by
default) of ``--threads`` torch threads (1). On 2 shared cores that is faster than one process
of 2 threads, which spent 5x the CPU per epoch when other jobs took a core (README).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from train.jepa.config import ConfigError, apply_overrides, load_config
from train.jepa.evaluation import RawPixels, eval_splits, evaluate, load_encoder
from train.jepa.probes import mcnemar_greater
from train.jepa.train import train
from trajkit.cli import (
    MAX_THREADS,
    MAX_WORKERS,
    OneLineParser,
    failed_io,
    folder_arg,
    number_arg,
    whole_number,
)
from trajkit.files import write_json_atomic
from trajkit.seeds import MAX_SEED

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [str(ROOT / "configs/jepa/tiny.yaml"), str(ROOT / "configs/jepa/digits.yaml")]
ENCODERS = ("pretrained", "random_init", "raw_pixels")


def seed_config(config: str, out: Path, seed: int, epochs: int | None):  # noqa: ANN201
    """The validated config of one cell (raises ``ConfigError``)."""
    raw = load_config(config)
    raw.setdefault("run", {})["seed"] = seed
    return apply_overrides(raw, argparse.Namespace(out=str(out / f"seed{seed}"), epochs=epochs))


@contextmanager
def timed(phases: dict, phase: str) -> Iterator[None]:
    """Record the wall and CPU seconds of this process spent in ``phase`` (the profile)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    phases[phase] = {
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
    }


def run_seed(config: str, out: Path, seed: int, epochs: int | None) -> dict:
    """Pretrain one seed, then measure it, its random initialisation and the raw pixels."""
    cfg = seed_config(config, out, seed, epochs)
    phases: dict[str, dict[str, float]] = {}
    with timed(phases, "pretrain"):
        train(cfg, quiet=True, force=True)
    epochs_logged = [
        json.loads(line)
        for line in (Path(cfg.run.out) / "metrics.jsonl").read_text().splitlines()
        if '"level_loss"' in line
    ]
    speeds = [e["images_per_second"] for e in epochs_logged]
    spec = cfg.data.datasets[0]
    with timed(phases, "eval_images"):
        splits = eval_splits(cfg, spec, cfg.data.data_path)
    encoders = {
        "pretrained": lambda: load_encoder(Path(cfg.run.out) / "last.pt", cfg, cfg.run.seed),
        "random_init": lambda: load_encoder(None, cfg, cfg.run.seed),
        "raw_pixels": RawPixels,
    }
    results = {}
    for label, encoder in encoders.items():
        with timed(phases, label):
            results[label] = evaluate(
                encoder(), cfg, spec, cfg.data.data_path, keep_knn_correct=True, splits=splits
            )
    correct = {label: r.pop("knn_correct") for label, r in results.items()}
    return {
        "config": config,
        "seed": seed,
        "epochs": cfg.optim.epochs,
        "train_seconds": phases["pretrain"]["wall_seconds"],
        # the first epoch pays start-up costs
        "train_images_per_second": statistics.median(speeds[1:] or speeds),
        "final_epoch": epochs_logged[-1],
        **results,
        "knn_gain": results["pretrained"]["knn_accuracy"] - results["random_init"]["knn_accuracy"],
        "knn_gain_p_value": mcnemar_greater(correct["pretrained"], correct["random_init"]),
        # plain lists: a result crosses a process boundary
        "knn_correct": {label: c.tolist() for label, c in correct.items()},
        "phases": phases,
    }


def _worker_init(threads: int) -> None:
    """A worker leaves Ctrl-C to the parent (which stops it) and uses ``threads`` threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def _run_cell(cell: tuple) -> tuple[int, dict | None, str | None]:
    """``run_seed`` in a worker: ``(index, run, None)``, or ``(index, None, why)`` if it failed."""
    index, *args = cell
    try:
        return index, run_seed(*args), None
    except Exception as err:  # noqa: BLE001 - reported as one line by the parent
        return index, None, f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


def collapse_reasons(run: dict) -> list[str]:
    """Why a run counts as collapsed (empty if it does not)."""
    reasons = []
    pretrained, random_init = run["pretrained"]["rankme"], run["random_init"]["rankme"]
    if pretrained <= random_init:
        reasons.append(f"RankMe {pretrained:.1f} not above random init's {random_init:.1f}")
    if run["final_epoch"]["collapse_warning"]:
        reasons.append("the collapse watch warned at the last epoch")
    return reasons


def image_sign_test(correct_a: torch.Tensor, correct_b: torch.Tensor) -> float:
    """One-sided p that encoder ``a`` classifies more test images correctly than ``b``, over
    ``(seeds, images)`` outcomes, with the image as the unit: each image's correctness averaged
    over the seeds, then a sign test over the images on which one is ahead (McNemar's test, for
    one seed).

    Not McNemar's test on the seeds' discordant pairs pooled: on digits every seed is scored on
    the same 360 test images, an image one encoder alone gets right tends to stay so on every
    seed, and pooling counted it once per seed. Where the seeds draw their own test images
    (synthetic), the images averaged together are independent draws, which the test allows.
    """
    diff = correct_a.double().mean(0) - correct_b.double().mean(0)
    return mcnemar_greater(diff > 0, diff < 0)  # the sign test: "a ahead" against "b ahead"


def verdict(runs: list[dict], p_value: float, margin: float, alpha: float) -> list[str]:
    """The failures of one config's runs: collapsed seeds, too small a gain, no significance."""
    failures = [
        f"seed {run['seed']} collapsed ({'; '.join(reasons)})"
        for run in runs
        if (reasons := collapse_reasons(run))
    ]
    mean_gain = statistics.fmean(run["knn_gain"] for run in runs)
    if mean_gain < margin:
        failures.append(f"mean k-NN gain {mean_gain:+.3f} < {margin:+.2f}")
    if p_value >= alpha:
        failures.append(f"image-level sign test one-sided p = {p_value:.2g} >= {alpha}")
    return failures


def print_run(run: dict) -> None:
    cpu = {phase: t["cpu_seconds"] for phase, t in run["phases"].items()}
    print(
        f"  {Path(run['config']).name} seed {run['seed']}: {run['train_images_per_second']:.0f} "
        f"images/s ({run['epochs']} epochs in {run['train_seconds']:.0f} s), last epoch: RankMe "
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
    print("    CPU s: " + ", ".join(f"{phase} {t:.1f}" for phase, t in cpu.items()), flush=True)


def summarise_config(config: str, runs: list[dict], args: argparse.Namespace) -> dict:
    """One config's seeds (in seed order), image-level sign test and verdict, printed."""
    correct = [run.pop("knn_correct") for run in runs]
    pretrained, random_init = (
        torch.tensor([c[label] for c in correct]) for label in ("pretrained", "random_init")
    )
    p_value = image_sign_test(pretrained, random_init)
    gains = [run["knn_gain"] for run in runs]
    failures = verdict(runs, p_value, args.margin, args.alpha)
    summary = (
        f"mean k-NN gain {statistics.fmean(gains):+.3f} over {len(runs)} seeds (least "
        f"{min(gains):+.3f}; image-level sign test one-sided p = {p_value:.2g} on "
        f"{pretrained.size(1)} test images, each averaged over the seeds); median "
        f"{statistics.median(r['train_images_per_second'] for r in runs):.0f} images/s"
    )
    print(
        f"{Path(config).name}: {'FAIL' if failures else 'ok'}: {summary}"
        + "".join(f"; {f}" for f in failures)
    )
    return {
        "config": config,
        "runs": runs,
        "knn_gain_mean": statistics.fmean(gains),
        "knn_gain_min": min(gains),
        "knn_gain_image_sign_test_p_value": p_value,
        "train_images_per_second": statistics.median(r["train_images_per_second"] for r in runs),
        "failures": failures,
    }


def run_cells(cells: list[tuple], jobs: int, threads: int) -> Iterator[tuple]:
    """``_run_cell`` over ``cells`` in ``jobs`` fresh processes, as each finishes.

    Spawned, not forked: a worker starts with no torch thread pool inherited from the parent.
    Ctrl-C or an early exit terminates the workers.
    """
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs, initializer=_worker_init, initargs=(threads,)) as pool:
        yield from pool.imap_unordered(_run_cell, cells)
        pool.close()
        pool.join()  # reaped, so RUSAGE_CHILDREN counts their CPU


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="bench_jepa.py", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--out", type=folder_arg, default=Path("runs/bench-jepa"))
    parser.add_argument("--seeds", type=whole_number(0, MAX_SEED), nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=whole_number(1), help="override the configs' epochs")
    parser.add_argument(  # a k-NN gain is -1..1
        "--margin",
        type=number_arg(float, -1.0, False),
        default=0.15,
        help="required mean k-NN gain",
    )
    parser.add_argument(
        "--alpha",
        type=number_arg(float, 0.0, True),
        default=0.01,
        help="required significance (image-level sign test, one-sided)",
    )
    parser.add_argument(
        "--jobs",
        type=whole_number(1, MAX_WORKERS),
        default=len(os.sched_getaffinity(0)),
        help="cells run at once (default: the usable cores)",
    )
    parser.add_argument(
        "--threads", type=whole_number(1, MAX_THREADS), default=1, help="torch threads per job"
    )
    args = parser.parse_args(argv)
    if args.alpha >= 1:
        parser.error(f"--alpha must be under 1 (at 1 every p passes), got {args.alpha}")
    # a repeated cell: two processes writing one run folder (OUT/CONFIG_STEM/seedN)
    for flag, values in (
        ("--configs", [Path(c).stem for c in args.configs]),
        ("--seeds", args.seeds),
    ):
        if repeated := [str(v) for v in dict.fromkeys(values) if values.count(v) > 1]:
            parser.error(f"{flag} names {', '.join(repeated)} more than once: one run folder each")
    cells = [
        (i, config, args.out / Path(config).stem, seed, args.epochs)
        for i, (config, seed) in enumerate((c, s) for c in args.configs for s in args.seeds)
    ]
    try:
        for _, config, out, seed, epochs in cells:
            seed_config(config, out, seed, epochs)  # every config is checked before any work
    except ConfigError as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    wall, cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
    children = cpu_seconds(resource.RUSAGE_CHILDREN)
    runs: dict[int, dict] = {}
    try:
        for index, run, error in run_cells(cells, min(args.jobs, len(cells)), args.threads):
            if error is not None:
                _, config, _, seed, _ = cells[index]
                print(f"error: {Path(config).name} seed {seed}: {error}", file=sys.stderr)
                return 1
            runs[index] = run
            print_run(run)
    except KeyboardInterrupt:
        print("interrupted; the finished seeds' runs are in their folders", file=sys.stderr)
        return 130
    reports = [
        summarise_config(config, [runs[i] for i, c, *_ in cells if c == config], args)
        for config in args.configs
    ]
    report = {
        "jobs": min(args.jobs, len(cells)),
        "threads": args.threads,
        "seeds": args.seeds,
        "margin": args.margin,
        "alpha": args.alpha,
        "configs": reports,
        "wall_seconds": time.perf_counter() - wall,
        # the workers' and this process's; on an idle machine wall >= cpu / cores
        "cpu_seconds": cpu_seconds(resource.RUSAGE_SELF)
        - cpu
        + cpu_seconds(resource.RUSAGE_CHILDREN)
        - children,
        "load_average": os.getloadavg(),
    }
    print(
        f"{report['wall_seconds'] / 60:.1f} min, {report['cpu_seconds'] / 60:.1f} CPU min "
        f"({report['jobs']} jobs of {report['threads']} thread(s); load average "
        f"{report['load_average'][0]:.1f} at the end)"
    )
    failed = [Path(r["config"]).name for r in reports if r["failures"]]
    if failed:
        print(f"FAIL: {', '.join(failed)} (see above)", flush=True)
    else:
        print(
            f"ok: every config learns on every seed without collapse (margin {args.margin:+.2f})",
            flush=True,
        )
    try:  # last: a full disk loses the file, not the verdict printed
        write_json_atomic(args.out / "bench.json", report)
    except OSError as e:
        print(f"bench_jepa.py: error: the report is not saved: {failed_io(e)}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
