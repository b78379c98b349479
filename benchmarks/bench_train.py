"""``make bench-train``: the four tiny extractors trained side by side on each difficulty level.

For every level (``configs/generator/LEVEL.yaml``) and dataset seed it generates the
dataset under ``data/.bench/`` (reused when it is already there), runs
``python -m train.parallel`` on it (medium and hard with ``configs/train/colour.yaml`` over
the tiny recipe), then scores every run's best weights with ``python -m train.evaluate``
on one held-out set per level: ``--eval-n`` samples (default 2,000) of ``--eval-seed``,
which no round trains on. Every run is scored on the same clips, and 2,000 of them put
an accuracy's sampling error near 1 point where a run's 200 validation clips leave about
3.4, so the seed-to-seed spread is the training's own. One table: held-out accuracy per
seed, its mean and spread, future RMSE as a share of the scene's extent, and per-class
accuracy (the classes are the dataset's, four or seven, each named by its first four
letters). Every mean is taken alike: over dataset seeds, of each seed's mean over its
runs, so a dataset seed that lost a run weighs as much as the others. It is printed and
written to ``levels.md`` and ``levels.json`` under ``--out``. Targets checked:

- easy: every extractor at 95% held-out accuracy or more, future RMSE under 5% of the
  extent, each round under 30 minutes;
- hard: no extractor above 90%, and (with two seeds or more) neighbouring extractors in
  the ranking further apart than the largest seed-to-seed spread.

Each dataset seed trains from its own training seed (the model's initialisation and batch
order) unless ``--train-seeds`` names them. One training seed shared by every dataset seed
makes the paired leads below describe that one initialisation: on hard at 4 epochs,
training seed 0 put i3d ahead of magvit on all four dataset seeds (by 1.4 to 2.8 points)
and training seed 1 put magvit ahead on all four (by 0.2 to 1.2). With ``--train-seeds 0 1``
every dataset seed is trained from both, and its accuracy is the mean of the two runs
(each shown beside it); the spread between single runs is printed too.

The table also ranks each level paired by seed: an extractor's lead over the next one on
each seed, both trained on the same dataset and scored on the same clips. A dataset seed
that is easier for every extractor moves their spreads but not their leads, so a lead
held on every seed and larger than its own spread ranks the two even when their means
are within each other's spread; the output says which neighbours it ranks so, and gives
each pair's mean lead, its standard deviation and a paired t-test over the seeds.

Within each round the two runs of a pair are also compared clip by clip (McNemar's exact
test on the clips only one of them got right, from ``train.evaluate``'s clips files). That
p covers the held-out clips' noise only, so it says whether two trained models differ; a
retrained model moves by more, which the seeds above measure.

A dataset folder already under ``--data-root`` is used only if its ``metadata.json`` names
what its level asks for (the seed, the level's generator config, this renderer's version and
the sample count); one made otherwise is refused, not made again over it.

``--reuse`` takes a round already trained under ``--out`` (every extractor trained on the
same dataset for the same epochs from the same training seed, and finished) instead of
training it again, so seeds run on another day join one table. Each run's ``results.json``
must name the identity of the data now in the dataset folder: a round of other data (the
folder made again since) is moved to ``ROUND.IDENTITY`` and trained again, in a line saying
so. A round folder not reused otherwise (no ``--reuse``, or a round trained for other
epochs, seed or extractors, or unfinished) is moved to ``ROUND.previous`` (then
``ROUND.previous.2``, ...), in a line saying so: no trained run is deleted. Its runs are
scored on the held-out set unless they already were (a record names the identity of the
data it scored, ``train.evaluate``'s ``dataset``), so ``--eval-seed`` can score trained runs
on fresh clips that nothing was chosen by. A record of other data under the held-out set's
name is moved, with its clips file, into ``NAME.all.IDENTITY/`` and the run scored again,
in a line saying so; the move holds the run's ``evaluations/.lock``, so a ``train.evaluate``
scoring that run meanwhile stops the bench (exit 1, one line naming the run). One bench at
a time writes an ``--out`` (``--out/.lock``): a second exits 1 at its start, before making
``--data-root``.
Ctrl-C or SIGTERM stops the step under way (the generator or the round's runs stop
cleanly) and exits 130.

The table is printed before ``levels.md`` and ``levels.json`` are written. Exit 1 when a
target is missed, a dataset cannot be generated or the table cannot be saved; 2 for a bad or
repeated flag value or a dataset folder of other data. Usage:

    python benchmarks/bench_train.py [--preset easy medium hard] [--seeds 0 1] [--train-seeds 0 1]
                                     [--n N] [--epochs E] [--extractors ...]
                                     [--eval-n 2000] [--eval-seed 1000] [--reuse]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import yaml

from generator.dataformat.metadata import dataset_identity, renderer_of
from train.run_folder import LOCK
from train.summary import table_cell
from trajkit.cli import (
    MAX_EPOCHS,
    OneLineParser,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    one_line,
    short_repr,
    whole_number,
)
from trajkit.files import json_text, read_json, write_atomic
from trajkit.lock import FolderLock, ForeignLockError, LockedError
from trajkit.seeds import MAX_SEED

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "generator"  # LEVEL.yaml: the generator config of each level
LEVELS = ("easy", "medium", "hard")
EASY_ACCURACY = 0.95
HARD_ACCURACY = 0.90
TARGET_RMSE_FRACTION = 0.05
TARGET_MINUTES = 30.0
# The shipped recipe over the tiny preset per level: with distractor balls the target is
# named by its colour, which position channels drop (configs/train/colour.yaml says why).
RECIPES = {"medium": "colour", "hard": "colour"}
# Samples and epochs per level when --n and --epochs are not given. Hard trains on 5,000
# samples, not 2,000: on 2,000 every extractor memorises its training set (90-98% training
# against 62-68% held-out accuracy), and a model that memorises is ranked by its luck with
# the split, not by what it learnt. And for 8 epochs (32,000 training samples seen, twice
# easy's 16,000): at 4 the four split into two tiers whose inner order followed the
# training seed; at 8 one order held in 9 of 12 runs (4 dataset x 3 training seeds), the
# three breaks all slowfast against the transformer (README, "Hard level").
BUDGETS = {"easy": (2000, 10), "medium": (2000, 10), "hard": (5000, 8)}


def budget(level: str, args: argparse.Namespace) -> tuple[int, int]:
    """Samples and epochs of ``level``'s rounds: the flags, or the level's ``BUDGETS``."""
    return args.n or BUDGETS[level][0], args.epochs or BUDGETS[level][1]


def run(cmd: list[str]) -> int:
    """``cmd``'s exit status. On Ctrl-C or SIGTERM the child gets one SIGINT and is waited
    for, so it stops its own runs and workers (``subprocess.call`` would SIGKILL it and
    leave them training on)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print("$ " + " ".join(cmd), flush=True)
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        child.wait()
        raise


