"""One run's settings: a validated pydantic model, its YAML presets and the fields resume may change.

``configs/train/<preset>.yaml`` holds the optimisation recipe for an extractor
preset (``tiny`` trains on a 2-core CPU in minutes, ``base`` is for a GPU);
command-line flags go on top. The whole is validated once, so a bad value is
one line naming the field, whatever its source.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trajkit.cli import (
    MAX_EPOCHS,
    MAX_THREADS,
    MAX_WORKERS,
    describe_validation_error,
    short_repr,
)
from trajkit.counts import Count
from trajkit.presets import config_file, preset_file
from trajkit.real import LearningRate, Real
from trajkit.seeds import MAX_SEED, Seed
from trajkit.yamlfile import read_settings, read_yaml_mapping

if TYPE_CHECKING:
    import torch


RUNTIME_FIELDS = frozenset(
    {"epochs", "device", "workers", "threads", "compile", "quiet", "out", "data", "render"}
)
"""Fields a ``--resume`` may change: they alter how the run executes, not what it learns.

``epochs`` is among them so a short round can be continued to more epochs
(the ``python -m train.parallel --top K`` workflow); the cosine schedule then stretches
to the new length from the step reached. ``data`` and ``render`` may name another path:
preflight compares what it holds or renders with what the run trained on, not its path.
"""

RENDER_DEFAULTS = {"render_seed": 0, "epoch_samples": 1600, "eval_samples": 200}
"""Settings of samples rendered on the fly, with their defaults for a ``--render`` run; a run
on a dataset folder holds them as null (stored, 0, 1600 and 200 made its ``config.yaml`` one
that ``--config`` refused for a ``--data`` run)."""
RENDER_ONLY = tuple(RENDER_DEFAULTS)

STREAM_SAMPLES = MAX_SEED + 1
"""Indices a rendered stream may draw, 0..MAX_SEED: sample ``i`` is drawn from, and labelled
with, ``[seed, i]``, so ``i`` stays in the seeds' range; a run's validation, test and every
epoch's training samples must fit in it."""
MAX_BATCH_SIZE = 2**20
"""--batch-size's bound (train, train.evaluate, a config file): a million clips a batch is far
past any machine's memory, and a size past sys.maxsize was a traceback. A size above the
split's is one batch of the whole split."""


class TrainConfigError(ValueError):
    """A preset or config value that cannot be used; the message is one line."""


