import json

import pytest
import torch
import yaml

from train.jepa.config import ConfigError, parse_config
from train.jepa.train import main, train


def _params(run_dir):
    return torch.load(run_dir / "last.pt", weights_only=True)


def test_resume_equals_uninterrupted(tmp_path, jepa_files):
    full = parse_config(jepa_files.tiny_config(tmp_path / "a"))
    train(full, quiet=True)
    first = parse_config(jepa_files.tiny_config(tmp_path / "b", optim={"epochs": 2}))
    # interrupted run: the same config, stopped after epoch 1 (simulated by training 1 epoch
    # with the 2-epoch schedule: we write last.pt after epoch 1 and stop)
    import train.jepa.train as trainer

    class Stop(Exception):
        pass

    real_save = trainer.save_checkpoint

    def save_then_stop(path, state):
        real_save(path, state)
        raise Stop

    trainer.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            train(first, quiet=True)
    finally:
        trainer.save_checkpoint = real_save
    assert _params(tmp_path / "b" / "run")["epoch"] == 1
    train(first, resume=True, quiet=True)
    a, b = _params(tmp_path / "a" / "run"), _params(tmp_path / "b" / "run")
    assert a["epoch"] == b["epoch"] == 2
    for part in ("student", "target_encoder"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    lines_a = [
        json.loads(x) for x in (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    lines_b = [
        json.loads(x) for x in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "images_per_second"} for r in rs]  # noqa: E731
    assert strip(lines_a) == strip(lines_b)


@pytest.mark.slow  # about 25 s: three short runs, two with worker processes
def test_a_resume_with_another_worker_count_equals_an_uninterrupted_run(
    tmp_path, jepa_files, monkeypatch
):
    """Workers drew crops and masks from streams seeded per worker, the main process from its
    own: 0 and 2 workers trained different runs, and a --resume that changed
    data.num_workers (allowed) gave other weights than the run it continued."""
    import train.jepa.train as trainer

    def cfg(name: str, workers: int):  # noqa: ANN202
        raw = jepa_files.tiny_config(tmp_path / name, data={"num_workers": workers})
        return parse_config(raw)

    train(cfg("a", 0), quiet=True)
    real_save = trainer.save_checkpoint

    def save_then_stop(path, state):  # noqa: ANN001, ANN202
        real_save(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(cfg("b", 2), quiet=True)
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    assert _params(tmp_path / "b" / "run")["epoch"] == 1
    train(cfg("b", 1), resume=True, quiet=True)
    a, b = _params(tmp_path / "a" / "run"), _params(tmp_path / "b" / "run")
    assert a["epoch"] == b["epoch"] == 2
    for part in ("student", "target_encoder"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs"


def test_run_folder_metrics_and_counts(tmp_path, jepa_files):
    raw = jepa_files.tiny_config(tmp_path, optim={"epochs": 1})
    raw["data"]["datasets"] = [
        {"kind": "synthetic", "synthetic_size": 40, "weight": 3.0},
        {"kind": "synthetic", "synthetic_size": 400, "weight": 1.0},
    ]
    raw["data"]["sampling"] = "weighted"
    raw["data"]["samples_per_epoch"] = 160
    train(parse_config(raw), quiet=True)
    run = tmp_path / "run"
    assert {"config.yaml", "last.pt", "metrics.jsonl", "results.json"} <= {
        p.name for p in run.iterdir()
    }
    assert any((run / "tensorboard").iterdir())
    epoch = [
        json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "level_loss" in x
    ][-1]
    counts = epoch["dataset_counts"]
    assert set(counts) == {"synthetic", "synthetic_2"} and sum(counts.values()) == 160
    assert counts["synthetic"] > counts["synthetic_2"]  # weight 3 vs 1, whatever the sizes
    assert set(epoch["level_loss"]) == {"0", "1"} and epoch["level_cells_per_batch"]["1"] > 0
    assert {"rankme", "feature_std_ratio", "collapse_warning"} <= set(epoch)
    assert yaml.safe_load((run / "config.yaml").read_text())["name"] == "test"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # a record says what it is, as in the other trainers' logs (a reader guessed by "step")
    assert [r["kind"] for r in records] == ["step"] * (len(records) - 1) + ["epoch"]


def test_config_errors_are_one_line(tmp_path, jepa_files, capsys):
    raw = jepa_files.tiny_config(tmp_path)
    raw["data"]["image_size"] = 15
    with pytest.raises(ConfigError, match="not a multiple of model.patch_size"):
        parse_config(raw)
    raw = jepa_files.tiny_config(tmp_path)
    raw["model"]["levels"] = [{"weight": 1.0}] * 5
    with pytest.raises(ConfigError, match="levels"):
        parse_config(raw)
    path = tmp_path / "c.yaml"
    raw = jepa_files.tiny_config(tmp_path)
    raw["optim"]["bogus"] = 1
    path.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid config: optim.bogus") and "\n" not in err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_missing_dataset_is_bad_input(tmp_path, jepa_files, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path)))
    assert main(["--config", str(path), "--dataset", "cifar10", "--data-path", str(tmp_path)]) == 2
    assert "train.jepa.download cifar10" in capsys.readouterr().err


def test_quiet_prints_no_epoch_lines(tmp_path, jepa_files, capsys):
    """quiet=True (the benchmark's, and --quiet) still printed a line per epoch of every run, as
    the other trainers' --quiet does not."""
    train(parse_config(jepa_files.tiny_config(tmp_path, optim={"epochs": 1})), quiet=True)
    assert "epoch 1/1" not in capsys.readouterr().err
    train(parse_config(jepa_files.tiny_config(tmp_path)), resume=True)
    assert "epoch 2/2 loss " in capsys.readouterr().err


def test_a_resume_by_another_process_count_is_refused_and_changes_nothing(tmp_path, jepa_files):
    """The batch is per process: a run of 2 processes resumed alone halved its batch and
    took twice the steps an epoch, without a word."""
    one = parse_config(jepa_files.tiny_config(tmp_path, optim={"epochs": 1}))
    train(one, quiet=True)
    assert _params(tmp_path / "run")["world_size"] == 1
    state = _params(tmp_path / "run")
    torch.save({**state, "world_size": 2}, tmp_path / "run" / "last.pt")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    two = parse_config(jepa_files.tiny_config(tmp_path, optim={"epochs": 2}))
    with pytest.raises(ConfigError, match=r"trained by 2 process\(es\) and this job has 1"):
        train(two, resume=True, quiet=True)
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before


def test_an_explicit_data_path_wins_over_the_config_s_root_and_the_run_records_it(
    tmp_path, jepa_files, monkeypatch, capsys
):
    """The config's root was read whatever --data-path said (evaluate's --data-path wins): after
    moving the data the run failed naming the old place, or read a copy left there. The run
    records where it read, so evaluate and --resume find the data there; a resume from
    data moved again to another disk goes on."""
    from train.jepa.evaluate import main as evaluate

    disk = tmp_path / "disk1"
    jepa_files.patch_md5s(
        monkeypatch, "cifar10", jepa_files.write_cifar(disk / "cifar10", "cifar10")
    )
    gone = tmp_path / "old" / "c10"  # where the config says the data is: moved from there
    path = tmp_path / "c.yaml"
    data = {"datasets": [{"kind": "cifar10", "root": str(gone)}]}
    raw = jepa_files.tiny_config(tmp_path, data=data, optim={"epochs": 1})
    path.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(path), "--quiet"]) == 2
    assert f"cifar10 not usable at {gone} (" in capsys.readouterr().err
    assert main(["--config", str(path), "--quiet", "--data-path", str(disk)]) == 0
    run = tmp_path / "run"
    recorded = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert recorded["data_path"] == str(disk) and recorded["datasets"][0]["root"] is None
    assert _params(run)["config"]["data"] == recorded
    argv = ["--checkpoint", str(run / "last.pt"), "--dataset", "cifar10", "--probe-iters", "5"]
    assert evaluate([*argv, "--k", "3"]) == 0  # no --data-path: where the run read
    assert json.loads((run / "eval_cifar10.json").read_text())["train_samples"] == 20
    (tmp_path / "disk2").mkdir()
    (disk / "cifar10").rename(tmp_path / "disk2" / "cifar10")
    argv = ["--config", str(path), "--quiet", "--resume", "--epochs", "2"]
    assert main([*argv, "--data-path", str(tmp_path / "disk2")]) == 0
    assert _params(run)["epoch"] == 2
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["dataset_counts"] for r in records if r["kind"] == "epoch"] == [{"cifar10": 16}] * 2