class BenchError(Exception):
    """What the benchmark cannot go on from, in one line: exit 2."""


def dataset(level: str, seed: int, n: int, folder: Path) -> dict | None:
    """The metadata of ``folder``, generated unless it is already there; None when the
    generator failed. A folder already there must hold what ``level``, ``seed`` and ``n``
    ask for (``checked``)."""
    want = level_dataset(level, seed, n)
    if not os.path.lexists(folder / "metadata.json"):
        workers = str(len(os.sched_getaffinity(0)))
        code = run([sys.executable, "-m", "generator", "--n", str(n), "--out", str(folder),
                    "--seed", str(seed), "--config", str(CONFIGS / f"{level}.yaml"),
                    "--workers", workers, "--resume", "--quiet"])  # fmt: skip
        if code:
            return None
    return checked(folder, want, level)


def level_dataset(level: str, seed: int, n: int) -> dict:
    """What ``dataset_identity`` reads of the dataset the level asks for: the seed, the
    level's generator config, this renderer's version, ``n`` samples."""
    from generator.config import ConfigError, load_config
    from generator.render.sample import RENDER_VERSION

    try:
        config = load_config(CONFIGS / f"{level}.yaml").model_dump(mode="json")
    except ConfigError as e:
        raise BenchError(str(e)) from None
    return {"seed": seed, "config": config, "render_version": RENDER_VERSION, "total_samples": n}


