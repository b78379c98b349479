"""The one parser of JEPA run configs: YAML validated by pydantic, then command-line overrides.

Defaults follow I-JEPA (Assran et al. 2023, facebookresearch/ijepa ``configs/in1k_vith14_ep300.yaml``):
mask scales, AdamW with warmup + cosine learning rate, a cosine weight-decay ramp 0.04 -> 0.4 and
an EMA momentum ramp 0.996 -> 1.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from trajkit.cli import (
    CONTROL,
    MAX_EPOCHS,
    MAX_THREADS,
    describe_validation_error,
    whole_number,
)
from trajkit.counts import Count
from trajkit.real import MAX_LR, LearningRate, Real
from trajkit.seeds import Seed
from trajkit.yamlfile import read_yaml_mapping


class _Strict(BaseModel):
    """Counts are ``Count`` (trajkit.counts): pydantic's int took ``true`` for 1
    (``optim.epochs: true`` trained one epoch)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _no_control(path: str) -> str:
    """Refused as the command line refuses it: a newline made a folder named over two lines."""
    if CONTROL.search(path):
        raise ValueError(f"{path!r} holds a control character")
    return path


PathText = Annotated[str, Field(min_length=1), AfterValidator(_no_control)]

MAX_WEIGHT_DECAY = 1.0
"""AdamW recipes use 0.01 (PyTorch's default) to 0.4 (I-JEPA and DINO ramp 0.04 -> 0.4); each
step scales the weights by 1 - lr * weight_decay, so a negative decay grows them. A ramp
[-1, 1e308] reached 6.7e306 in epoch 2, where the loss turned NaN under advice to lower the
learning rate."""
WeightDecay = Annotated[Real, Field(ge=0, le=MAX_WEIGHT_DECAY)]


def _ordered_pair(name: str, pair: tuple[float, float], low: float, high: float) -> None:
    if not (low <= pair[0] <= pair[1] <= high):
        raise ValueError(
            f"{name} must be (min, max) with {low} <= min <= max <= {high}, got {pair}"
        )


class DatasetSpec(_Strict):
    kind: str  # a name of train.jepa.datasets.IMAGE_SETS
    weight: Real = Field(1.0, gt=0)
    root: PathText | None = None  # defaults to <data_path>/<kind>
    synthetic_size: Count = Field(2000, ge=1)  # images in a synthetic dataset's train split
    synthetic_kind: Literal["textures", "shapes"] = "textures"  # see train.jepa.synthetic

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        from train.jepa.datasets import IMAGE_SETS

        if kind not in IMAGE_SETS:
            raise ValueError(f"unknown dataset {kind!r} (known: {', '.join(IMAGE_SETS)})")
        return kind


MAX_SAMPLES_PER_EPOCH = 100_000_000
"""An epoch's indices are drawn whole at its start: 1e8 of them took 10 to 25 s and a peak of
1.3 to 3.6 GB (weighted, concat, balanced; measured on 2 CPU cores), so 1e14 never starts. An
epoch is also what a checkpoint waits for: more images than 1e8 (78 passes over ImageNet-1k)
are more epochs."""


class DataConfig(_Strict):
    data_path: PathText = "data"
    datasets: list[DatasetSpec] = Field(min_length=1)
    sampling: Literal["weighted", "balanced", "concat"] = "concat"
    # default: the total size of all datasets
    samples_per_epoch: Count | None = Field(None, ge=1, le=MAX_SAMPLES_PER_EPOCH)
    image_size: Count = Field(32, ge=8)
    crop_scale: tuple[Real, Real] = (0.3, 1.0)  # I-JEPA random resized crop scale
    crop_ratio: tuple[Real, Real] = (0.75, 4 / 3)
    horizontal_flip: bool = False  # off in I-JEPA
    eval_crop_ratio: Real = Field(0.875, gt=0, le=1)  # evaluation: resize to size/ratio, crop
    mean: tuple[Real, Real, Real] = (0.485, 0.456, 0.406)
    std: tuple[Real, Real, Real] = (0.229, 0.224, 0.225)
    num_workers: Count = Field(2, ge=0)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        _ordered_pair("data.crop_scale", self.crop_scale, 0.0, 1.0)
        _ordered_pair("data.crop_ratio", self.crop_ratio, 0.0, 100.0)
        return self


class MaskConfig(_Strict):
    """Multi-block masking of I-JEPA, Sec. 3 and ``src/masks/multiblock.py``."""

    num_context: Count = Field(1, ge=1)
    num_targets: Count = Field(4, ge=1)
    context_scale: tuple[Real, Real] = (0.85, 1.0)
    context_aspect: tuple[Real, Real] = (1.0, 1.0)
    target_scale: tuple[Real, Real] = (0.15, 0.2)
    target_aspect: tuple[Real, Real] = (0.75, 1.5)
    min_keep: Count = Field(4, ge=1)  # fewest context tokens a sample may keep
    max_tries: Count = Field(50, ge=1)

    @model_validator(mode="after")
    def _check(self) -> MaskConfig:
        _ordered_pair("mask.context_scale", self.context_scale, 0.0, 1.0)
        _ordered_pair("mask.target_scale", self.target_scale, 0.0, 1.0)
        _ordered_pair("mask.context_aspect", self.context_aspect, 0.01, 100.0)
        _ordered_pair("mask.target_aspect", self.target_aspect, 0.01, 100.0)
        return self