class TrainConfig(BaseModel):
    """Everything that decides what a run learns, plus how it executes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    extractor: str
    preset: Literal["tiny", "base"] = "tiny"
    data: str | None = Field(None, description="dataset folder made by python -m generator")
    render: str | None = Field(
        None,
        description="train on samples rendered on the fly instead of --data: a generator config "
        "YAML or the name of a shipped one (configs/generator: default, easy, ...)",
    )
    render_seed: Seed | None = Field(None, description="the rendered dataset's seed (--render)")
    epoch_samples: Count | None = Field(
        None, gt=0, le=STREAM_SAMPLES, description="fresh training samples per epoch (--render)"
    )
    eval_samples: Count | None = Field(
        None,
        gt=0,
        le=STREAM_SAMPLES,
        description="validation samples, and as many test samples (--render)",
    )
    out: str
    epochs: Count = Field(gt=0, le=MAX_EPOCHS)
    batch_size: Count = Field(8, gt=0, le=MAX_BATCH_SIZE, description="per process")
    lr: LearningRate = 1e-3
    weight_decay: Real = Field(0.05, ge=0.0)
    warmup_epochs: Real = Field(1.0, ge=0.0, description="linear warmup, then cosine decay")
    min_lr_ratio: Real = Field(0.01, ge=0.0, le=1.0, description="final lr / peak lr")
    grad_clip: Real = Field(1.0, gt=0.0, description="max global gradient norm")
    future_weight: Real = Field(
        1.0, ge=0.0, description="weight of the Smooth-L1 future-position loss"
    )
    trajectory_weight: Real = Field(
        0.0,
        ge=0.0,
        description="weight of an auxiliary Smooth-L1 on the ball's positions along the clip "
        "(extractors.multiview); 0 leaves the trajectory head out",
    )
    trajectory_steps: Count = Field(
        8, gt=0, description="spans of the clip whose mean positions the auxiliary loss predicts"
    )
    smooth_l1_beta: Real = Field(
        0.1, gt=0.0, description="Smooth-L1 transition, in normalised units ([-1, 1] per axis)"
    )
    extractor_options: dict[str, Any] = Field(
        default_factory=dict,
        description="extractor config fields over its preset (python -m extractors list)",
    )
    fusion_dim: Count = Field(128, gt=0)
    fusion_layers: Count = Field(1, ge=0)
    dropout: Real = Field(0.0, ge=0.0, lt=1.0)
    augment: bool = False
    subtract_background: bool = Field(
        True, description="feed each clip minus its per-pixel temporal mean (static cameras)"
    )
    position_channels: bool = Field(
        False,
        description="replace colour by motion energy and energy-weighted x, y (train.trajectory.inputs)",
    )
    downsample: Count = Field(
        1,
        ge=1,
        description="average k x k pixel blocks before anything else (train.trajectory.inputs)",
    )
    frame_stride: Count = Field(1, ge=1)
    split_seed: Seed = 0
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["bf16", "fp16", "fp32"] = Field(
        "bf16", description="autocast dtype on CUDA; the CPU always trains in fp32"
    )
    workers: Count = Field(2, ge=0, le=MAX_WORKERS, description="data-loading processes")
    threads: Count | None = Field(
        None, gt=0, le=MAX_THREADS, description="torch threads (default: torch's)"
    )
    compile: bool = False
    quiet: bool = False

    @model_validator(mode="before")
    @classmethod
    def _render_settings(cls, values: Any) -> Any:
        """A ``--render`` run's defaults; nothing of them for a run on a dataset folder (a
        checkpoint from before held the defaults there too)."""
        if not isinstance(values, dict):
            return values
        if values.get("render") is None:
            return {k: v for k, v in values.items() if k not in RENDER_DEFAULTS}
        given = {k: v for k, v in values.items() if v is not None or k not in RENDER_DEFAULTS}
        return {**RENDER_DEFAULTS, **given}

    @model_validator(mode="after")
    def _one_source(self) -> TrainConfig:
        if (self.data is None) == (self.render is None):
            raise ValueError("give exactly one of data (a dataset folder) and render")
        if self.render is None:
            return self
        drawn = 2 * self.eval_samples + self.epochs * self.epoch_samples
        if drawn > STREAM_SAMPLES:
            raise ValueError(
                f"2 x eval_samples + epochs x epoch_samples is {drawn:,} rendered samples, more "
                f"than the {STREAM_SAMPLES:,} indices of a stream (0..{MAX_SEED}, the seed range)"
            )
        return self

    @property
    def source(self) -> str:
        """Where the samples come from, as results.json records it; a stream's sizes too, as
        they decide which samples validate and train: the report ranked runs of other sizes
        as trained and scored on the same samples."""
        if self.render is not None:
            return (
                f"rendered:{self.render} seed {self.render_seed}, {self.eval_samples} val "
                f"+ {self.eval_samples} test, {self.epoch_samples} train per epoch"
            )
        return str(self.data)

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def build_model(self, num_cameras: int, num_classes: int) -> torch.nn.Module:
        """This run's model: one place, so the trainer's model, preflight's size estimate
        and the extractor benchmark are the same network."""
        from extractors import build_model

        return build_model(
            self.extractor,
            self.preset,
            num_cameras=num_cameras,
            num_classes=num_classes,
            fusion_dim=self.fusion_dim,
            fusion_layers=self.fusion_layers,
            dropout=self.dropout,
            trajectory_steps=self.trajectory_steps if self.trajectory_weight else 0,
            **self.extractor_options,
        )


def read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, TrainConfigError)


def read_config_file(path: Path) -> dict[str, Any]:
    """A ``--config`` file's settings. One with none (an empty file) is refused: a run took it
    for the preset alone, where ``train.jepa`` and ``train.saliency`` refuse it."""
    return read_settings(path, TrainConfigError, "give at least one, or leave out --config")


def preset_values(preset: str) -> dict[str, Any]:
    """The recipe in ``configs/train/<preset>.yaml``. Only the presets a config may name:
    the folder also holds ``--config`` files (``colour``), which were listed as known
    presets and then refused by validation."""
    presets = get_args(TrainConfig.model_fields["preset"].annotation)
    path = preset_file("train", preset) if preset in presets else None
    if path is None:
        raise TrainConfigError(
            f"unknown training preset {short_repr(preset)} (known: {', '.join(presets)}; "
            "other shipped configs go to --config)"
        )
    return read_yaml(path)


PER_EXTRACTOR = "per_extractor"
"""Key of a preset YAML mapping an extractor's name to settings that replace the preset's for it."""


def for_extractor(values: dict[str, Any], extractor: str | None, where: str) -> dict[str, Any]:
    """``values`` with its ``per_extractor`` settings for ``extractor`` on top."""
    values = dict(values)
    specific = values.pop(PER_EXTRACTOR, None) or {}
    if not isinstance(specific, dict) or not all(isinstance(v, dict) for v in specific.values()):
        raise TrainConfigError(f"{where}: {PER_EXTRACTOR} must map extractor names to settings")
    values.update(specific.get(extractor) or {})
    return values


def preset_for(preset: str, extractor: str | None) -> dict[str, Any]:
    """The preset's recipe, with its ``per_extractor`` settings for ``extractor`` on top.

    One recipe does not fit every architecture: the tiny ViViT stalls at the
    lr that suits the ResNets (a 32-clip batch is memorised in 60 AdamW steps
    at 3e-4, not at all at 1e-3), so ``tiny.yaml`` gives it its own.
    """
    return for_extractor(preset_values(preset), extractor, f"preset {preset!r}")


def merged_values(values: dict[str, Any], config: Path | str | None = None) -> dict[str, Any]:
    """Preset YAML, then the ``config`` file (a path or a shipped name), each with its
    settings for this run's extractor, then ``values`` (flags). The preset and the extractor
    may come from the file: a run's own ``config.yaml`` gives everything but ``out``."""
    path = config_file("train", config, TrainConfigError) if config is not None else None
    from_file = read_config_file(path) if path is not None else {}
    for key in ("extractor", "preset"):  # looked up before validation: a list was a traceback
        if not isinstance(from_file.get(key, ""), str):
            raise TrainConfigError(
                f"{path}: {key} must be a name, got {short_repr(from_file[key])}"
            )
    # Defaults say nothing: a --data run's config.yaml stored those of --render (until null).
    from_file = {k: v for k, v in from_file.items() if RENDER_DEFAULTS.get(k, ...) != v}
    extractor = values.get("extractor") or from_file.get("extractor")
    preset = values.get("preset") or from_file.get("preset") or "tiny"
    merged = preset_for(preset, extractor)
    merged.update(for_extractor(from_file, extractor, str(path)))
    merged.update({k: v for k, v in values.items() if v is not None})
    merged["preset"] = preset
    return merged