def checked(folder: Path, want: dict, level: str) -> dict:
    """``folder``'s metadata if it holds the dataset ``want`` describes, else BenchError
    saying what differs. Refused, not generated again: ``--data-root`` may be anyone's
    folder."""
    from generator.dataformat.dataset import read_metadata
    from generator.dataformat.sources import DatasetError

    try:
        meta = read_metadata(folder)
    except DatasetError as e:
        raise BenchError(str(e)) from None
    if dataset_identity(meta) == dataset_identity(want):
        return meta
    have = {key: meta.get(key) for key in want} | {"render_version": renderer_of(meta)}
    differ = [
        f"{key} {short_repr(have[key])}, not {want[key]}"
        for key in ("seed", "total_samples", "render_version")
        if have[key] != want[key]
    ]
    if have["config"] != want["config"]:
        differ.append(f"another config than {CONFIGS / f'{level}.yaml'}")
    raise BenchError(
        f"{folder} holds other data than {level} asks for ({'; '.join(differ)}): move it "
        "away, and the rounds trained on it under --out, to make it again"
    )


def round_of(
    level: str, seed: int, train_seed: int, args: argparse.Namespace, held_out: HeldOut
) -> tuple[list[dict], float | None, list[str]] | None:
    """Generate (or reuse) one level's dataset of ``seed``, train the extractors on it from
    ``train_seed`` and score them on ``held_out``: the runs' held-out records, the minutes
    (None for a round ``--reuse`` read) and the classes."""
    n, epochs = budget(level, args)
    data = args.data_root / f"train_{level}_s{seed}_{n}"
    meta = dataset(level, seed, n, data)
    if meta is None:
        return None
    out = args.out / f"{level}_s{seed}_t{train_seed}"
    classes, identity = meta["classes"], dataset_identity(meta)
    if args.reuse and (runs := trained_round(out, args.extractors, data, epochs, train_seed)):
        others = [d for d in map(trained_on, runs) if d != identity]
        if not others:
            print(f"{out.name}: reusing its trained runs", flush=True)
            return held_out_records(runs, held_out), None, classes
        aside = aside_folder(out, data_tag(others[0]))
        os.replace(out, aside)  # over the empty folder that holds its name
        print(f"{out}: trained on other data than {data} holds (dataset {short_repr(others[0])}, "
              f"not {identity}); training it again, those runs kept in {aside.name}",
              flush=True)  # fmt: skip
    keep_previous(out)
    recipe = ["--config", RECIPES[level]] if level in RECIPES else []
    start = time.monotonic()
    run([sys.executable, "-m", "train.parallel", "--extractors", *args.extractors,
         "--data", str(data), "--epochs", str(epochs), "--out", str(out),
         "--seed", str(train_seed), *recipe])  # fmt: skip
    minutes = (time.monotonic() - start) / 60
    runs = [out / name for name in args.extractors if (out / name / "best.pt").exists()]
    return held_out_records(runs, held_out), minutes, classes