class LevelSpec(_Strict):
    weight: Real = Field(1.0, ge=0)


class ModelConfig(_Strict):
    patch_size: Count = Field(4, ge=1)
    embed_dim: Count = Field(192, ge=8)
    depth: Count = Field(6, ge=1)
    num_heads: Count = Field(3, ge=1)
    mlp_ratio: Real = Field(4.0, gt=0)
    predictor_embed_dim: Count = Field(96, ge=8)
    predictor_depth: Count = Field(3, ge=1)
    predictor_num_heads: Count = Field(3, ge=1)
    levels: list[LevelSpec] = Field(default_factory=lambda: [LevelSpec()], min_length=1)

    @field_validator("levels")
    @classmethod
    def _one_level_learns(cls, levels: list[LevelSpec]) -> list[LevelSpec]:
        if not any(level.weight > 0 for level in levels):
            raise ValueError(
                "every level's weight is 0: at least one must be > 0, else only the "
                "regularizer trains"
            )
        return levels

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.embed_dim % self.num_heads or self.predictor_embed_dim % self.predictor_num_heads:
            raise ValueError("model.embed_dim / predictor_embed_dim must divide by their num_heads")
        if self.embed_dim % 4 or self.predictor_embed_dim % 4:
            raise ValueError("2-D sin-cos position embeddings need embed dims divisible by 4")
        return self


class OptimConfig(_Strict):
    epochs: Count = Field(100, ge=1, le=MAX_EPOCHS)
    batch_size: Count = Field(256, ge=1)
    lr: LearningRate = 1e-3  # peak, reached after warmup
    start_lr: Real = Field(2e-4, ge=0, le=MAX_LR)
    final_lr: Real = Field(1e-6, ge=0, le=MAX_LR)
    warmup_epochs: Real = Field(10, ge=0)
    weight_decay: tuple[WeightDecay, WeightDecay] = Field(
        (0.04, 0.4),
        description=f"AdamW's weight decay, a cosine ramp start -> end, each in [0, "
        f"{MAX_WEIGHT_DECAY}]",
    )
    ema_momentum: tuple[Real, Real] = (0.996, 1.0)  # linear ramp start -> end
    grad_clip: Real | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> OptimConfig:
        _ordered_pair("optim.ema_momentum", self.ema_momentum, 0.0, 1.0)
        if self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ValueError("optim.warmup_epochs must be smaller than optim.epochs")
        return self


class CollapseConfig(_Strict):
    """Thresholds of the collapse watch (see ``train.jepa.collapse``)."""

    probe_samples: Count = Field(512, ge=8)
    min_std_ratio: Real = Field(0.5, gt=0)  # warn when the std ratio falls below this x its best
    min_rank_ratio: Real = Field(0.6, gt=0)  # warn when RankMe falls below this x its best


class RegularizerConfig(_Strict):
    """Anti-collapse terms on the context encoder's image embeddings (``train.jepa.regularizers``:
    VICReg variance and covariance as in C-JEPA, LeJEPA's SIGReg); a weight of 0 turns one off."""

    variance_weight: Real = Field(0.0, ge=0)
    covariance_weight: Real = Field(0.0, ge=0)
    sigreg_weight: Real = Field(0.0, ge=0)
    sigreg_slices: Count = Field(256, ge=1)


class RunConfig(_Strict):
    out: PathText = "runs/jepa"
    seed: Seed = 0
    amp: bool = True  # bf16 autocast, CUDA only
    log_every: Count = Field(20, ge=1)
    threads: Count | None = Field(
        None,
        ge=1,
        le=MAX_THREADS,
        description="torch CPU threads (default: torch's, every core); on a machine shared "
        "with other jobs, 1 trained tiny.yaml 9 times faster than 2",
    )