def refuse_file_changes(saved: dict[str, Any], config: Path | str) -> None:
    """A ``--config`` file given with ``--resume`` may not change the run, as a flag may not:
    the trainer resumed with the saved config and ignored the file without a word."""
    path = config_file("train", config, TrainConfigError)
    recipe = for_extractor(read_config_file(path), saved.get("extractor"), str(path))
    resumed_config(saved, {k: v for k, v in recipe.items() if RENDER_DEFAULTS.get(k, ...) != v})


def build_config(values: dict[str, Any], config: Path | str | None = None) -> TrainConfig:
    """``merged_values``, validated once."""
    return validated_config(merged_values(values, config))


def validated_config(merged: dict[str, Any]) -> TrainConfig:
    refuse_render_settings(merged, merged.get("render"))
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as e:
        raise TrainConfigError(describe_validation_error(e)) from None


def refuse_render_settings(values: dict[str, Any], render: str | None) -> None:
    """Settings of rendered samples given to a run on a dataset folder: refused, since the
    run would store them in its config and never use them."""
    given = [k for k in RENDER_ONLY if values.get(k) is not None]
    if render is None and given:
        names = ", ".join(f"{k} (--{k.replace('_', '-')})" for k in given)
        raise TrainConfigError(
            f"{names}: for samples rendered on the fly (--render) only; a run on a dataset "
            "folder (--data) does not use them"
        )


def resumed_config(saved: dict[str, Any], explicit: dict[str, Any]) -> TrainConfig:
    """The saved config with the explicitly given flags on top; learning settings may not
    change, nor where the samples come from (a dataset folder or the render stream)."""
    render = saved.get("render")
    if render is not None and explicit.get("data") is not None:
        raise TrainConfigError(
            f"--resume: the run trained on samples rendered on the fly (--render {render}); "
            "--data cannot replace them: drop --data"
        )
    if render is None and explicit.get("render") is not None:
        raise TrainConfigError(
            f"--resume: the run trained on the dataset folder {saved.get('data')}; --render "
            "cannot replace it: drop --render (a moved copy of that dataset goes to --data)"
        )
    refuse_render_settings(explicit, render)
    given = {k: v for k, v in explicit.items() if v is not None}
    try:
        before = TrainConfig.model_validate(saved).model_dump()
    except ValidationError as e:
        raise TrainConfigError(f"saved config: {describe_validation_error(e)}") from None
    try:
        resumed = TrainConfig.model_validate({**saved, **given})
    except ValidationError as e:
        raise TrainConfigError(describe_validation_error(e)) from None
    # Compared as validated: `lr: 1e-3` in a file, which YAML reads as text, is 0.001.
    after = resumed.model_dump()
    changed = sorted(k for k in given if k not in RUNTIME_FIELDS and before[k] != after[k])
    if changed:
        what = ", ".join(f"{k} {before[k]!r} -> {after[k]!r}" for k in changed)
        raise TrainConfigError(
            f"--resume cannot change {what}; drop those flags or start a new run folder"
        )
    return resumed