def keep_previous(out: Path) -> None:
    """Move a round folder that holds anything to ``ROUND.previous`` (``aside_folder``),
    saying so: the round trains in a fresh folder, and runs that took hours are kept."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    aside = aside_folder(out, "previous")
    os.replace(out, aside)  # over the empty folder that holds its name
    print(f"{out}: not reused, training it again; what it held kept in {aside.name} (--reuse "
          "reads a round trained on the same data for the same epochs from the same seed)",
          flush=True)  # fmt: skip


def trained_round(
    out: Path, extractors: list[str], data: Path, epochs: int, train_seed: int
) -> list[Path] | None:
    """The run folders of a round already trained in ``out``: every extractor's run trained
    on ``data`` for ``epochs`` from ``train_seed`` and finished (``results.json`` and
    ``best.pt`` are there); else None."""
    runs = []
    for name in extractors:
        path = out / name
        if not (path / "config.yaml").is_file():  # a FIFO would block the read
            return None
        try:
            cfg = yaml.safe_load((path / "config.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError):
            return None
        if not isinstance(cfg, dict):
            return None
        trained = (cfg.get("extractor"), cfg.get("data"), cfg.get("epochs"), cfg.get("seed"))
        finished = (path / "results.json").is_file() and (path / "best.pt").is_file()
        if trained != (name, str(data), epochs, train_seed) or not finished:
            return None
        runs.append(path)
    return runs


def trained_on(run: Path) -> object:
    """The identity of the data ``run`` trained on, as its ``results.json`` names it (None
    if it names none: a run from before they did, or a damaged file)."""
    try:
        results = read_json(run / "results.json")
    except ValueError:
        return None
    return results.get("dataset") if isinstance(results, dict) else None


class HeldOut:
    """A level's held-out set: its folder and ``dataset_identity``, which a score record
    must name to be taken (the folder's path alone named other data once it was made
    again from another config)."""

    def __init__(self, folder: Path, meta: dict) -> None:
        self.folder, self.identity = folder, dataset_identity(meta)


def held_out_records(runs: list[Path], held_out: HeldOut) -> list[dict]:
    """Each run's ``train.evaluate`` record on ``held_out``; the runs without one are scored
    first, so trained runs can be scored on another held-out set without training again. A
    record of other data in the way (``train.evaluate`` would refuse to replace it) is kept
    in a folder of its own named by its dataset's identity, and the run scored again."""
    name = f"{held_out.folder.name}.all"

    def record_of(path: Path) -> dict | None:
        file = path / "evaluations" / f"{name}.json"
        if not file.is_file():  # a FIFO would block the read
            return None
        try:
            record = read_json(file)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        if record.get("dataset") != held_out.identity:
            aside = set_aside(file, record)
            print(f"{path}: {file.name} scored other data than {held_out.folder} holds (dataset "
                  f"{short_repr(record.get('dataset'))}, not {held_out.identity}); scoring it "
                  f"again, that record kept in evaluations/{aside.name}", flush=True)  # fmt: skip
            return None
        return record

    if unscored := [path for path in runs if record_of(path) is None]:
        run([sys.executable, "-m", "train.evaluate", *map(str, unscored),
             "--data", str(held_out.folder), "--quiet"])  # fmt: skip
    return [record for record in map(record_of, runs) if record is not None]


def set_aside(file: Path, record: dict) -> Path:
    """Move ``file``, a record of other data, and the clips file it names into a folder of
    their own (``aside_folder``), out of ``train.evaluate``'s way (it refuses to score the
    run again over it): the new scoring's clips file may have the old one's name, and
    replacing that record later would remove it. Under the run's ``evaluations/.lock``,
    which ``train.evaluate`` holds while it scores and writes: held by another process,
    ``LockedError`` and nothing moved."""
    with FolderLock(file.parent / LOCK):
        aside = aside_folder(file, data_tag(record.get("dataset")))
        os.rename(file, aside / file.name)
        clips, stem = record.get("clips"), re.escape(file.name.removesuffix(".json"))
        if isinstance(clips, str) and re.fullmatch(rf"{stem}\.[0-9a-f]{{12}}\.clips\.csv", clips):
            try:  # only a name of its own beside it: a record may name any path
                os.rename(file.with_name(clips), aside / clips)
            except FileNotFoundError:  # scored before clips files were written, or lost
                pass
    return aside


def data_tag(other: object) -> str:
    """The tag of what is set aside as of other data: that data's identity ``other``, or
    ``unnamed`` if it is none."""
    return other if isinstance(other, str) and re.fullmatch(r"[0-9a-f]{12}", other) else "unnamed"


def aside_folder(path: Path, tag: str) -> Path:
    """A new empty folder beside ``path`` for what is set aside: ``NAME.TAG``, then
    ``NAME.TAG.2``, ..., never one set aside before."""
    stem, number = path.name.removesuffix(".json"), 1
    while True:
        aside = path.with_name(f"{stem}.{tag}" if number == 1 else f"{stem}.{tag}.{number}")
        try:
            aside.mkdir()
            return aside
        except FileExistsError:
            number += 1


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def short_names(classes: list[str]) -> list[str]:
    """``Linear`` -> ``line``: short enough for a table cell, distinct for the seven classes."""
    return [c[:4].lower() for c in classes]


def mean_over_seeds(by_seed: dict[int, list[float | None]]) -> float | None:
    """The mean over dataset seeds of each seed's mean over its runs. None values (a class
    absent from the held-out set, a record without RMSE) are left out; None if nothing is left."""
    seed_means = [
        statistics.mean(values)
        for values in ([v for v in runs if v is not None] for runs in by_seed.values())
        if values
    ]
    return statistics.mean(seed_means) if seed_means else None


