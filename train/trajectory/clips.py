"""Per-clip scores of a run (``RUN/evaluations/DATA.SPLIT.HASH.clips.csv``, named in its
record ``DATA.SPLIT.json``) and the paired comparison of two runs scored on the same clips.

Two runs' accuracies on one held-out set differ partly by which clips each happened to
get right. McNemar's exact test looks only at the clips where exactly one of the two is
right: under "equally good" each such clip is a fair coin, so the count won by the first
run is Binomial(discordant, 1/2). It answers whether these two trained models differ on
this data distribution; whether the *extractors* differ also needs several training and
dataset seeds (``benchmarks/bench_train.py``), because a retrained model moves by more.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = ("index", "label", "predicted", "future_error")


def clips_csv(rows: np.ndarray) -> bytes:
    """``rows`` (N, 4): index, label, predicted class, future error, as the file's bytes in
    index order (``train.evaluate`` names the file by their SHA-256, which anyone can check)."""
    columns = as_columns(rows)
    lines = [",".join(COLUMNS)]
    lines += [
        f"{i},{y},{p},{e:.6g}"
        for i, y, p, e in zip(*(columns[c].tolist() for c in COLUMNS), strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def read_clips(path: Path) -> dict[str, np.ndarray]:
    """A clips file's columns by name; ValueError naming the file when it is not one."""
    if not path.is_file():  # a FIFO would block the read for ever
        raise ValueError(f"{path} is missing or not a regular file")
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            if tuple(next(reader, ())) != COLUMNS:
                raise ValueError(f"its header is not {','.join(COLUMNS)}")
            rows = [[float(v) for v in row] for row in reader]
        if any(len(row) != len(COLUMNS) for row in rows):
            raise ValueError(f"a row has not {len(COLUMNS)} values")
        table = np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))
        if not np.isfinite(table[:, :3]).all() or (table[:, :3] != np.round(table[:, :3])).any():
            raise ValueError("an index or class is not an integer")
        if len(np.unique(table[:, 0])) != len(table):
            raise ValueError("a sample index repeats")
    except (UnicodeDecodeError, csv.Error, ValueError) as e:
        raise ValueError(f"{path} is not a clips file ({e})") from None
    return as_columns(table)


def as_columns(rows: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 4) rows -> the columns by name, in index order; integers where they are."""
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    columns = dict(zip(COLUMNS, rows.T, strict=True))
    for name in COLUMNS[:3]:
        columns[name] = columns[name].astype(np.int64)
    return columns


@dataclass(frozen=True)
class PairedScore:
    """``a`` against ``b`` on the clips both scored."""

    clips: int
    lead: float  # a's accuracy minus b's
    a_only: int  # clips a got right and b wrong
    b_only: int
    p: float  # McNemar's exact test, two-sided


def paired(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> PairedScore:
    """Compare two runs' clips; ValueError unless both scored the same samples with the
    same labels (the same held-out set and split)."""
    if not np.array_equal(a["index"], b["index"]) or not np.array_equal(a["label"], b["label"]):
        raise ValueError("the two runs were not scored on the same clips")
    right_a, right_b = a["predicted"] == a["label"], b["predicted"] == b["label"]
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    n = len(right_a)
    lead = (int(right_a.sum()) - int(right_b.sum())) / n if n else 0.0
    return PairedScore(n, lead, a_only, b_only, mcnemar_p(a_only, b_only))


def mcnemar_p(a_only: int, b_only: int) -> float:
    """McNemar's exact test, two-sided: the discordant clips as fair coin flips."""
    from scipy import stats

    if a_only + b_only == 0:
        return 1.0
    return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)
