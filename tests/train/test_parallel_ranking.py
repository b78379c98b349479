"""train.parallel's comparison report: a run that did not finish this round is not ranked on
an earlier round's numbers, and runs on different data are not ranked against each other, in
the table or the plot."""

import json
from pathlib import Path

import pytest
from matplotlib.colors import to_rgba

from train.summary import RunStatus, write_summary
from train.trajectory.parallel import choose_top

RESULTS = {
    "parameters": 1000,
    "epochs": 4,
    "best_epoch": 2,
    "val_accuracy": 0.25,
    "test_accuracy": 0.25,
    "val_future_rmse": 1.0,
    "val_future_rmse_fraction": 0.1,
    "test_future_rmse": 1.1,
    "train_samples_per_second": 10.0,
    "wall_time_seconds": 60.0,
    "data": "/data/easy",
    "dataset": "0123456789ab",
}


def run_with_results(out: Path, name: str, **changes) -> None:
    (out / name).mkdir(parents=True)
    (out / name / "results.json").write_text(json.dumps({**RESULTS, **changes}))


def table_rows(out: Path) -> list[str]:
    return [x for x in (out / "summary.md").read_text().splitlines() if x.startswith("| ")][1:]


def json_rows(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["runs"]


@pytest.mark.parametrize("status", ["failed", "interrupted", "unfinished", "queued", "running"])
def test_a_run_not_finished_this_round_ranks_after_those_that_did(tmp_path, status):
    """magvit failed resuming to 4 epochs: its 3-epoch results.json (37.5%) ranked it first,
    above the i3d that finished the 4 epochs (25%), as if those were this round's numbers."""
    run_with_results(tmp_path, "magvit", epochs=3, val_accuracy=0.375)
    run_with_results(tmp_path, "i3d")
    statuses = [
        RunStatus("magvit", status, error="exit status 1: damaged"),
        RunStatus("i3d", "done"),
    ]
    write_summary(tmp_path, statuses)
    first, second = table_rows(tmp_path)
    assert first.startswith("| i3d | done | /data/easy (0123456789ab) | 4 | 1,000 | 25.0% |"), first
    assert second.startswith(f"| magvit | {status} (numbers from epoch 3) | "), second
    rows = json_rows(tmp_path)
    assert [(r["extractor"], r["current"], r["epochs"]) for r in rows] == [
        ("i3d", True, 4),
        ("magvit", False, 3),
    ]


def test_runs_on_other_data_are_grouped_apart_under_a_note(tmp_path):
    """A 7-class hard run shared one ranked table with easy runs, with nothing said."""
    run_with_results(tmp_path, "i3d", epochs=2, val_accuracy=0.5)
    run_with_results(tmp_path, "magvit", epochs=2, val_accuracy=0.75)
    hard = {"data": "/data/hard", "dataset": "ba9876543210", "epochs": 1}
    run_with_results(tmp_path, "transformer", val_accuracy=0.625, **hard)
    run_with_results(tmp_path, "slowfast", data="rendered:default seed 0", dataset=None)
    names = ("i3d", "magvit", "transformer", "slowfast")
    write_summary(tmp_path, [RunStatus(n, "done") for n in names])
    table = (tmp_path / "summary.md").read_text()
    assert table.startswith("**These runs trained on 3 different data (the data column)"), table
    rows = table_rows(tmp_path)
    assert [r.split(" | ")[0] for r in rows] == ["| magvit", "| i3d", "| transformer", "| slowfast"]
    assert "| transformer | done | /data/hard (ba9876543210) | 1 |" in rows[2], rows[2]
    assert "| slowfast | done | rendered:default seed 0 | 4 |" in rows[3], rows[3]
    assert {(r["extractor"], r["data"], r["dataset"]) for r in json_rows(tmp_path)} == {
        ("i3d", "/data/easy", "0123456789ab"),
        ("magvit", "/data/easy", "0123456789ab"),
        ("transformer", "/data/hard", "ba9876543210"),
        ("slowfast", "rendered:default seed 0", None),
    }


def test_runs_of_one_dataset_need_no_note(tmp_path):
    run_with_results(tmp_path, "i3d")
    run_with_results(tmp_path, "magvit", data="/moved/easy")  # the same data, moved
    write_summary(tmp_path, [RunStatus("i3d", "done"), RunStatus("magvit", "done")])
    assert (tmp_path / "summary.md").read_text().startswith("| extractor | status | data |")


def test_top_k_refuses_runs_of_different_data(tmp_path):
    """--top ranked every run in --out together: a run on easier data was continued as best."""
    run_with_results(tmp_path, "i3d", val_accuracy=0.5)
    run_with_results(
        tmp_path, "magvit", val_accuracy=0.9, data="/data/other", dataset="ba9876543210"
    )
    with pytest.raises(ValueError, match="trained on 2 different data"):
        choose_top(tmp_path, 1, ["i3d", "magvit"])
    assert choose_top(tmp_path, 1, ["i3d"]) == ["i3d"]
    run_with_results(tmp_path, "slowfast", val_accuracy=0.7)
    assert choose_top(tmp_path, 1, ["i3d", "slowfast"]) == ["slowfast"]


def test_runs_on_other_splits_of_one_dataset_are_other_data(tmp_path):
    """Named by the dataset's id alone, a run validated on other clips of it (another
    split_seed) was ranked in one group with the others, and --top took them as comparable."""
    run_with_results(tmp_path, "i3d", split_seed=0)
    run_with_results(tmp_path, "magvit", split_seed=3, val_accuracy=0.9)
    write_summary(tmp_path, [RunStatus("i3d", "done"), RunStatus("magvit", "done")])
    table = (tmp_path / "summary.md").read_text()
    assert table.startswith("**These runs trained on 2 different data (the data column)"), table
    assert "| magvit | done | /data/easy (0123456789ab split_seed 3) |" in table, table
    with pytest.raises(ValueError, match="trained on 2 different data"):
        choose_top(tmp_path, 1, ["i3d", "magvit"])
    run_with_results(tmp_path, "slowfast", val_accuracy=0.7)  # from before split_seed was kept
    assert choose_top(tmp_path, 1, ["i3d", "slowfast"]) == ["slowfast"]


def run_rendered(out: Path, name: str, settings: dict, **changes) -> None:
    """A run whose results.json names its data as a run rendered with ``settings`` does."""
    from train.trajectory.config import TrainConfig

    data = TrainConfig(extractor=name, out=str(out / name), render="default", **settings).source
    run_with_results(out, name, data=data, dataset=None, **changes)


@pytest.mark.parametrize("other", [{"eval_samples": 100}, {"epoch_samples": 800}])
def test_rendered_runs_of_other_sizes_are_other_data(tmp_path, other):
    """Named by render config and seed alone, a run scored on other validation clips
    (--eval-samples) or trained on another stream (--epoch-samples) was ranked in one group
    with the others, and --top took them as comparable."""
    run_rendered(tmp_path, "i3d", {"epochs": 4})
    run_rendered(tmp_path, "magvit", {"epochs": 4, **other}, val_accuracy=0.9)
    write_summary(tmp_path, [RunStatus("i3d", "done"), RunStatus("magvit", "done")])
    table = (tmp_path / "summary.md").read_text()
    assert table.startswith("**These runs trained on 2 different data (the data column)"), table
    with pytest.raises(ValueError, match="trained on 2 different data"):
        choose_top(tmp_path, 1, ["i3d", "magvit"])
    # More epochs of the same stream (a --top round's) are the same data.
    run_rendered(tmp_path, "slowfast", {"epochs": 8}, epochs=8, val_accuracy=0.7)
    assert choose_top(tmp_path, 1, ["i3d", "slowfast"]) == ["slowfast"]


@pytest.fixture
def drawn_figures(monkeypatch) -> list:
    """The figures the report draws, kept as it closes them, to read their artists back."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn, close = [], plt.close

    def keep(fig=None):
        drawn.append(fig)
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    return drawn


def accuracy_bars(figure) -> tuple[list[str], list[str], list[tuple], list[tuple]]:
    """The bar plot's runs, legend texts, and each run's val and test bar colours."""
    ax = figure.axes[2]
    runs = [t.get_text() for t in ax.get_xticklabels()]
    colours = [tuple(bar.get_facecolor()) for bar in ax.patches]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    return runs, legend, colours[: len(runs)], colours[len(runs) :]


def test_the_bars_of_runs_on_other_data_say_which_data(tmp_path, drawn_figures):
    """comparison.png set runs of other data side by side in the same colours, as if ranked
    against each other, where summary.md groups them apart."""
    run_with_results(tmp_path, "i3d")
    run_with_results(tmp_path, "magvit", data="/data/hard", dataset="ba9876543210")
    run_with_results(tmp_path, "slowfast", data="/moved/easy")  # the same data, moved
    write_summary(tmp_path, [RunStatus(n, "done") for n in ("i3d", "magvit", "slowfast")])
    runs, legend, val, test = accuracy_bars(drawn_figures[-1])
    assert runs == ["i3d", "slowfast", "magvit"]
    assert legend == ["/data/easy (0123456789ab)", "/data/hard (ba9876543210)", "val", "test"]
    assert val == test and val[0] == val[1] != val[2], val
    handles = drawn_figures[-1].axes[2].get_legend().legend_handles
    assert [tuple(h.get_facecolor()) for h in handles[:2]] == [val[0], val[2]]


def test_the_bars_of_runs_on_one_data_are_val_and_test(tmp_path, drawn_figures):
    run_with_results(tmp_path, "i3d")
    run_with_results(tmp_path, "magvit", val_accuracy=0.5)
    write_summary(tmp_path, [RunStatus("i3d", "done"), RunStatus("magvit", "done")])
    runs, legend, val, test = accuracy_bars(drawn_figures[-1])
    assert (runs, legend) == (["magvit", "i3d"], ["val", "test"])
    assert set(val) == {to_rgba("tab:blue")} and set(test) == {to_rgba("tab:orange")}