def table(
    results: dict[str, dict[int, list[dict]]],
    extractors: list[str],
    classes: dict[str, list[str]] | None = None,
) -> list[dict]:
    """One row per (level, extractor) from the held-out records (``train.evaluate``'s):
    accuracies per dataset seed (the mean of that seed's runs, one per training seed),
    their mean and spread, RMSE, per class (named from ``classes``); every mean over the
    dataset seeds' own means (``mean_over_seeds``)."""
    rows = []
    for level, by_seed in results.items():
        for name in extractors:
            scored = {  # dataset seed -> this extractor's records with a result
                seed: [r for r in records if r["extractor"] == name and r["accuracy"] is not None]
                for seed, records in by_seed.items()
            }
            runs = {seed: records for seed, records in scored.items() if records}
            everything = [r for records in runs.values() for r in records]
            by_seed_runs = {seed: [r["accuracy"] for r in rs] for seed, rs in runs.items()}
            accs = [statistics.mean(a) for a in by_seed_runs.values()]
            per_class = {
                seed: [r["per_class_accuracy"] for r in rs if r["per_class_accuracy"]]
                for seed, rs in runs.items()
            }
            width = max((len(pc) for pcs in per_class.values() for pc in pcs), default=0)
            single = [r["accuracy"] for r in everything]
            rows.append(
                {
                    "level": level,
                    "extractor": name,
                    "seeds": list(by_seed),
                    "runs": by_seed_runs,
                    "run_spread": max(single) - min(single) if single else None,
                    "by_seed": dict(zip(by_seed_runs, accs, strict=True)),
                    "accuracy": accs,
                    "mean": mean_over_seeds(by_seed_runs),
                    "spread": max(accs) - min(accs) if accs else None,
                    "rmse_fraction": mean_over_seeds(
                        {seed: [r["future_rmse_fraction"] for r in rs] for seed, rs in runs.items()}
                    ),
                    "per_class": [
                        mean_over_seeds(
                            {seed: [pc[c] for pc in pcs] for seed, pcs in per_class.items()}
                        )
                        for c in range(width)
                    ]
                    or None,
                    "classes": (classes or {}).get(level),
                }
            )
    return rows


def ranked(rows: list[dict], level: str) -> list[dict]:
    """``level``'s rows with a result, best mean first."""
    return sorted(
        (r for r in rows if r["level"] == level and r["mean"] is not None), key=lambda r: -r["mean"]
    )


def shared_seeds(a: dict, b: dict) -> list[int]:
    """The seeds both rows have a result for, in seed order."""
    return [s for s in a["seeds"] if s in a["by_seed"] and s in b["by_seed"]]


def leads(a: dict, b: dict) -> list[float]:
    """``a``'s lead over ``b`` on each seed both have, in seed order."""
    return [a["by_seed"][s] - b["by_seed"][s] for s in shared_seeds(a, b)]


def paired_ranks(a: dict, b: dict) -> bool:
    """``a`` ahead of ``b`` on every seed (two or more), by more than the leads' own spread."""
    gaps = leads(a, b)
    return len(gaps) > 1 and min(gaps) > 0 and sum(gaps) / len(gaps) > max(gaps) - min(gaps)


def markdown(rows: list[dict]) -> str:
    head = (
        "| level | extractor | held-out acc per seed (%) | mean over seeds (%) | seed spread (pts) "
        "| lead over the next, per seed (pts) | future RMSE / extent, mean over seeds (%) "
        "| per class, mean over seeds (%) |\n"
        "|---|---|---|---:|---:|---|---:|---|\n"
    )
    lines = []
    for level in dict.fromkeys(r["level"] for r in rows):
        order = ranked(rows, level)
        order += [r for r in rows if r["level"] == level and r["mean"] is None]
        for r, below in zip(order, [*order[1:], None], strict=True):
            gaps = leads(r, below) if below and below["mean"] is not None else []
            lead = ", ".join(_pct(g) for g in gaps) if gaps else "-"
            lines.append(
                f"| {table_cell(level)} | {table_cell(r['extractor'])} | {per_seed(r)} "
                f"| {_pct(r['mean'])} | {_pct(r['spread'])} | {lead} "
                f"| {_pct(r['rmse_fraction'])} | {table_cell(_per_class(r))} |"
            )
    return head + "\n".join(lines) + "\n"


