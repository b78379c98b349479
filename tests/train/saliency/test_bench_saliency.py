"""``benchmarks/bench_saliency.py`` end to end on a few stimuli, and when a run's results
lack the best epoch's validation numbers (``results.json`` then holds ``"val": null``)."""

import importlib
import shutil

BENCH = "benchmarks.bench_saliency"  # by name: the repository root is on the path


def test_the_bench_prints_both_variants_and_the_centre_bias(tmp_path, capsys):
    bench = importlib.import_module(BENCH)
    assert bench.main(["--stimuli", "40", "--epochs", "1", "--keep", str(tmp_path)]) in (0, 1)
    out = capsys.readouterr().out
    for row in ("baseline_tiny      val", "entropy_reg_tiny   test", "centre bias        test"):
        assert row in out, out
    assert "the centre bias over uniform: val " in out and ", test " in out, out


def test_a_run_without_validation_numbers_is_said_and_fails_the_verdict(
    tmp_path, capsys, monkeypatch
):
    """It was a TypeError traceback (None is not subscriptable)."""
    bench = importlib.import_module(BENCH)
    real_run = bench.run

    def run_whose_log_lost_the_best_epoch(*args, **kwargs):
        return {**real_run(*args, **kwargs), "val": None}

    monkeypatch.setattr(bench, "run", run_whose_log_lost_the_best_epoch)
    assert bench.main(["--stimuli", "40", "--epochs", "1", "--keep", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "baseline_tiny      val   no numbers: see the warning above" in out, out
    assert "the centre bias over uniform: test " in out and "FAIL" in out, out


def _contents(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_kept_folder_is_never_rewritten_with_another_set(tmp_path, capsys):
    """A second bench into the same --keep rewrote half the kept data with its own seed before
    its run was refused, and without the old runs trained on a mix of two seeds' stimuli."""
    bench = importlib.import_module(BENCH)
    keep = tmp_path / "k"
    assert bench.main(["--stimuli", "40", "--epochs", "1", "--keep", str(keep)]) in (0, 1)
    data = keep / "synthetic_MIT1003"
    before = _contents(data)
    capsys.readouterr()
    again = ["--stimuli", "20", "--seed", "7", "--epochs", "1", "--keep", str(keep)]
    assert bench.main(again) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"bench_saliency.py: error: {keep / 'runs'} already holds runs of baseline_tiny, "
        "entropy_reg_tiny; give another --keep"
    )
    assert _contents(data) == before
    shutil.rmtree(keep / "runs")
    assert bench.main(again) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bench_saliency.py: error: {data} exists and is not empty"), err
    assert err.endswith("(--keep)") and "\n" not in err, err
    assert _contents(data) == before and not (keep / "runs").exists()
