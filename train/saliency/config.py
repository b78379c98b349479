"""The settings of a saliency run, as a user writes them in ``configs/saliency/*.yaml``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from train.launcher import reserved_name
from trajkit.cli import MAX_EPOCHS, MAX_THREADS, describe_validation_error, short_repr
from trajkit.counts import Count
from trajkit.presets import config_file
from trajkit.real import LearningRate, Real
from trajkit.seeds import Seed
from trajkit.yamlfile import read_yaml_mapping


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line naming the field."""


# A run's name is its folder under --out: one plain name, never a path ("../x", "/x", "a/b"),
# a hidden or an option-like name, or a control character. ASCII only, so that it names the
# same folder on every filesystem (macOS stores its own Unicode normalisation).
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A folder name holds 255 bytes; train.slurm's slurm/NAME.sbatch adds 7, and room is left to spare.
MAX_NAME_LENGTH = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataConfig(_Strict):
    path: Path = Field(description="dataset folder in any supported layout")
    image_size: Count = Field(
        64, ge=16, le=1024, description="side of the square grid, multiple of 8"
    )
    fit: Literal["resize", "letterbox"] = "letterbox"
    val_fraction: Real = Field(0.1, ge=0, lt=1)
    test_fraction: Real = Field(0.1, ge=0, lt=1)
    split_seed: Seed = 0
    max_train_stimuli: Count | None = Field(None, ge=2, description="cap for quick runs")
    max_val_stimuli: Count | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.image_size % 8:
            raise ValueError(f"image_size {self.image_size} is not a multiple of 8")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave stimuli for training")
        return self


class ModelConfig(_Strict):
    encoder: Literal["small_cnn", "resnet18"] = "small_cnn"
    width: Count = Field(32, ge=4, le=256, description="small_cnn channels")
    centre_bias_size: Count = Field(
        16, ge=2, le=128, description="side of the learned centre-bias map"
    )


class EntropyConfig(_Strict):
    """Entropy term on the predicted distribution (see ``train/saliency/losses.py``).

    ``weight`` 0 turns it off. ``direction: maximize`` subtracts w * H (confidence
    penalty: keeps maps from collapsing onto the few seen fixations); ``minimize`` adds
    w * H (sharpens maps that come out too flat).
    """

    weight: Real = Field(0.0, ge=0, le=10)
    direction: Literal["maximize", "minimize"] = "maximize"


class TrainConfig(_Strict):
    epochs: Count = Field(10, ge=1, le=MAX_EPOCHS)
    batch_size: Count = Field(8, ge=1)
    lr: LearningRate = 1e-3
    weight_decay: Real = Field(1e-4, ge=0)
    seed: Seed = 0
    threads: Count = Field(1, ge=1, le=MAX_THREADS, description="torch CPU threads")


class SaliencyConfig(_Strict):
    name: str = Field(description="the run's folder under --out")
    data: DataConfig
    model: ModelConfig = ModelConfig()
    entropy: EntropyConfig = EntropyConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not RUN_NAME.fullmatch(name):
            raise ValueError(
                f"{short_repr(name)} is not a plain folder name: letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"{short_repr(name)} is {len(name)} characters long; at most {MAX_NAME_LENGTH}"
            )
        if why := reserved_name(name):
            raise ValueError(why)
        return name


def parse_config(raw: dict, source: str = "config") -> SaliencyConfig:
    """Validate; every invalid field is named at once, on one line."""
    try:
        return SaliencyConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe_validation_error(err)}") from None


def load_config(path: str | Path) -> SaliencyConfig:
    """Read and validate a YAML config, given as a file or a shipped name (``baseline_tiny``);
    every failure is a one-line ConfigError."""
    path = config_file("saliency", path, ConfigError)
    return parse_config(read_yaml_mapping(path, ConfigError), str(path))


def with_overrides(
    cfg: SaliencyConfig, data: Path | None = None, epochs: int | None = None
) -> SaliencyConfig:
    """The config a run trains: the file's, with ``--data`` and ``--epochs`` on top (the
    trainer builds it so, and the launcher to check a resume before starting any run)."""
    raw = cfg.model_dump(mode="json")
    if data is not None:
        raw["data"]["path"] = str(data)
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    return parse_config(raw, "command line")


def resume_conflict(saved: Path, cfg: SaliencyConfig) -> str | None:
    """Why the run whose ``config.yaml`` is ``saved`` cannot resume as ``cfg``, or None:
    anything but ``train.epochs`` (a resume may raise it) differs."""
    if _without_epochs(read_yaml_mapping(saved, ConfigError)) == _without_epochs(
        cfg.model_dump(mode="json")
    ):
        return None
    return (
        f"{saved} differs from this config (other than train.epochs); "
        "resume with the same config or use another --out"
    )


def _without_epochs(raw: dict) -> str:
    """The config as compared on resume; ``default=str``: a hand-edited file may hold YAML
    dates, which JSON has not."""
    train = raw.get("train")
    if isinstance(train, dict):
        raw = {**raw, "train": {k: v for k, v in train.items() if k != "epochs"}}
    return json.dumps(raw, sort_keys=True, default=str)


def dump_config(cfg: SaliencyConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