def per_seed(row: dict) -> str:
    """``74.5, 76.2``; with several runs per dataset seed ``74.5 (73.9/75.1), ...``."""
    cells = []
    for seed, accuracy in row["by_seed"].items():
        runs = row["runs"][seed]
        each = f" ({'/'.join(_pct(a) for a in runs)})" if len(runs) > 1 else ""
        cells.append(_pct(accuracy) + each)
    return ", ".join(cells)


def ranking(rows: list[dict], level: str) -> str:
    """``i3d > magvit = slowfast``: ``>`` where the paired leads rank two neighbours."""
    order = ranked(rows, level)
    text = order[0]["extractor"] if order else ""
    for a, b in zip(order, order[1:], strict=False):
        text += (" > " if paired_ranks(a, b) else " = ") + b["extractor"]
    return text


def paired_tests(rows: list[dict], level: str) -> list[str]:
    """One line per neighbouring pair: the mean lead, its standard deviation over the
    seeds, a paired t-test on the per-seed accuracies and Welch's unpaired one (two-sided).

    The unpaired test ignores that both were trained on the same dataset: it asks whether
    the two rows' seed-to-seed spreads alone keep them apart."""
    from scipy import stats

    order = ranked(rows, level)
    lines = []
    for a, b in zip(order, order[1:], strict=False):
        gaps = leads(a, b)
        if len(gaps) < 2:
            continue
        mean, sd = statistics.mean(gaps), statistics.stdev(gaps)
        if sd == 0:
            t, p = math.copysign(math.inf, mean) if mean else 0.0, 0.0 if mean else 1.0
        else:
            t = mean / (sd / math.sqrt(len(gaps)))
            p = float(2 * stats.t.sf(abs(t), len(gaps) - 1))
        seeds = shared_seeds(a, b)
        with warnings.catch_warnings():  # two rows without any spread: nan, said as such
            warnings.simplefilter("ignore", RuntimeWarning)
            welch = stats.ttest_ind(
                [a["by_seed"][s] for s in seeds], [b["by_seed"][s] for s in seeds], equal_var=False
            )
        lines.append(
            f"{a['extractor']} over {b['extractor']}: lead {100 * mean:.1f} +- {100 * sd:.1f} "
            f"pts, paired t {t:.1f} ({len(gaps) - 1} df), p {p:.3g}; unpaired (Welch) "
            f"t {float(welch.statistic):.1f} ({float(welch.df):.1f} df), p {float(welch.pvalue):.3g}"
        )
    return lines


def clip_tests(
    results: dict[str, dict[int, list[dict]]], rows: list[dict], level: str
) -> list[str]:
    """One line per neighbouring pair: in each round (both runs scored on the same held-out
    clips), the lead and McNemar's p, then in how many rounds the lead is significant.

    These measure the clips' noise only: a lead significant in every round yet changing
    with the training seed says the runs differ, not the extractors. Records without a
    clips file (scored before they were written) are left out."""
    from train.trajectory.clips import paired, read_clips

    rounds: dict[str, dict[str, dict]] = {}  # round folder name -> extractor -> its clips
    for records in results.get(level, {}).values():
        for r in records:
            if not r.get("clips") or not r.get("run"):
                continue
            run = Path(r["run"])
            try:
                clips = read_clips(run / "evaluations" / r["clips"])
            except ValueError:
                continue
            rounds.setdefault(run.parent.name, {})[r["extractor"]] = clips
    lines = []
    order = ranked(rows, level)
    for a, b in zip(order, order[1:], strict=False):
        scores = {}
        for name, runs in rounds.items():
            try:
                scores[name] = paired(runs[a["extractor"]], runs[b["extractor"]])
            except (KeyError, ValueError):  # a run missing, or scored on other clips
                continue
        if not scores:
            continue
        each = ", ".join(f"{name} {100 * s.lead:+.1f} (p {s.p:.2g})" for name, s in scores.items())
        held = sum(s.lead > 0 and s.p < 0.05 for s in scores.values())
        lines.append(
            f"{a['extractor']} over {b['extractor']}: {each}; ahead at p < 0.05 in {held} "
            f"of {len(scores)} rounds"
        )
    return lines


