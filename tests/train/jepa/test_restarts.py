"""A run started again after an attempt that wrote no checkpoint: its log holds one run's
records, and a stopped ``--force`` start says which run ``--resume`` would continue."""

import errno
import json

import pytest
import yaml

from train.jepa import train as trainer


def _config(tmp_path, jepa_files) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path, optim={"epochs": 1})))
    return str(path)


@pytest.mark.parametrize("again", [[], ["--resume"]])
def test_a_run_with_no_checkpoint_starts_with_an_empty_log(
    tmp_path, jepa_files, monkeypatch, again
):
    """Before, the attempt's step records stayed and the new run's followed them."""
    config = _config(tmp_path, jepa_files)
    log = tmp_path / "run" / "metrics.jsonl"

    def stopped_before_last_pt(self, record):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(trainer.Pretraining, "end_epoch", stopped_before_last_pt)
        assert trainer.main(["--config", config, "--quiet"]) == 130
    assert log.read_text() and not (tmp_path / "run" / "last.pt").exists()
    assert trainer.main(["--config", config, "--quiet", *again]) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r["step"] for r in records if "step" in r]
    assert steps == list(range(1, len(steps) + 1)) and steps
    assert [r["epoch"] for r in records if "step" not in r] == [1]


@pytest.mark.parametrize(
    "failure, code",
    [(KeyboardInterrupt(), 130), (OSError(errno.ENOSPC, "No space left on device"), 1)],
)
def test_a_force_start_ended_before_its_first_checkpoint_says_the_old_run_is_back(
    tmp_path, jepa_files, capsys, monkeypatch, failure, code
):
    """Before, the line advised --resume, which continues the old run, as if it were the new."""
    config = _config(tmp_path, jepa_files)
    assert trainer.main(["--config", config, "--quiet"]) == 0
    old = (tmp_path / "run" / "last.pt").read_bytes()

    def fails(self, epoch):
        raise failure

    monkeypatch.setattr(trainer.Pretraining, "train_epoch", fails)
    capsys.readouterr()
    assert trainer.main(["--config", config, "--quiet", "--force", "--epochs", "2"]) == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert "old run is back" in err and "--resume continues the old run" in err, err
    assert "--force starts over" in err, err
    assert (tmp_path / "run" / "last.pt").read_bytes() == old


def test_a_force_start_stopped_after_its_first_checkpoint_continues_with_resume(
    tmp_path, jepa_files, capsys, monkeypatch
):
    config = _config(tmp_path, jepa_files)
    assert trainer.main(["--config", config, "--quiet"]) == 0
    train_epoch = trainer.Pretraining.train_epoch

    def second_epoch_stopped(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return train_epoch(self, epoch)

    monkeypatch.setattr(trainer.Pretraining, "train_epoch", second_epoch_stopped)
    capsys.readouterr()
    assert trainer.main(["--config", config, "--quiet", "--force", "--epochs", "2"]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds the last finished epoch, continue with --resume" in line, line


def _tensorboard_steps(run, tag: str) -> list[int]:
    """The steps of ``tag`` TensorBoard shows for ``run`` (its loader hides what a session
    start at a step purges)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


@pytest.mark.parametrize("checkpoint", [False, True])
def test_tensorboard_shows_each_step_once_after_a_stopped_attempt(
    tmp_path, jepa_files, monkeypatch, checkpoint
):
    """The steps an attempt logged past its checkpoint (or, with none, all of them) stayed
    in TensorBoard beside the ones the next run logged again."""
    config = _config(tmp_path, jepa_files)
    run = tmp_path / "run"
    if checkpoint:
        assert trainer.main(["--config", config, "--quiet"]) == 0
    more = ["--resume", "--epochs", "2"] if checkpoint else []

    def stopped_before_last_pt(self, record):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(trainer.Pretraining, "end_epoch", stopped_before_last_pt)
        assert trainer.main(["--config", config, "--quiet", *more]) == 130
    assert trainer.main(["--config", config, "--quiet", *more]) == 0
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "step" in r]
    assert _tensorboard_steps(run, "loss") == steps and len(set(steps)) == len(steps), steps
    epochs = [r["epoch"] for r in log if "step" not in r]
    per_epoch = steps[-1] // epochs[-1]
    assert _tensorboard_steps(run, "epoch/rankme") == [e * per_epoch for e in epochs]


def test_a_log_from_before_records_said_their_kind_gets_it_on_resume(tmp_path, jepa_files):
    """A run made before then and resumed after held records with and without ``kind``: a
    reader of ``kind`` missed its older epochs."""
    config = _config(tmp_path, jepa_files)
    assert trainer.main(["--config", config, "--quiet"]) == 0
    log = tmp_path / "run" / "metrics.jsonl"
    old = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "kind"}) + "\n" for r in old)
    )
    assert trainer.main(["--config", config, "--quiet", "--resume", "--epochs", "2"]) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["kind"] for r in records if "step" not in r] == ["epoch", "epoch"]
    assert all(r["kind"] == "step" for r in records if "step" in r)
