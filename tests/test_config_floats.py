"""A boolean in a float field of any config is refused, naming the field: pydantic's float took
``true`` for 1.0, and YAML 1.1 reads yes/no and on/off as booleans, so ``dropout: off`` trained
at 0.0 and ``lr: yes`` at 1.0 (``python -m train.jepa`` trained a whole run so)."""

from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from generator.__main__ import main as generator_main
from generator.config import ConfigError as GeneratorConfigError
from generator.config import GeneratorConfig
from generator.config import load_config as generator_config
from train.jepa import train as jepa_trainer
from train.jepa.config import ConfigError as JepaConfigError
from train.jepa.config import JepaConfig
from train.jepa.config import load_config as jepa_yaml
from train.jepa.config import parse_config as jepa_config
from train.saliency.__main__ import main as saliency_main
from train.saliency.config import ConfigError as SaliencyConfigError
from train.saliency.config import SaliencyConfig
from train.saliency.config import load_config as saliency_config
from train.trajectory.cli import main as trajectory_main
from train.trajectory.config import TrainConfig as TrajectoryConfig
from train.trajectory.config import TrainConfigError, build_config
from trajkit.presets import preset_file
from trajkit.real import BOOLEAN_REFUSED

ROOTS = (GeneratorConfig, TrajectoryConfig, SaliencyConfig, JepaConfig)


def _inner(annotation) -> tuple:
    """The types an annotation is made of (an Annotated's metadata left out)."""
    if get_origin(annotation) is Annotated:
        return (get_args(annotation)[0],)
    return get_args(annotation)