def _per_class(row: dict) -> str:
    """``line 98, circ 95, ...``: each class's accuracy, named as the dataset names it."""
    if not row["per_class"]:
        return "-"
    names = short_names(row.get("classes") or [])
    if len(names) != len(row["per_class"]):
        names = [str(c) for c in range(len(row["per_class"]))]
    cells = ("-" if a is None else f"{100 * a:.0f}" for a in row["per_class"])
    return ", ".join(f"{n} {cell}" for n, cell in zip(names, cells, strict=True))


def missed_targets(rows: list[dict], minutes: dict[str, list[float]]) -> list[str]:
    missed = []
    for r in rows:
        if r["mean"] is None:
            missed.append(f"{r['level']} {r['extractor']}: no result")
        elif r["level"] == "easy":
            if min(r["accuracy"]) < EASY_ACCURACY:
                missed.append(f"easy {r['extractor']}: held-out accuracy under {EASY_ACCURACY}")
            if r["rmse_fraction"] is None or r["rmse_fraction"] >= TARGET_RMSE_FRACTION:
                missed.append(f"easy {r['extractor']}: future RMSE >= {TARGET_RMSE_FRACTION}")
        elif r["level"] == "hard" and max(r["accuracy"]) > HARD_ACCURACY:
            missed.append(f"hard {r['extractor']}: held-out accuracy above {HARD_ACCURACY}")
    hard = ranked(rows, "hard")
    if len(hard) > 1 and len(hard[0]["accuracy"]) > 1:
        spread = max(r["spread"] for r in hard)
        for a, b in zip(hard, hard[1:], strict=False):
            if a["mean"] - b["mean"] <= spread:
                missed.append(
                    f"hard: {a['extractor']} and {b['extractor']} {100 * (a['mean'] - b['mean']):.1f}"
                    f" pts apart, within the seed spread {100 * spread:.1f}"
                )
    for m in minutes.get("easy", []):
        if m >= TARGET_MINUTES:
            missed.append(f"easy round {m:.1f} min >= {TARGET_MINUTES}")
    return missed


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="bench_train.py", description=__doc__.splitlines()[0])
    seed = whole_number(0, MAX_SEED)
    p.add_argument("--preset", nargs="+", choices=LEVELS, default=["easy"])
    p.add_argument("--seeds", nargs="+", type=seed, default=[0], help="dataset seeds")
    p.add_argument("--train-seeds", nargs="+", type=seed,
                   help="training seeds, each trained on every dataset seed; a dataset seed's "
                   "accuracy is its runs' mean (default: the dataset seed alone)")  # fmt: skip
    p.add_argument(
        "--n", type=whole_number(1), help="training samples per dataset (default: BUDGETS)"
    )
    p.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), help="default: BUDGETS")
    p.add_argument("--extractors", nargs="+", default=["i3d", "slowfast", "transformer", "magvit"])
    p.add_argument("--data-root", type=folder_arg, default=ROOT / "data" / ".bench")
    p.add_argument("--out", type=folder_arg, default=ROOT / "data" / ".bench" / "train_runs")
    p.add_argument(
        "--eval-n", type=whole_number(1), default=2000, help="held-out samples per level"
    )
    p.add_argument("--eval-seed", type=seed, default=1000, help="the held-out sets' seed")
    p.add_argument("--reuse", action="store_true",
                   help="read a round already scored under --out (same data, epochs, training "
                   "seed and held-out set) instead of training it again")  # fmt: skip
    args = p.parse_args(argv)
    for flag in ("preset", "seeds", "train_seeds", "extractors"):
        values = getattr(args, flag) or []
        if repeated := [str(v) for v in dict.fromkeys(values) if values.count(v) > 1]:
            p.error(f"--{flag.replace('_', '-')} names {', '.join(repeated)} more than once: "
                    "the same runs would count twice")  # fmt: skip
    if args.eval_seed in args.seeds:
        p.error(
            f"--eval-seed {args.eval_seed} is also a training seed; the held-out set must not be"
        )
    if code := make_folder(args.out):
        return code
    # One bench at a time on --out: a second would train and set aside rounds under the
    # first. A LockedError from within is a run's evaluations/.lock (set_aside).
    try:
        with FolderLock(args.out / ".lock"):
            return make_folder(args.data_root) or benchmark(args)  # a bench refused makes none
    except LockedError as e:  # a .lock that is not ours is the user's to move: a usage error
        print(f"bench_train.py: error: {one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, ForeignLockError) else 1
    except OSError as e:
        print(f"bench_train.py: error: {failed_io(e)}", file=sys.stderr)
        return 1


def make_folder(folder: Path) -> int:
    """``folder`` made with its parents: exit code 0, or 2 said in one line (under a file,
    unwritable), said now, not after hours of training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"bench_train.py: error: {failed_io(e)}", file=sys.stderr)
        return 2
    return 0


def benchmark(args: argparse.Namespace) -> int:
    """Every round ``args`` asks for, then the table: ``main``'s work, with ``--out`` locked."""
    results: dict[str, dict[int, list[dict]]] = {}
    minutes: dict[str, list[float]] = {}
    classes: dict[str, list[str]] = {}
    try:
        for level in args.preset:
            folder = args.data_root / f"eval_{level}_s{args.eval_seed}_{args.eval_n}"
            meta = dataset(level, args.eval_seed, args.eval_n, folder)
            if meta is None:
                print(f"{level}: the held-out set could not be generated")
                return 1
            for seed in args.seeds:
                for train_seed in args.train_seeds or [seed]:
                    got = round_of(level, seed, train_seed, args, HeldOut(folder, meta))
                    if got is None:
                        print(f"{level} seed {seed}: the dataset could not be generated")
                        return 1
                    results.setdefault(level, {}).setdefault(seed, []).extend(got[0])
                    if got[1] is not None:  # a reused round was not timed
                        minutes.setdefault(level, []).append(got[1])
                    classes[level] = got[2]
    except BenchError as e:
        print(f"bench_train.py: error: {one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"bench_train.py: error: {failed_io(e)}", file=sys.stderr)
        return 1
    rows = table(results, args.extractors, classes)
    text = markdown(rows)
    budgets = {level: budget(level, args) for level in args.preset}
    print(f"\n{len(args.extractors)} extractors, (samples, epochs) {budgets}, "
          f"dataset seeds {args.seeds}, training seeds {args.train_seeds or 'the dataset seeds'}, "
          f"scored on {args.eval_n} held-out samples of seed {args.eval_seed}, {len(os.sched_getaffinity(0))} cores; minutes per round "
          f"{ {k: [round(m, 1) for m in v] for k, v in minutes.items()} }\n")  # fmt: skip
    print(text)
    if len(args.train_seeds or []) > 1:
        print("single runs' spread (max - min over every dataset and training seed): "
              + ", ".join(f"{r['level']} {r['extractor']} {_pct(r['run_spread'])}"
                          for r in rows if r["run_spread"] is not None))  # fmt: skip
    for level in args.preset:
        if len(args.seeds) > 1:
            print(f"{level}, paired by seed ('=' where a lead is not held on every seed or is "
                  f"within its own spread): {ranking(rows, level)}")  # fmt: skip
            print("  " + "\n  ".join(paired_tests(rows, level)))
        if clip_lines := clip_tests(results, rows, level):
            print(f"{level}, clip by clip within each round (McNemar's exact test):")
            print("  " + "\n  ".join(clip_lines))
    missed = missed_targets(rows, minutes)
    print("targets: " + ("all met" if not missed else "MISSED\n  " + "\n  ".join(missed)),
          flush=True)  # fmt: skip
    try:  # last: a full disk or a folder gone loses the files, not what was printed
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "levels.md", text.encode())
        levels = json_text({"rows": rows, "minutes": minutes}, indent=1)
        write_atomic(args.out / "levels.json", levels.encode())
    except OSError as e:
        print(f"bench_train.py: error: the table is not saved: {failed_io(e)}", file=sys.stderr)
        return 1
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(exit_on_interrupt(main, "bench_train stopped; --reuse keeps the rounds scored so far"))
