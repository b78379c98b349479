"""python -m train.parallel --render: every run trains on samples rendered on the fly, and a
resume of rendered runs continues them with no --data."""

import json

import pytest

from train.checkpoint import load_checkpoint
from train.launcher import LocalLauncher
from train.trajectory.cli import build_parser as trainer_parser
from train.trajectory.parallel import main

PROG = "python -m train.parallel"
SIZES = ["--epoch-samples", "8", "--eval-samples", "4"]


def stand_in(monkeypatch) -> dict[str, list[str]]:
    """The runs' ``python -m train`` flags of the next launch, which starts none."""
    jobs = {}

    def run_to_end(self, prog, hint, before_start):
        before_start()
        jobs.update(self.jobs)
        return 0

    monkeypatch.setattr(LocalLauncher, "run_to_end", run_to_end)
    return jobs


def run_flags(job: list[str]):
    return trainer_parser().parse_args(job)


def test_render_and_its_settings_reach_every_run(small_config, tmp_path, monkeypatch, capsys):
    """--render was an unrecognised argument; a stop's hint and launch.json now keep it."""
    out = tmp_path / "runs"
    given = ["--render", str(small_config), "--render-seed", "3", *SIZES]
    argv = ["--extractors", "i3d", "magvit", "--epochs", "1", *given, "--out", str(out)]

    def stopped_at_once(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalLauncher, "run", stopped_at_once)
    assert main(argv) == 130
    hint = capsys.readouterr().err.splitlines()[-1]
    assert f"--render={small_config} --render-seed=3 --epoch-samples=8" in hint, hint
    launched = stand_in(monkeypatch)
    assert main(["--resume", "--epochs", "1", "--out", str(out)]) == 0  # from launch.json
    assert set(launched) == {"i3d", "magvit"}
    for job in launched.values():
        flags = run_flags(job)
        assert (flags.render, flags.data) == (str(small_config), None), job
        assert (flags.render_seed, flags.epoch_samples, flags.eval_samples) == (3, 8, 4), job


def test_a_config_that_renders_needs_no_data(small_config, tmp_path, monkeypatch):
    """It said "--data is needed"; with --data, "give exactly one of data and render"."""
    launched = stand_in(monkeypatch)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"render: {small_config}\nepoch_samples: 8\neval_samples: 4\n")
    argv = ["--extractors", "i3d", "--epochs", "1", "--config", str(recipe)]
    assert main([*argv, "--out", str(tmp_path / "runs")]) == 0
    flags = run_flags(launched["i3d"])
    assert flags.data is None and flags.config == recipe


def test_data_and_render_together_are_one_line(small_config, dataset, tmp_path, capsys):
    argv = ["--extractors", "i3d", "--epochs", "1", "--data", str(dataset), "--render"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, str(small_config), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert err[0].startswith(f"{PROG}: error: argument --render: not allowed with argument --data")


@pytest.mark.slow  # two short rounds of a real run: about 30 s, more on a busy machine
def test_rendered_runs_resume_without_data_and_refuse_it_in_one_line(
    small_config, dataset, tmp_path, capsys
):
    """--resume said "--data is needed for i3d", and with --data "drop --data"."""
    out = tmp_path / "runs"
    fast = ["--workers", "0", "--batch-size", "4", "--out", str(out)]
    argv = ["--extractors", "i3d", "--render", str(small_config), *SIZES, "--epochs", "1"]
    assert main([*argv, *fast]) == 0
    results = json.loads((out / "i3d" / "results.json").read_text())
    assert results["data"].startswith(
        f"rendered:{small_config} seed 0, 4 val + 4 test, 8 train per epoch, stream "
    )
    assert results["dataset"] is None
    capsys.readouterr()
    resume = ["--resume", "--epochs", "2", *fast]
    assert main([*resume, "--data", str(dataset)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "drop --data" in err[0], err
    assert main(resume) == 0
    assert load_checkpoint(out / "i3d" / "last.pt")["epoch"] == 2
    run = json.loads((out / "summary.json").read_text())["runs"][0]
    assert (run["status"], run["current"], run["epochs"]) == ("done", True, 2)
