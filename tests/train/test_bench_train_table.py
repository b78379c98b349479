"""benchmarks/bench_train.py's table: every column averaged alike, absent classes, zero RMSE."""

import pytest


def record(name: str, accuracy: float, rmse: float | None = 0.04, per_class=None) -> dict:
    return {
        "extractor": name,
        "accuracy": accuracy,
        "future_rmse_fraction": rmse,
        "per_class_accuracy": per_class if per_class is not None else [accuracy] * 4,
    }


def test_every_column_is_the_mean_of_the_dataset_seeds_means(bench):
    """Accuracy was averaged over the seeds' means, RMSE and per class over the runs: with
    a run lost on one seed the columns disagreed (0.767 against 0.725)."""
    runs = {0: [record("a", 0.8, 0.02), record("a", 0.9, 0.04)], 1: [record("a", 0.6, 0.09)]}
    (row,) = bench.table({"hard": runs}, ["a"])
    assert row["mean"] == pytest.approx((0.85 + 0.6) / 2)
    assert row["rmse_fraction"] == pytest.approx((0.03 + 0.09) / 2)
    assert row["per_class"] == pytest.approx([(0.85 + 0.6) / 2] * 4)
    head = bench.markdown([row]).splitlines()[0]
    assert "| mean over seeds (%) |" in head
    assert "| future RMSE / extent, mean over seeds (%) | per class, mean over seeds (%) |" in head


def test_a_class_absent_from_the_held_out_set_is_shown_as_a_dash(bench):
    """Its per-class accuracy is None: the table's mean raised a TypeError."""
    runs = {
        0: [record("a", 0.5, per_class=[1.0, None]), record("a", 0.7, per_class=[0.5, None])],
        1: [record("a", 0.6, per_class=[0.25, None])],
    }
    (row,) = bench.table({"easy": runs}, ["a"], {"easy": ["Linear", "Circular"]})
    assert row["per_class"] == [pytest.approx((0.75 + 0.25) / 2), None]
    assert "| line 50, circ - |" in bench.markdown([row])


def test_a_future_rmse_of_zero_counts(bench):
    """0.0 was dropped as false: the row had no RMSE and missed easy's RMSE target."""
    (row,) = bench.table({"easy": {0: [record("a", 0.99, rmse=0.0)]}}, ["a"])
    assert row["rmse_fraction"] == 0.0
    assert not bench.missed_targets([row], {})
    (row,) = bench.table({"easy": {0: [record("a", 0.99, rmse=None)]}}, ["a"])
    assert row["rmse_fraction"] is None


def test_a_name_holding_a_bar_or_a_line_break_stays_in_its_cell(bench):
    """Class names come from the dataset's metadata.json: a "|" or a newline split the row."""
    runs = {0: [record("a", 0.5, per_class=[1.0, 0.0])]}
    (row,) = bench.table({"easy": runs}, ["a"], {"easy": ["A|b", "C\nd"]})
    lines = bench.markdown([row]).splitlines()
    assert len(lines) == 3
    assert lines[2].replace("\\|", "").count("|") == lines[0].count("|")
    assert "a\\|b 100" in lines[2]