class JepaConfig(_Strict):
    name: str
    data: DataConfig
    mask: MaskConfig = MaskConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    collapse: CollapseConfig = CollapseConfig()
    regularizer: RegularizerConfig = RegularizerConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _check(self) -> JepaConfig:
        size, patch = self.data.image_size, self.model.patch_size
        if size % patch:
            raise ValueError(
                f"data.image_size {size} is not a multiple of model.patch_size {patch}"
            )
        grid = size // patch
        coarsest = 2 ** (len(self.model.levels) - 1)
        if coarsest > grid:
            raise ValueError(
                f"{len(self.model.levels)} levels need 2^{len(self.model.levels) - 1}={coarsest} "
                f"patch groups but the patch grid is only {grid}x{grid}"
            )
        if self.mask.min_keep > grid * grid:
            raise ValueError(
                f"mask.min_keep {self.mask.min_keep} exceeds the {grid * grid} patches"
            )
        return self

    @property
    def grid_size(self) -> int:
        return self.data.image_size // self.model.patch_size


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line for the user."""


RUNTIME_FIELDS = frozenset(
    {
        "name",
        "data.data_path",
        "data.datasets.root",
        "data.num_workers",
        "optim.epochs",
        "collapse.probe_samples",
        "collapse.min_std_ratio",
        "collapse.min_rank_ratio",
        "run.out",
        "run.amp",
        "run.log_every",
        "run.threads",
    }
)
"""Settings a ``--resume`` may change: where the data and the run are, how the run executes and
logs, not what it learns (as ``train.trajectory.config.RUNTIME_FIELDS``). ``optim.epochs`` is
among them so a run can be extended; the schedules then stretch to the new length. Each
dataset's ``root`` is where its files are, not which images (its ``kind``, size and weight
stay); the collapse watch only measures and warns, on features training computes anyway."""


def check_resume(saved: JepaConfig, cfg: JepaConfig) -> None:
    """Refuse a ``--resume`` that changes what the run learns: a new lr, or a batch size (the
    steps per epoch) that moves the lr, weight-decay and EMA schedules mid-run."""
    old, new = _settings(saved), _settings(cfg)
    changed = sorted(k for k in old if k not in RUNTIME_FIELDS and old[k] != new[k])
    if changed:
        what = ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed)
        raise ConfigError(
            f"--resume cannot change {what}; use the run's settings or start a new run "
            "(another --out, or --force)"
        )


def _settings(cfg: JepaConfig) -> dict:
    """``section.field`` -> value (lists such as ``data.datasets`` compared whole, but for the
    datasets' roots, which are ``data.datasets.root``: a moved dataset is the same one)."""
    flat = {}
    for section, values in cfg.model_dump(mode="json").items():
        if isinstance(values, dict):
            flat.update({f"{section}.{k}": v for k, v in values.items()})
        else:
            flat[section] = values
    specs = flat["data.datasets"]
    flat["data.datasets"] = [{k: v for k, v in s.items() if k != "root"} for s in specs]
    flat["data.datasets.root"] = [s["root"] for s in specs]
    return flat


def check_sampling(cfg: JepaConfig) -> None:
    """Refuse dataset weights the sampling ignores: only ``weighted`` reads them, and a weight of
    3 under ``concat`` drew by size without a word. Checked when a run starts from epoch 1
    (a ``--resume`` that finds no ``last.pt`` too), not in the config's validation: a run that
    began before keeps its config for ``--resume`` and ``train.jepa.evaluate``."""
    data = cfg.data
    if data.sampling != "weighted":
        for i, spec in enumerate(data.datasets):
            if spec.weight != 1:
                raise ConfigError(
                    f"data.datasets[{i}].weight is {spec.weight:g}, but data.sampling "
                    f"{data.sampling} ignores weights; set data.sampling: weighted or drop it"
                )


def parse_config(raw: dict) -> JepaConfig:
    try:
        return JepaConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"invalid config: {describe_validation_error(err)}") from None


def load_config(path: str | Path) -> dict:
    """A config file, or the name of a shipped one (``cifar10``)."""
    from trajkit.presets import config_file

    return read_yaml_mapping(config_file("jepa", path, ConfigError), ConfigError)


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-path", help="the folder holding the datasets; wins over a root in the config"
    )
    parser.add_argument("--dataset", help="train on this one dataset kind instead of the config's")
    parser.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS))
    parser.add_argument("--batch-size", type=whole_number(1))
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--image-size", type=whole_number(1))
    parser.add_argument("--out", help="run folder")
    parser.add_argument(
        "--threads", type=whole_number(1, MAX_THREADS), help="torch CPU threads (run.threads)"
    )


def apply_overrides(raw: dict, args: argparse.Namespace) -> JepaConfig:
    """Apply command-line overrides to a raw config dict, then validate the whole.

    An explicit ``--data-path`` wins over each dataset's ``root``, as in ``train.jepa.evaluate``
    (moved data is found, a copy left at the old place is not read instead); the run records
    the place it read, so ``--resume`` and ``train.jepa.evaluate`` find the same data there."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for section in ("data", "optim", "run"):
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):  # an override written into it raised TypeError
            raise ConfigError(f"invalid config: {section}: Input should be a valid dictionary")
    if getattr(args, "data_path", None) is not None:
        raw["data"]["data_path"] = args.data_path
        if isinstance(datasets := raw["data"].get("datasets"), list):
            raw["data"]["datasets"] = [_without_root(spec) for spec in datasets]
    if getattr(args, "dataset", None) is not None:
        raw["data"]["datasets"] = [{"kind": args.dataset}]
    if getattr(args, "image_size", None) is not None:
        raw["data"]["image_size"] = args.image_size
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr")):
        if getattr(args, flag, None) is not None:
            raw["optim"][key] = getattr(args, flag)
    if getattr(args, "out", None) is not None:
        raw["run"]["out"] = args.out
    if getattr(args, "threads", None) is not None:
        raw["run"]["threads"] = args.threads
    return parse_config(raw)


def _without_root(spec: object) -> object:
    """A raw dataset entry with no ``root``: it is looked for under ``data.data_path``."""
    if not isinstance(spec, dict):  # left for the validation to refuse, naming it
        return spec
    return {k: v for k, v in spec.items() if k != "root"}
