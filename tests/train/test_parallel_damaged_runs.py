"""python -m train.parallel with damaged run files: an earlier run's results.json or
metrics.jsonl, a run's config.yaml or the launch record on --resume, results.json on --top;
and a report that raises while runs still train."""

import json
import os
from pathlib import Path

import pytest

from train.launcher import LocalLauncher
from train.summary import RunStatus, write_summary
from train.trajectory.parallel import main
from trajkit.files import temporary_beside

GOOD_RESULTS = {
    "parameters": 1000,
    "epochs": 1,
    "best_epoch": 1,
    "val_accuracy": 0.5,
    "test_accuracy": 0.25,
    "val_future_rmse": 1.0,
    "val_future_rmse_fraction": 0.1,
    "test_future_rmse": 1.1,
    "train_samples_per_second": 10.0,
    "wall_time_seconds": 60.0,
}
EPOCH = {"kind": "epoch", "epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0, "train_loss": 1.2}


def finished_run(run: Path, results: dict = GOOD_RESULTS) -> Path:
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("data: /nowhere\n")
    (run / "results.json").write_text(json.dumps(results))
    (run / "metrics.jsonl").write_text(json.dumps(EPOCH) + "\n")
    return run


def replace(path: Path, content: bytes | None) -> None:
    """``content`` at ``path``, or a FIFO (None): reading it would block for ever."""
    path.unlink()
    if content is None:
        os.mkfifo(path)
    else:
        path.write_bytes(content)


def err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


DAMAGED_RESULTS = {
    "a list": b"[1]",
    "a string": b'"done"',
    "not JSON": b"{",
    "not UTF-8": b"\xff",
    "a FIFO": None,
    "a text accuracy": json.dumps({**GOOD_RESULTS, "val_accuracy": "0.5"}).encode(),
    "a fractional parameter count": json.dumps({**GOOD_RESULTS, "parameters": 1.5}).encode(),
    "a NaN accuracy": json.dumps({**GOOD_RESULTS, "val_accuracy": float("nan")}).encode(),
    "an infinite accuracy": json.dumps({**GOOD_RESULTS, "val_accuracy": float("inf")}).encode(),
    "a number past a float's range": json.dumps(
        {**GOOD_RESULTS, "test_accuracy": 10**400}
    ).encode(),
    "JSON nested too deeply": b"[" * 200_000,
    "an accuracy past 1": json.dumps({**GOOD_RESULTS, "val_accuracy": 1e300}).encode(),
    "a negative RMSE": json.dumps({**GOOD_RESULTS, "val_future_rmse": -1.0}).encode(),
    "a negative wall time": json.dumps({**GOOD_RESULTS, "wall_time_seconds": -5}).encode(),
    "a dataset that is no text": json.dumps({**GOOD_RESULTS, "dataset": [1]}).encode(),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content", DAMAGED_RESULTS.values(), ids=DAMAGED_RESULTS)
def test_a_damaged_results_json_leaves_only_that_runs_numbers_out(tmp_path, capsys, content):
    """Before, a NaN or infinite accuracy was ranked first, and a number past a float's range
    (OverflowError) or JSON nested too deeply (RecursionError) lost every run's report."""
    good, bad = finished_run(tmp_path / "good"), finished_run(tmp_path / "bad")
    replace(bad / "results.json", content)
    statuses = [RunStatus("bad", status="done"), RunStatus("good", status="done")]
    ranked = write_summary(tmp_path, statuses)
    assert [r["extractor"] for r in ranked] == ["good", "bad"]
    rows = {r["extractor"]: r for r in ranked}
    assert rows["good"]["val_accuracy"] == 0.5 and rows["bad"]["val_accuracy"] is None
    assert rows["bad"]["status"] == "done"
    assert "| bad | done |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    err = err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(f"warning: {bad / 'results.json'} "), err
    write_summary(tmp_path, statuses)  # rewritten after the next run: not said again
    assert err_lines(capsys) == [] and good.is_dir()


def test_a_number_out_of_its_range_is_named_with_the_range(tmp_path, capsys):
    """An accuracy of 1e300 was finite, so it ranked its run first."""
    bad = finished_run(tmp_path / "bad", {**GOOD_RESULTS, "test_accuracy": 1.5})
    write_summary(tmp_path, [RunStatus("bad", status="done")])
    assert err_lines(capsys) == [
        f"warning: {bad / 'results.json'} is damaged (test_accuracy is 1.5, outside [0, 1]); "
        "left out of the summary"
    ]


def test_a_missing_number_is_a_bare_dash_in_the_table(tmp_path):
    """A run without results (failed, still queued) showed "-%" for its accuracies."""
    finished_run(tmp_path / "good")
    statuses = [RunStatus("good", status="done"), RunStatus("bad", status="failed", error="x")]
    write_summary(tmp_path, statuses)
    rows = (tmp_path / "summary.md").read_text().splitlines()[2:4]
    assert rows == [
        "| good | done | - | 1 | 1,000 | 50.0% | 25.0% | 1.000 | 10.00% | 10.0 | 1.0 min |",
        "| bad | failed | - | - | - | - | - | - | - | - | - |",
    ]


def test_a_count_that_is_a_float_is_said_to_be_no_whole_number(tmp_path, capsys):
    """It was "best_epoch is 3.0, not a number"."""
    bad = finished_run(tmp_path / "bad", {**GOOD_RESULTS, "best_epoch": 3.0})
    write_summary(tmp_path, [RunStatus("bad", status="done")])
    assert err_lines(capsys) == [
        f"warning: {bad / 'results.json'} is damaged (best_epoch is 3.0, not a whole number); "
        "left out of the summary"
    ]


def test_a_bar_or_line_break_in_a_name_or_error_splits_no_line_of_the_report(tmp_path):
    finished_run(tmp_path / "a|b")
    statuses = [RunStatus("a|b", status="done"), RunStatus("c", "failed", error="x|\ny")]
    write_summary(tmp_path, statuses)
    assert (tmp_path / "summary.md").read_text().splitlines()[2:] == [
        "| a\\|b | done | - | 1 | 1,000 | 50.0% | 25.0% | 1.000 | 10.00% | 10.0 | 1.0 min |",
        "| c | failed | - | - | - | - | - | - | - | - | - |",
        "",
        "- **c** failed: x|\\ny",
    ]


def test_the_table_says_which_split_its_rmse_is_and_short_runs_take_seconds(tmp_path):
    """The RMSE columns are validation numbers beside a test accuracy, unsaid; a 1.2 s run
    took "0.0 min"; the summary's time was local with +0000, where every other file says Z."""
    import json

    from train.summary import markdown_table

    finished_run(tmp_path / "good")
    write_summary(tmp_path, [RunStatus("good", status="done")])
    head = (tmp_path / "summary.md").read_text().splitlines()[0]
    assert "| val future RMSE | val RMSE / extent |" in head, head
    row = json.loads((tmp_path / "summary.json").read_text())["runs"][0]
    assert markdown_table([{**row, "wall_time_seconds": 1.2}]).splitlines()[2].endswith("| 1.2 s |")
    updated = json.loads((tmp_path / "summary.json").read_text())["updated"]
    assert updated.endswith("Z") and len(updated) == 20, updated


@pytest.mark.parametrize(
    "record",
    [{**EPOCH, "val_accuracy": "x"}, {"kind": "epoch", "epoch": 1}, {**EPOCH, "epoch": "1"}],
    ids=["a text accuracy", "no numbers", "a text epoch"],
)
def test_a_damaged_metrics_jsonl_leaves_only_that_runs_curves_out(tmp_path, capsys, record):
    finished_run(tmp_path / "good")
    bad = finished_run(tmp_path / "bad")
    with open(bad / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    rows = write_summary(tmp_path, [RunStatus("good", status="done"), RunStatus("bad")])
    assert [r["val_accuracy"] for r in rows] == [0.5, 0.5]  # results.json still counts
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    err = err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(f"warning: {bad / 'metrics.jsonl'} "), err


@pytest.mark.timeout(60)
def test_the_plot_opens_no_file_of_a_fixed_name_in_out(tmp_path):
    finished_run(tmp_path / "good")
    os.mkfifo(tmp_path / ".tmp-comparison.png")  # the plot was saved there, then renamed
    os.mkfifo(temporary_beside(tmp_path / "comparison.png"))  # this process's own temporary
    write_summary(tmp_path, [RunStatus("good", status="done")])
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_a_damaged_earlier_run_does_not_stop_the_round(dataset, tmp_path, capsys):
    """It stopped every run still training when the first one ended, with a traceback."""
    out = tmp_path / "runs"
    replace(finished_run(out / "old") / "results.json", b"[1]")
    with open(finished_run(out / "older") / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**EPOCH, "val_loss": "x"}) + "\n")
    args = ["--extractors", "i3d", "magvit", "--epochs", "1", "--data", str(dataset)]
    assert main([*args, "--out", str(out), "--workers", "0"]) == 0
    err = err_lines(capsys)
    assert len(err) == 2 and all(line.startswith("warning: ") for line in err), err
    assert str(out / "old" / "results.json") in err[0] + err[1]
    assert str(out / "older" / "metrics.jsonl") in err[0] + err[1]
    runs = {r["extractor"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}
    assert set(runs) == {"i3d", "magvit", "old", "older"}
    assert all(r["status"] == "done" for r in runs.values())
    assert [n for n, r in runs.items() if r["val_accuracy"] is None] == ["old"]
    assert (out / "i3d" / "results.json").exists() and (out / "magvit" / "results.json").exists()


SLEEPER = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    time.sleep(float(sys.argv[1]))
except KeyboardInterrupt:
    sys.exit(130)
pathlib.Path(sys.argv[2]).write_text("done")
"""


def sleepers(tmp_path: Path, monkeypatch, summarise) -> LocalLauncher:
    """A launcher of two runs: one that ends at once and one that takes a few seconds."""
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = tmp_path / "runs"
    jobs = {"fast": ["0", str(out / "fast" / "ended")], "slow": ["4", str(out / "slow" / "ended")]}
    return LocalLauncher(out, jobs, 0, 1, module="sleeper", summarise=summarise)


def test_a_report_that_raises_lets_the_other_runs_finish(tmp_path, monkeypatch, capsys):
    """A bug in the report (a damaged file not caught) is one line once, then exit 1 at the
    end; the runs still training are not stopped."""

    def summarise(out, statuses):
        raise AttributeError("'list' object has no attribute 'get'")

    launcher = sleepers(tmp_path, monkeypatch, summarise)
    assert launcher.run_to_end("prog", "prog: stopped") == 1
    assert (launcher.out / "slow" / "ended").exists(), "a running run was stopped"
    assert [s.status for s in launcher.statuses.values()] == ["done", "done"]
    out = launcher.out
    assert err_lines(capsys) == [
        f"cannot write the summary in {out}: AttributeError: 'list' object has no attribute 'get'"
    ]


def test_a_stop_inside_the_report_still_stops_every_run(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the report is written, even wrapped in a library's own error, stops all."""

    calls = []

    def summarise(out, statuses):
        calls.append(1)
        if len(calls) == 1:  # the fast run has ended, the slow one trains on
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as e:
                raise RuntimeError("serializer failed") from e
        return []

    launcher = sleepers(tmp_path, monkeypatch, summarise)
    assert launcher.run_to_end("prog", "prog: stopped") == 130
    assert launcher.statuses["slow"].status == "interrupted"
    assert not (launcher.out / "slow" / "ended").exists()
    assert err_lines(capsys) == ["prog: stopped"]


CONFIGS = {
    "a FIFO": None,
    "not UTF-8": b"\xff",
    "not a mapping": b"[1]\n",
    "a data that is no path": b"data: [1]\n",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content", CONFIGS.values(), ids=CONFIGS)
def test_resume_with_a_damaged_run_config_is_one_line_naming_it(tmp_path, capsys, content):
    """Without --data each run's dataset is read from its config.yaml: a FIFO hung for ever."""
    out = tmp_path / "runs"
    config = finished_run(out / "i3d") / "config.yaml"
    replace(config, content)
    assert main(["--resume", "--epochs", "2", "--out", str(out)]) == 2
    err = err_lines(capsys)
    assert len(err) == 1 and str(config) in err[0], err
    assert err[0].startswith("python -m train.parallel: error: "), err


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "content",
    [b'"done"', b"\xff", None, json.dumps({**GOOD_RESULTS, "val_accuracy": "0.5"}).encode()],
    ids=["a string", "not UTF-8", "a FIFO", "a text accuracy"],
)
def test_top_with_a_damaged_results_json_is_one_line_naming_it(tmp_path, capsys, content):
    """--top chooses which runs go on: a damaged candidate is refused, not ranked last."""
    out = tmp_path / "runs"
    finished_run(out / "magvit")
    results = finished_run(out / "i3d") / "results.json"
    replace(results, content)
    assert main(["--resume", "--top", "1", "--epochs", "3", "--out", str(out)]) == 2
    err = err_lines(capsys)
    assert len(err) == 1 and str(results) in err[0], err
    assert not (out / "magvit" / "train.log").exists(), "a run was started"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "content, said",
    [("[" * 200_000, "nested too deeply"), ("1" * 5000, "a number of more than 4,300 digits")],
    ids=["nested too deeply", "a number too long"],
)
def test_a_launch_record_python_cannot_parse_is_one_line_naming_it(tmp_path, capsys, content, said):
    """JSON nested too deeply was a RecursionError traceback of 39 lines; a number too long
    for Python was one line without the file's name."""
    out = tmp_path / "runs"
    out.mkdir()
    (out / "launch.json").write_text(content)
    assert main(["--resume", "--epochs", "1", "--out", str(out)]) == 2
    assert err_lines(capsys) == [
        f"python -m train.parallel: error: {out / 'launch.json'} is damaged ({said})"
    ]