def _models() -> list[type[BaseModel]]:
    """Every model the four configs are made of, nested ones included."""
    found: list[type[BaseModel]] = []

    def visit(annotation) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in found:
                return
            found.append(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for inner in _inner(annotation):
            visit(inner)

    for root in ROOTS:
        visit(root)
    return found


def _true_where_floats_go(annotation):
    """A value of ``annotation`` holding ``True`` wherever a float goes; None if none does."""
    origin, args = get_origin(annotation), _inner(annotation)
    if annotation is float:
        return True
    if origin is Annotated:
        return _true_where_floats_go(args[0])
    if origin in (Union, UnionType):
        return next((v for a in args if (v := _true_where_floats_go(a)) is not None), None)
    if origin in (tuple, list):
        items = [_true_where_floats_go(a) for a in args if a is not Ellipsis]
        return origin(items) if any(i is not None for i in items) else None
    if origin is dict:
        value = _true_where_floats_go(args[1])
        return None if value is None else {"key": value}
    return None


def _count_true(value) -> int:
    if value is True:
        return 1
    if isinstance(value, dict):
        value = list(value.values())
    return sum(map(_count_true, value)) if isinstance(value, list | tuple) else 0


FLOAT_FIELDS = [
    (model, name, value)
    for model in _models()
    for name, field in model.model_fields.items()
    if (value := _true_where_floats_go(field.annotation)) is not None
]


def _id(model: type[BaseModel], name: str) -> str:
    return f"{model.__module__}.{model.__qualname__}.{name}"


def test_the_walk_reaches_every_kind_of_float_field():
    """A scalar, an optional, a tuple, a list, a constrained alias, and fields of models
    nested in a list, an optional section and a constrained range."""
    found = {_id(model, name) for model, name, _ in FLOAT_FIELDS}
    assert {
        "train.trajectory.config.TrainConfig.dropout",
        "train.saliency.config.EntropyConfig.weight",
        "train.jepa.config.OptimConfig.grad_clip",
        "train.jepa.config.OptimConfig.ema_momentum",
        "train.jepa.config.OptimConfig.weight_decay",
        "train.jepa.config.DatasetSpec.weight",
        "train.jepa.config.LevelSpec.weight",
        "generator.config.CameraRigConfig.azimuths_deg",
        "generator.config.CameraRigConfig.look_at",
        "generator.config.Range.lo",
        "generator.config.LightingConfig.drift",
    } <= found
    assert (
        not {"train.jepa.config.OptimConfig.epochs", "generator.config.GeneratorConfig.frames"}
        & found
    )


@pytest.mark.parametrize(
    ("model", "name", "value"), FLOAT_FIELDS, ids=[_id(m, n) for m, n, _ in FLOAT_FIELDS]
)
def test_every_float_field_refuses_a_boolean(model, name, value):
    """Each float of a field (each of a tuple's) refused on its own; a float field added
    without ``trajkit.real.Real`` takes ``True`` for 1.0 and fails here."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: value})
    at_field = [e for e in caught.value.errors() if e["loc"][0] == name]
    assert len(at_field) == _count_true(value), at_field
    assert all(BOOLEAN_REFUSED in e["msg"] for e in at_field), at_field


def _yaml_file(tmp_path, base: str | None, section: str | None, field: str, word: str):
    """A shipped config (or none) with ``section.field`` set to the plain YAML word."""
    raw = yaml.safe_load(preset_file(*base.split("/")).read_text()) if base else {}
    (raw.setdefault(section, {}) if section else raw)[field] = "WORD"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw).replace("WORD", word))
    return path


def _trajectory(path):
    return build_config({"extractor": "i3d", "data": "d", "out": "o", "epochs": 1}, path)


LOADERS = {
    "generator": (None, "appearance", "noise_std", generator_config, GeneratorConfigError),
    "trajectory": (None, None, "dropout", _trajectory, TrainConfigError),
    "saliency": (
        "saliency/baseline_tiny",
        "entropy",
        "weight",
        saliency_config,
        SaliencyConfigError,
    ),
    "jepa": ("jepa/tiny", "optim", "lr", lambda p: jepa_config(jepa_yaml(p)), JepaConfigError),
}


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "true", "false"])
@pytest.mark.parametrize("config", list(LOADERS))
def test_a_yaml_boolean_word_in_a_float_field_is_refused(config, word, tmp_path):
    base, section, field, load, error = LOADERS[config]
    path = _yaml_file(tmp_path, base, section, field, word)
    where = f"{section}.{field}" if section else field
    with pytest.raises(error, match=f"{where}: {BOOLEAN_REFUSED}") as caught:
        load(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("config", list(LOADERS))
@pytest.mark.parametrize(("text", "number"), [("1e-3", 0.001), ("2.5E-1", 0.25), ("0.5", 0.5)])
def test_a_number_in_a_float_field_is_still_taken(config, text, number, tmp_path):
    """PyYAML reads ``1e-3`` (no dot) as a string, which the float field converts, as a user
    means it (a StrictFloat would refuse it)."""
    base, section, field, load, _ = LOADERS[config]
    cfg = load(_yaml_file(tmp_path, base, section, field, text))
    got = getattr(getattr(cfg, section) if section else cfg, field)
    assert got == number and type(got) is float


def _command(command: str, tmp_path):
    """The command's main, its arguments with a config holding a YAML boolean in a float field
    (and no data: where a boolean was taken, the run stopped at the data or in one epoch), and
    the field."""
    out, data = str(tmp_path / "out"), str(tmp_path / "no-data")
    if command == "generator":
        gen = _yaml_file(tmp_path, None, "appearance", "noise_std", "on")
        return (
            generator_main,
            ["--n", "1", "--config", str(gen), "--out", out],
            "appearance.noise_std",
        )
    if command == "trajectory":
        cfg = _yaml_file(tmp_path, None, None, "lr", "yes")
        argv = ["--extractor", "i3d", "--data", data, "--epochs", "1", "--config", str(cfg)]
        return trajectory_main, [*argv, "--out", out], "lr"
    if command == "saliency":
        cfg = _yaml_file(tmp_path, "saliency/baseline_tiny", "train", "lr", "yes")
        return saliency_main, ["--config", str(cfg), "--data", data, "--out", out], "train.lr"
    cfg = _yaml_file(tmp_path, "jepa/tiny", "optim", "lr", "yes")
    argv = ["--config", str(cfg), "--data-path", data, "--epochs", "1", "--out", out, "--quiet"]
    return jepa_trainer.main, argv, "optim.lr"


@pytest.mark.parametrize("command", list(LOADERS))
def test_each_command_refuses_it_in_one_line_exit_2_writing_nothing(command, tmp_path, capsys):
    main, argv, field = _command(command, tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{field}: {BOOLEAN_REFUSED}" in err, err
    assert not (tmp_path / "out").exists()
