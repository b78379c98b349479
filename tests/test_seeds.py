"""Every seed, on any command line or in any config, is 0..2**32 - 1 (trajkit.seeds): one
beyond is one line, exit 2, where before the trainers and the saliency run overflowed
inside torch.manual_seed with a traceback, and the generator wrote it into metadata.json
past what a JavaScript or int64 reader holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generator.__main__ import main as generate
from train.jepa.config import ConfigError as JepaConfigError
from train.jepa.config import parse_config as jepa_config
from train.saliency.config import ConfigError as SaliencyConfigError
from train.saliency.config import parse_config as saliency_config
from train.saliency.synthetic import main as synthetic
from train.trajectory.cli import main as train
from train.trajectory.config import TrainConfigError, build_config
from train.trajectory.parallel import main as parallel
from trajkit.seeds import MAX_SEED

ROOT = Path(__file__).resolve().parents[1]
TOO_LARGE = str(MAX_SEED + 1)


@pytest.mark.parametrize(
    "command",
    [
        lambda out: generate(["--n", "4", "--out", str(out), "--seed", TOO_LARGE]),
        lambda out: train(["--extractor", "i3d", "--data", str(out), "--seed", TOO_LARGE]),
        lambda out: train(["--extractor", "i3d", "--render", "easy", "--render-seed", TOO_LARGE]),
        lambda out: parallel(["--epochs", "1", "--data", str(out), "--seed", TOO_LARGE]),
        lambda out: synthetic([str(out), "--seed", TOO_LARGE]),
    ],
    ids=["generator", "train", "train --render-seed", "train.parallel", "saliency.synthetic"],
)
def test_a_seed_past_32_bits_on_a_command_line_is_one_line_exit_2(command, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        command(tmp_path / "out")
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"must be 0..{MAX_SEED}" in err, err
    assert not (tmp_path / "out").exists()


def _trajectory(seed: int):
    return build_config({"extractor": "i3d", "data": "d", "epochs": 1, "out": "o", "seed": seed})


def _saliency(seed: int):
    raw = yaml.safe_load((ROOT / "configs" / "saliency" / "baseline_tiny.yaml").read_text())
    raw["train"]["seed"] = seed
    return saliency_config(raw)


def _jepa(seed: int):
    raw = yaml.safe_load((ROOT / "configs" / "jepa" / "cifar10.yaml").read_text())
    raw.setdefault("run", {})["seed"] = seed
    return jepa_config(raw)


@pytest.mark.parametrize(
    "load, error",
    [
        (_trajectory, TrainConfigError),
        (_saliency, SaliencyConfigError),
        (_jepa, JepaConfigError),
    ],
    ids=["trajectory", "saliency", "jepa"],
)
def test_a_config_seed_is_checked_where_it_is_read(load, error):
    load(0)
    load(MAX_SEED)  # the largest is a seed like any other
    for bad in (-1, MAX_SEED + 1, 10**23):
        with pytest.raises(error, match="seed"):
            load(bad)
