import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from train.saliency.__main__ import main
from train.saliency.config import ConfigError, load_config
from train.saliency.synthetic import write_synthetic

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs" / "saliency"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synth") / "MIT1003", 30, seed=1)


def _tiny(tmp_path: Path, variant: str, data: Path, **train) -> Path:
    raw = yaml.safe_load((CONFIGS / f"{variant}_tiny.yaml").read_text())
    raw["data"].update(
        path=str(data),
        image_size=24,
        val_fraction=0.2,
        test_fraction=0.1,
        max_train_stimuli=16,
        max_val_stimuli=6,
    )
    raw["model"]["width"] = 8
    raw["train"].update({"epochs": 2, "batch_size": 8, "threads": 1, **train})
    p = tmp_path / f"{variant}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("variant", ["baseline", "entropy_reg"])
def test_each_variant_trains_and_writes_its_run_folder(tmp_path, synth, variant):
    out = tmp_path / "run"
    assert (
        main(["--config", str(_tiny(tmp_path, variant, synth)), "--out", str(out), "--quiet"]) == 0
    )
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt", "results.json"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert set(json.loads((out / "splits.json").read_text())) == {"train", "val", "test"}
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [(json.loads(x)["kind"], json.loads(x)["epoch"]) for x in lines][:2] == [
        ("epoch", 1),
        ("epoch", 2),
    ]
    assert json.loads(lines[-1])["kind"] == "test" and "test_info_gain" in json.loads(lines[-1])
    res = json.loads((out / "results.json").read_text())
    assert res["variant"] == f"{variant}_tiny" and res["epochs"] == 2
    for k in ("info_gain", "nss", "auc_judd", "cc", "kl", "sim"):
        assert k in res["val"] and res["val"][k] == res["val"][k]  # present, not NaN
    assert ("train_entropy" in json.loads(lines[0])) == (variant == "entropy_reg")
    assert load_config(out / "config.yaml").name == f"{variant}_tiny"


def test_resume_equals_uninterrupted(tmp_path, synth):
    cfg = _tiny(tmp_path, "entropy_reg", synth, epochs=3)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["--config", str(cfg), "--out", str(full), "--quiet"]) == 0
    assert main(["--config", str(cfg), "--out", str(part), "--epochs", "1", "--quiet"]) == 0
    assert [json.loads(x)["kind"] for x in (part / "metrics.jsonl").read_text().splitlines()] == [
        "epoch",
        "test",
    ]
    assert main(["--config", str(cfg), "--out", str(part), "--resume", "--quiet"]) == 0
    a = torch.load(full / "last.pt", weights_only=True)
    b = torch.load(part / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert (full / "metrics.jsonl").read_text() == (part / "metrics.jsonl").read_text()
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, part))
    assert ra["val"] == rb["val"] and ra["test"] == rb["test"]


def test_existing_run_without_resume_is_refused_and_kept(tmp_path, synth, capsys):
    cfg = _tiny(tmp_path, "baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    before = (out / "last.pt").read_bytes()
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 2
    assert "add --resume" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before


def test_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {path: /nowhere, image_size: 30}\n")
    with pytest.raises(ConfigError, match="multiple of 8"):
        load_config(bad)
    bad.write_text("name: x\ndata: {path: /nowhere}\nentropy: {weight: 1, sign: -1}\n")
    r = subprocess.run(
        [sys.executable, "-m", "train.saliency", "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "entropy.sign" in r.stderr


def test_missing_data_folder_is_one_line(tmp_path, capsys):
    cfg = _tiny(tmp_path, "baseline", tmp_path / "no_data")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err


@pytest.mark.parametrize("name", ["baseline", "entropy_reg", "baseline_tiny", "entropy_reg_tiny"])
def test_shipped_configs_validate(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name
    assert (cfg.entropy.weight > 0) == name.startswith("entropy_reg")


def test_resume_starts_from_last_pt_not_from_scratch(tmp_path, synth):
    cfg = _tiny(tmp_path, "baseline", synth, epochs=2)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["--config", str(cfg), "--out", str(full), "--quiet"]) == 0
    assert main(["--config", str(cfg), "--out", str(part), "--epochs", "1", "--quiet"]) == 0
    state = torch.load(part / "last.pt", weights_only=True)
    state["model"]["centre_bias"] += 1.0  # a run that restarted would not see this
    torch.save(state, part / "last.pt")
    assert main(["--config", str(cfg), "--out", str(part), "--resume", "--quiet"]) == 0
    a = torch.load(full / "last.pt", weights_only=True)["model"]["centre_bias"]
    b = torch.load(part / "last.pt", weights_only=True)["model"]["centre_bias"]
    assert (b - a).mean() > 0.5


def test_resume_with_a_changed_config_is_refused(tmp_path, synth, capsys):
    cfg = _tiny(tmp_path, "baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    changed = yaml.safe_load(cfg.read_text())
    changed["train"]["lr"] = 0.5
    cfg.write_text(yaml.safe_dump(changed))
    assert (
        main(["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 2
    )
    assert "differs from this config" in capsys.readouterr().err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # epoch 1 and its test line


def test_damaged_last_pt_is_one_line_exit_2(tmp_path, synth, capsys):
    cfg = _tiny(tmp_path, "baseline", synth, epochs=1)
    out = tmp_path / "run"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    (out / "last.pt").write_bytes(b"not a checkpoint")
    assert (
        main(["--config", str(cfg), "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last.pt is damaged" in err
