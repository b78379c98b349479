"""An infinite or NaN number in any trainer's config is refused when it is read, naming the
field: before, `lr: .inf` trained until the loss was NaN (python -m train) or ended in
"best.pt is missing" (train.saliency), and `--lr inf` trained on (train.jepa)."""

import math

import pytest
import yaml

from train.jepa.config import ConfigError as JepaConfigError
from train.jepa.config import load_config as jepa_yaml
from train.jepa.config import parse_config as jepa_config
from train.saliency.config import ConfigError as SaliencyConfigError
from train.saliency.config import parse_config as saliency_config
from train.trajectory.config import TrainConfigError, build_config
from trajkit.presets import preset_file

BAD = [math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("value", BAD, ids=str)
def test_trajectory(value):
    with pytest.raises(TrainConfigError, match="lr: Input should be a finite number"):
        build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 1, "lr": value})


@pytest.mark.parametrize("value", BAD, ids=str)
def test_jepa(value):
    raw = jepa_yaml(preset_file("jepa", "tiny"))
    raw["optim"]["lr"] = value
    with pytest.raises(JepaConfigError, match="optim.lr: Input should be a finite number"):
        jepa_config(raw)


@pytest.mark.parametrize("value", BAD, ids=str)
def test_saliency(value):
    raw = yaml.safe_load(preset_file("saliency", "baseline_tiny").read_text())
    raw["train"]["lr"] = value
    with pytest.raises(SaliencyConfigError, match="train.lr: Input should be a finite number"):
        saliency_config(raw)


@pytest.mark.parametrize("field", ["epochs", "batch_size", "seed", "workers"])
@pytest.mark.parametrize("value", [True, 2.0], ids=["true", "2.0"])
def test_a_trajectory_count_is_a_whole_number_not_true(field, value):
    """pydantic's int took `epochs: true` for 1 epoch and `seed: true` for seed 1, as JEPA's did."""
    raw = {"extractor": "i3d", "data": "d", "out": "o", "epochs": 1, field: value}
    with pytest.raises(TrainConfigError, match=f"{field}: {str(value).lower()} is not a whole"):
        build_config(raw)


@pytest.mark.parametrize(
    ("section", "field"), [("train", "epochs"), ("train", "seed"), ("data", "split_seed")]
)
def test_a_saliency_count_is_a_whole_number_not_true(section, field):
    raw = yaml.safe_load(preset_file("saliency", "baseline_tiny").read_text())
    raw[section][field] = True
    with pytest.raises(SaliencyConfigError, match=f"{section}.{field}: true is not a whole number"):
        saliency_config(raw)


@pytest.mark.parametrize("value", [11.0, 1e300], ids=["11", "1e300"])
def test_a_learning_rate_past_10_is_refused_in_every_trainer(value):
    """1e300 was a float32 overflow traceback in AdamW's first step (train, train.jepa), the
    run folder left behind; past 10 nothing trains."""
    said = "Input should be less than or equal to 10"
    with pytest.raises(TrainConfigError, match=f"lr: {said}"):
        build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 1, "lr": value})
    raw = jepa_yaml(preset_file("jepa", "tiny"))
    raw["optim"]["lr"] = value
    with pytest.raises(JepaConfigError, match=f"optim.lr: {said}"):
        jepa_config(raw)
    raw = yaml.safe_load(preset_file("saliency", "baseline_tiny").read_text())
    raw["train"]["lr"] = value
    with pytest.raises(SaliencyConfigError, match=f"train.lr: {said}"):
        saliency_config(raw)
