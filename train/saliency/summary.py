"""The comparison of saliency variants: ``summary.json`` and ``summary.md`` under ``--out``.

Ranked by validation information gain over the centre bias (the metric the runs select
their best epoch by); the test metrics beside it are those of each run's best epoch.
Rewritten after every finished run, like the extractor comparison of ``train.summary``, and
as there a run that did not finish this round comes after those that did, its numbers
marked with the epochs they are of.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from train.run_folder import RESULTS
from train.saliency.config import EntropyConfig
from train.summary import (
    UNBOUNDED,
    RunStatus,
    current_first,
    failure_line,
    is_current,
    number_problem,
    results_for_report,
    run_results,
    status_cell,
    table_cell,
    write_tables,
)
from trajkit.cli import short_repr

TEST_METRICS = ("info_gain", "nss", "auc", "cc", "kl", "sim")
DIRECTIONS = get_args(EntropyConfig.model_fields["direction"].annotation)
# The one bound past finiteness that no rounding can cross: AUC is a ratio of counts. The
# information gain and NSS have none (a 1e300 gain still ranks first).
BOUNDS = {"test auc": (0, 1)}


def variant_results(run_dir: Path) -> dict:
    """``run_results`` with the fields only this report reads checked too, so that a damaged
    one leaves that variant's numbers out with one warning: a text ``val_info_gain`` or test
    metric, or an ``entropy`` that is no object or has a weight but no direction, made the
    ranking or the table raise, and no variant had a summary; a NaN ranked first, and a
    direction holding ``|`` or a newline split the table's row."""
    results = run_results(run_dir)
    if problem := _damage(results):
        raise ValueError(f"{run_dir / RESULTS} is damaged ({problem})")
    return results


def _damage(results: dict) -> str | None:
    """What is wrong with ``val_info_gain``, ``test`` or ``entropy`` of ``results``, or None."""
    test, entropy = results.get("test") or {}, results.get("entropy") or {}
    for key, value in (("test", test), ("entropy", entropy)):
        if not isinstance(value, dict):
            return f"{key} is {short_repr(value)}, not an object"
    numbers = {
        "val_info_gain": results.get("val_info_gain"),
        **{f"test {k}": test.get(k) for k in TEST_METRICS},
        "entropy weight": entropy.get("weight"),
    }
    for key, value in numbers.items():
        bounds = BOUNDS.get(key, UNBOUNDED)
        if value is not None and (problem := number_problem(key, value, bounds=bounds)):
            return problem
    if entropy.get("weight") and entropy.get("direction") not in DIRECTIONS:
        direction = short_repr(entropy.get("direction"))
        return f"entropy direction is {direction}, not {' or '.join(DIRECTIONS)}"
    return None


def summary_rows(out: Path, statuses: list[RunStatus]) -> list[dict]:
    """One row per run, those with current numbers (``train.summary.is_current``) first, each
    part best validation information gain first; a run whose results.json is damaged is
    listed without its numbers, with one warning."""
    rows = []
    for st in statuses:
        results = results_for_report(out / st.name, variant_results)
        test = results.get("test") or {}
        rows.append(
            {
                "variant": st.name,
                "status": st.status,
                "error": st.error,
                "current": is_current(st, results),
                "epochs": results.get("epochs"),
                "best_epoch": results.get("best_epoch"),
                "val_info_gain": results.get("val_info_gain"),
                **{f"test_{k}": test.get(k) for k in TEST_METRICS},
                "entropy": results.get("entropy"),
                "train_samples_per_second": results.get("train_samples_per_second"),
                "wall_time_seconds": st.wall_seconds,
                "run_dir": str(out / st.name),
            }
        )
    return current_first(
        rows, lambda r: -r["val_info_gain"] if r["val_info_gain"] is not None else float("inf")
    )


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| variant | status | entropy term | best epoch | val IG (bit/fix) | test IG | test NSS "
        "| test AUC | test CC | test KL | test SIM | wall time |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )

    def num(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = []
    for r in rows:
        ent = r["entropy"] or {}
        term = f"{ent['direction']} x{ent['weight']:g}" if ent.get("weight") else "none"
        wall = r["wall_time_seconds"]
        lines.append(
            f"| {table_cell(r['variant'])} | {table_cell(status_cell(r))} | {term} "
            f"| {num(r['best_epoch'], 'd')} "
            f"| {num(r['val_info_gain'], '+.4f')} | {num(r['test_info_gain'], '+.4f')} "
            f"| {num(r['test_nss'], '.3f')} | {num(r['test_auc'], '.3f')} "
            f"| {num(r['test_cc'], '.3f')} | {num(r['test_kl'], '.3f')} "
            f"| {num(r['test_sim'], '.3f')} | {'-' if wall is None else f'{wall / 60:.1f} min'} |"
        )
    failed = [failure_line(r["variant"], r) for r in rows if r["error"]]
    return head + "\n".join(lines) + "\n" + ("\n" + "\n".join(failed) + "\n" if failed else "")


def write_summary(out: Path, statuses: list[RunStatus]) -> list[dict]:
    rows = summary_rows(out, statuses)
    write_tables(out, statuses, rows, markdown_table(rows))
    return rows
