"""A run whose validation information gain is never finite has no best epoch: one line, exit 1,
and what it wrote stays (before, the finish step failed on the best.pt no epoch had written)."""

import json

import pytest

import train.saliency.loop as loop
from train.saliency.__main__ import main


def _scored(monkeypatch, gains: list[float]) -> None:
    """Validation's information gain is ``gains[i]`` at epoch i + 1 (the test set's is real)."""
    evaluate, calls = loop.evaluate, []

    def scored(model, items, *args, **kwargs):
        result = evaluate(model, items, *args, **kwargs)
        if len(calls) < len(gains):
            result["info_gain"] = gains[len(calls)]
            calls.append(result)
        return result

    monkeypatch.setattr(loop, "evaluate", scored)


@pytest.mark.parametrize("gain", [float("nan"), float("inf")])
def test_a_run_never_scored_finite_is_one_line_and_keeps_its_files(
    tiny_config, tmp_path, synth, capsys, monkeypatch, gain
):
    cfg, out = tiny_config("baseline", synth), tmp_path / "run"
    _scored(monkeypatch, [gain, gain])
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error: the validation information gain of") and "never finite" in err
    assert (out / "last.pt").is_file() and not (out / "best.pt").exists()
    assert not (out / "results.json").exists()
    kinds = [json.loads(x)["kind"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert kinds == ["epoch", "epoch"]


def test_the_best_epoch_is_the_best_finite_one(tiny_config, tmp_path, synth, monkeypatch):
    cfg, out = tiny_config("baseline", synth, epochs=3), tmp_path / "run"
    _scored(monkeypatch, [float("inf"), 0.25, float("nan")])
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (results["best_epoch"], results["val_info_gain"]) == (2, 0.25)


def test_a_loss_gone_nan_stops_the_run_in_one_line(
    tiny_config, tmp_path, synth, capsys, monkeypatch
):
    """Before, training went on for every epoch left with NaN weights and exited 0 on the best
    epoch before the NaN; the trajectory and JEPA trainers stop, and so does this one."""
    cfg = tiny_config("baseline", synth, epochs=3)
    real, calls = loop.saliency_loss, []
    nan_from = None  # the call from which the loss is NaN

    def counted(*args, **kwargs):
        calls.append(None)
        loss, parts = real(*args, **kwargs)
        return (loss * float("nan") if nan_from and len(calls) >= nan_from else loss), parts

    monkeypatch.setattr(loop, "saliency_loss", counted)
    assert main(["--config", str(cfg), "--out", str(tmp_path / "clean"), "--quiet"]) == 0
    per_epoch, nan_from = len(calls) // 3, len(calls) // 3 + 1
    capsys.readouterr()
    calls.clear()
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error: non-finite training loss (nan) at epoch 2, step 1: stopped;")
    assert f"{out / 'last.pt'} keeps epoch 1" in err
    assert len(calls) == per_epoch + 1  # not one step after the NaN
    kinds = [json.loads(x)["kind"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert kinds == ["epoch"] and not (out / "results.json").exists()
