"""``benchmarks/bench_saliency.py`` end to end on a few stimuli, and when a run's results
lack the best epoch's validation numbers (``results.json`` then holds ``"val": null``)."""

import importlib

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
