"""The comparison of many runs: ``summary.json``, ``summary.md`` and ``comparison.png`` under ``--out``.

Rewritten after every finished run, so a long round can be read while it goes
on. Each run is read from its own folder (``results.json``, ``metrics.jsonl``);
the launcher adds its status and, for a failed run, the error. A damaged file
leaves its run's numbers (or curves) out, with one warning, never the others'.
Runs are ranked only against runs of the same data, and a run that did not finish
this round (failed, interrupted, unfinished) after those that did: its numbers are
an earlier round's, marked with the epochs they are of.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path

from train.run_folder import METRICS, RESULTS, read_metrics
from trajkit.cli import one_line, short_repr
from trajkit.files import read_json, write_atomic, write_json_atomic

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
COMPARISON_PNG = "comparison.png"
# What the report reads of results.json as numbers (COUNTS as whole ones) and of each epoch
# in metrics.jsonl: a string or a list there made the ranking, the table or the plot raise.
COUNTS = ("parameters", "epochs", "best_epoch")
NUMBERS = (
    "val_accuracy",
    "test_accuracy",
    "val_future_rmse",
    "val_future_rmse_fraction",
    "test_future_rmse",
    "train_samples_per_second",
    "wall_time_seconds",
)
TEXTS = ("data", "dataset")  # where the samples came from: a path or render stream, and its id
CURVES = ("epoch", "val_accuracy", "val_loss", "train_loss")
# What those fields can hold beyond being finite: a hand-edited accuracy of 1e300 ranked its
# run first, and a negative RMSE or wall time read as the best.
BOUNDS = {
    **{key: (0, math.inf) for key in (*COUNTS, *NUMBERS)},
    "val_accuracy": (0, 1),
    "test_accuracy": (0, 1),
}

UNBOUNDED = (-math.inf, math.inf)

_warned: set[str] = set()


@dataclass
class RunStatus:
    """One run as the launcher sees it."""

    name: str
    status: str = "queued"  # queued, running, done, unfinished, failed, interrupted, submitted
    returncode: int | None = None
    error: str | None = None
    wall_seconds: float | None = None
    extra: dict = field(default_factory=dict)


def rank_key(row: dict) -> tuple:
    """Best first: higher validation accuracy, then lower future RMSE."""
    acc = row.get("val_accuracy")
    rmse = row.get("val_future_rmse")
    return (-(acc if acc is not None else -1.0), rmse if rmse is not None else float("inf"))


def warn_once(line: str) -> None:
    """``warning: line`` on stderr, once per process: the summary is rewritten after every run."""
    if line not in _warned:
        _warned.add(line)
        print(one_line(f"warning: {line}"), file=sys.stderr)


def is_number(value: object, kind: type | tuple[type, ...] = (int, float)) -> bool:
    """Whether a value read from JSON is a finite number a float can hold: JSON's true is no
    count, and Python's JSON reads NaN, Infinity and 10**400, which ranked first or made the
    table raise."""
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past a float's range
        return False


def number_problem(
    key: str,
    value: object,
    kind: type | tuple[type, ...] = (int, float),
    bounds: tuple[float, float] = UNBOUNDED,
) -> str | None:
    """Why ``value`` of ``key`` cannot be reported (not a finite number of ``kind``, or
    outside ``bounds``), for the warning that leaves its run out; None when it can."""
    if not is_number(value, kind):
        what = "a whole number" if kind is int else "a finite number"
        return f"{key} is {short_repr(value)}, not {what}"
    low, high = bounds
    if not low <= value <= high:
        return f"{key} is {short_repr(value)}, outside [{low:g}, {high:g}]"
    return None


def table_cell(text: object) -> str:
    """``text`` as one markdown table cell: a ``|`` or a line break in a name or an error
    read from a file split its row."""
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|")


def run_results(run_dir: Path) -> dict:
    """``run_dir/results.json`` ({} while the run has none). A damaged one is a ValueError
    naming it: not a regular file (a FIFO would block the read), not UTF-8 JSON, not an
    object, or a field the report reads that is not a number."""
    path = run_dir / RESULTS
    if not path.exists():
        return {}
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    results = read_json(path)
    if not isinstance(results, dict):
        raise ValueError(f"{path} is damaged (not a JSON object)")
    for key in (*COUNTS, *NUMBERS):
        value = results.get(key)
        kind = int if key in COUNTS else (int, float)
        if value is not None and (problem := number_problem(key, value, kind, BOUNDS[key])):
            raise ValueError(f"{path} is damaged ({problem})")
    for key in TEXTS:
        if not isinstance(results.get(key), str | None):
            raise ValueError(f"{path} is damaged ({key} is {short_repr(results[key])}, not text)")
    return results


def results_for_report(run_dir: Path, read: Callable[[Path], dict] = run_results) -> dict:
    """``read(run_dir)`` (``run_results``, or a report's own checks on top of it), or {} with
    one warning when it is damaged: one bad file must not cost the other runs their report."""
    try:
        return read(run_dir)
    except ValueError as e:
        warn_once(f"{e}; left out of the summary")
        return {}


def epoch_curves(run_dir: Path) -> list[dict]:
    """The epoch records of ``run_dir/metrics.jsonl``, for the plot. One without numbers for
    the curves (a string, a missing key) made the plot raise: the run's curves are left out,
    with one warning."""
    epochs = [r for r in read_metrics(run_dir) if r.get("kind") == "epoch"]
    if all(is_number(r.get(k)) for r in epochs for k in CURVES):
        return epochs
    warn_once(
        f"{run_dir / METRICS} is damaged (an epoch without numbers for {', '.join(CURVES)}); "
        f"its curves are left out of {COMPARISON_PNG}"
    )
    return []


def epochs_with_numbers(path: Path, records: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """The epoch ``records`` (of the log at ``path``) that hold a number for each of ``keys``.
    One without (edited by hand, damaged) made a sum over them raise or come out wrong: it is
    left out, with one warning naming the log."""
    kept = [r for r in records if all(is_number(r.get(k)) for k in keys)]
    if len(kept) < len(records):
        warn_once(
            f"{path} is damaged (an epoch without numbers for {', '.join(keys)}); "
            f"that epoch is left out of {RESULTS}"
        )
    return kept


def summary_rows(out: Path, statuses: list[RunStatus]) -> list[dict]:
    """One row per run, ``ranked``; a run whose results.json is damaged is listed without
    its numbers, with one warning: one bad file must not cost the others their report.
    ``current`` (``is_current``) false marks numbers of an earlier round's ``epochs``."""
    rows = []
    for st in statuses:
        results = results_for_report(out / st.name)
        rows.append(
            {
                "extractor": st.name,
                "status": st.status,
                "error": st.error,
                "current": is_current(st, results),
                "data": results.get("data"),
                "dataset": results.get("dataset"),
                "split_seed": results.get("split_seed"),
                "parameters": results.get("parameters"),
                "epochs": results.get("epochs"),
                "best_epoch": results.get("best_epoch"),
                "val_accuracy": results.get("val_accuracy"),
                "test_accuracy": results.get("test_accuracy"),
                "val_future_rmse": results.get("val_future_rmse"),
                "val_future_rmse_fraction": results.get("val_future_rmse_fraction"),
                "test_future_rmse": results.get("test_future_rmse"),
                "val_per_class_accuracy": results.get("val_per_class_accuracy"),
                "train_samples_per_second": results.get("train_samples_per_second"),
                "wall_time_seconds": results.get("wall_time_seconds") or st.wall_seconds,
                "run_dir": str(out / st.name),
            }
        )
    return ranked(rows)


def is_current(status: RunStatus, results: dict) -> bool:
    """Whether a run's ``results`` are of its finished epochs (status done), not of an
    earlier round's (failed, interrupted, unfinished, not yet run again)."""
    return status.status == "done" and bool(results)


def current_first(rows: list[dict], key: Callable[[dict], object]) -> list[dict]:
    """The rows with current numbers first, each part in the order of ``key``: a run that
    failed this round was ranked first on the numbers of an earlier round."""
    return sorted(rows, key=lambda r: (not r["current"], key(r)))


def data_of(row: dict) -> str | None:
    """What a run trained on (a summary row or its results.json): its dataset's id, with its
    ``split_seed`` unless 0 (another seed validates on other clips of the dataset), or for
    rendered samples their source."""
    if dataset := row.get("dataset"):
        split = row.get("split_seed")
        return f"{dataset} split_seed {split}" if split else dataset
    return row.get("data")


def data_kinds(rows: list[dict]) -> list[str]:
    """The data the rows' runs trained on, each once, in the rows' order."""
    return list(dict.fromkeys(d for r in rows if (d := data_of(r)) is not None))


def ranked(rows: list[dict]) -> list[dict]:
    """Runs of one data together (a run on easier data ranked above the others), each group
    in the order of its best run, and in a group ``current_first``, best first."""
    groups: dict[str | None, list[dict]] = {}
    for row in current_first(rows, rank_key):
        groups.setdefault(data_of(row), []).append(row)
    return [row for group in groups.values() for row in group]


def _fmt(value, spec: str, scale: float = 1.0, unit: str = "") -> str:
    """A table cell: ``value`` (times ``scale``) and its unit, or a bare "-" when missing
    (the unit after it made "-%")."""
    if value is None:
        return "-"
    return format(value * scale if scale != 1.0 else value, spec) + unit


def _duration(seconds: float | None) -> str:
    """Seconds under a minute (a short run showed "0.0 min"), minutes beyond."""
    if seconds is None or seconds < 60:
        return _fmt(seconds, ".1f", unit=" s")
    return _fmt(seconds, ".1f", 1 / 60, " min")


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| extractor | status | data | epochs | parameters | val acc | test acc "
        "| val future RMSE | val RMSE / extent | samples/s | wall time |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    if (kinds := len(data_kinds(rows))) > 1:
        head = (
            f"**These runs trained on {kinds} different data (the data column): compare a run "
            "only with the rows of its own data, grouped together.**\n\n" + head
        )
    lines = []
    for r in rows:
        lines.append(
            f"| {table_cell(r['extractor'])} | {table_cell(status_cell(r))} "
            f"| {table_cell(data_cell(r))} | {_fmt(r['epochs'], 'd')} "
            f"| {_fmt(r['parameters'], ',d')} "
            f"| {_fmt(r['val_accuracy'], '.1f', 100, '%')} "
            f"| {_fmt(r['test_accuracy'], '.1f', 100, '%')} "
            f"| {_fmt(r['val_future_rmse'], '.3f')} "
            f"| {_fmt(r['val_future_rmse_fraction'], '.2f', 100, '%')} "
            f"| {_fmt(r['train_samples_per_second'], '.1f')} "
            f"| {_duration(r['wall_time_seconds'])} |"
        )
    failed = [failure_line(r["extractor"], r) for r in rows if r["error"]]
    return head + "\n".join(lines) + "\n" + ("\n" + "\n".join(failed) + "\n" if failed else "")


def status_cell(row: dict) -> str:
    """The status, and for a run that did not finish this round the epochs its numbers are
    of: they were read as the round's own."""
    if row["current"] or row["epochs"] is None:
        return row["status"]
    return f"{row['status']} (numbers from epoch {row['epochs']})"


def data_cell(row: dict) -> str:
    """Where the run's samples came from, and the dataset's id: one path may hold other data
    once made again."""
    if row["data"] is None:
        return data_of(row) or "-"
    return f"{row['data']} ({data_of(row)})" if row["dataset"] else row["data"]


def failure_line(name: str, row: dict) -> str:
    """The line under the table for a run that failed; one line whatever its error holds."""
    return one_line(f"- **{name}** {row['status']}: {row['error']}")


def plot_comparison(out: Path, rows: list[dict]) -> Path:
    """Validation accuracy and loss per epoch for every run, and final accuracy bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_acc, ax_loss, ax_bar) = plt.subplots(1, 3, figsize=(16, 4.8))
    colours = plt.get_cmap("tab10")
    for i, r in enumerate(rows):
        epochs = epoch_curves(Path(r["run_dir"]))
        if not epochs:
            continue
        x = [m["epoch"] for m in epochs]
        c = colours(i % 10)
        ax_acc.plot(
            x, [100 * m["val_accuracy"] for m in epochs], "o-", color=c, label=r["extractor"]
        )
        ax_loss.plot(
            x, [m["val_loss"] for m in epochs], "o-", color=c, label=f"{r['extractor']} val"
        )
        ax_loss.plot(x, [m["train_loss"] for m in epochs], "--", color=c, alpha=0.6)
    ax_acc.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 101))
    ax_acc.axhline(95, color="grey", lw=0.8, ls=":")
    ax_loss.set(
        title="Loss (solid: val; dashed: train, incl. auxiliary terms)",
        xlabel="epoch",
        ylabel="loss",
    )
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # not only the unlabelled 95% line
            ax.legend(fontsize=9)

    accuracy_bars(ax_bar, rows)
    fig.tight_layout()
    path = out / COMPARISON_PNG
    png = BytesIO()  # no temporary file of a fixed name in out: a FIFO there blocked the save
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, png.getbuffer())
    return path


def accuracy_bars(ax, rows: list[dict]) -> None:
    """Each run's best-epoch val and test accuracy. Runs on more than one data are coloured
    by their data, named in the legend under the plot (test bars hatched): side by side, bars
    of other data read as ranked against each other, as summary.md's groups are not."""
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    width = 0.38
    pos = range(len(rows))
    val = [100 * (r["val_accuracy"] or 0) for r in rows]
    test = [100 * (r["test_accuracy"] or 0) for r in rows]
    if len(kinds := data_kinds(rows)) > 1:
        colour = {d: colormaps["tab10"](i % 10) for i, d in enumerate(kinds)}
        faces = [colour.get(data_of(r), "lightgrey") for r in rows]  # grey: no results
        ax.bar([p - width / 2 for p in pos], val, width, color=faces)
        ax.bar([p + width / 2 for p in pos], test, width, color=faces, hatch="//", ec="white")
        named = {data_of(r): data_cell(r) for r in reversed(rows)}  # each data's first row's
        handles = [Patch(color=colour[d], label=named[d]) for d in kinds]
        handles += [
            Patch(fc="grey", label="val"),
            Patch(fc="grey", ec="white", hatch="//", label="test"),
        ]
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    else:
        ax.bar([p - width / 2 for p in pos], val, width, label="val", color="tab:blue")
        ax.bar([p + width / 2 for p in pos], test, width, label="test", color="tab:orange")
        ax.legend(fontsize=9, loc="upper right", ncol=2)
    for p, r, v, t in zip(pos, rows, val, test, strict=True):
        if r["val_accuracy"] is not None:
            ax.text(p - width / 2, v + 0.5, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
        if r["test_accuracy"] is not None:
            ax.text(p + width / 2, t + 0.5, f"{t:.0f}", ha="center", va="bottom", fontsize=8)
        frac = r["val_future_rmse_fraction"]
        note = f"RMSE {100 * frac:.1f}%" if frac is not None else ""
        if r["status"] != "done":
            note = f"{r['status']}\n{note}".strip()
        ax.text(p, max(v, t) + 6, note, ha="center", va="bottom", fontsize=8.5)
    ax.set_xticks(list(pos), [r["extractor"] for r in rows])
    ax.set(
        title="Best-epoch accuracy (RMSE as % of scene extent)",
        ylabel="accuracy (%)",
        ylim=(0, 105),
    )


def write_tables(out: Path, statuses: list[RunStatus], rows: list[dict], table: str) -> None:
    """``summary.json`` (rows and launcher statuses) and ``summary.md`` (``table``), atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / SUMMARY_JSON,
        {
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # as every file
            "runs": rows,
            "launcher": [asdict(s) for s in statuses],
        },
    )
    write_atomic(out / SUMMARY_MD, table.encode())


def write_summary(out: Path, statuses: list[RunStatus]) -> list[dict]:
    """Write all three files; returns the rows, best first."""
    rows = summary_rows(out, statuses)
    write_tables(out, statuses, rows, markdown_table(rows))
    plot_comparison(out, rows)
    return rows
