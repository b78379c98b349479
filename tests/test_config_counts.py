"""A count or seed in any config is a whole number, and a value that is not says what to
write: pydantic's "Input should be a valid integer" said neither that ``epochs: 3.0`` is
written ``3`` nor that YAML reads ``batch_size: yes`` as a boolean (trajkit.counts)."""

from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from generator.config import GeneratorConfig
from train.jepa import train as jepa_trainer
from train.jepa.config import JepaConfig
from train.saliency.__main__ import main as saliency_main
from train.saliency.config import SaliencyConfig
from train.trajectory.cli import main as trajectory_main
from train.trajectory.config import TrainConfig as TrajectoryConfig
from trajkit.presets import preset_file

YAML_BOOLEAN = "true is not a whole number (YAML reads yes/no and on/off as true/false)"
# (field, the YAML word written, what is said)
NOT_WHOLE = [
    ("epochs", "3.0", "3.0 is not a whole number (write 3)"),
    ("batch_size", "yes", YAML_BOOLEAN),
    ("seed", "1.0", "1.0 is not a whole number (write 1)"),
]


def _config_file(tmp_path, raw: dict, section: str | None, field: str, word: str) -> str:
    """``raw`` as YAML with ``section.field`` set to the plain YAML ``word``."""
    (raw.setdefault(section, {}) if section else raw)[field] = "WORD"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw).replace("WORD", word))
    return str(path)


def _shipped(name: str) -> dict:
    return yaml.safe_load(preset_file(*name.split("/")).read_text())


def _refusal(main, argv: list[str], capsys) -> str:
    """The one line ``main`` printed on refusing ``argv`` with exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize(("field", "word", "said"), NOT_WHOLE, ids=[c[0] for c in NOT_WHOLE])
def test_train_says_what_to_write_for_a_count(tmp_path, capsys, field, word, said):
    raw = {"extractor": "i3d", "data": str(tmp_path / "no-data"), "epochs": 1}
    config = _config_file(tmp_path, raw, None, field, word)
    out = tmp_path / "out"
    err = _refusal(trajectory_main, ["--config", config, "--out", str(out)], capsys)
    assert err == f"python -m train: error: {field}: {said}"
    assert not out.exists()


@pytest.mark.parametrize(("field", "word", "said"), NOT_WHOLE, ids=[c[0] for c in NOT_WHOLE])
def test_train_saliency_says_what_to_write_for_a_count(tmp_path, capsys, field, word, said):
    config = _config_file(tmp_path, _shipped("saliency/baseline_tiny"), "train", field, word)
    out = tmp_path / "out"
    argv = ["--config", config, "--data", str(tmp_path / "no-data"), "--out", str(out)]
    err = _refusal(saliency_main, argv, capsys)
    assert err == f"error: {config}: train.{field}: {said}"
    assert not out.exists()


JEPA = {"epochs": "optim", "batch_size": "optim", "seed": "run"}


@pytest.mark.parametrize(("field", "word", "said"), NOT_WHOLE, ids=[c[0] for c in NOT_WHOLE])
def test_train_jepa_says_what_to_write_for_a_count(tmp_path, capsys, field, word, said):
    section = JEPA[field]
    config = _config_file(tmp_path, _shipped("jepa/tiny"), section, field, word)
    out = tmp_path / "out"
    argv = ["--config", config, "--data-path", str(tmp_path), "--out", str(out), "--quiet"]
    err = _refusal(jepa_trainer.main, argv, capsys)
    assert err == f"error: invalid config: {section}.{field}: {said}"
    assert not out.exists()


def _models() -> list[type[BaseModel]]:
    """Every model of the four configs, nested ones (in a list, an optional) included."""
    found: list[type[BaseModel]] = []

    def visit(annotation) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
        for inner in get_args(annotation):
            visit(inner)

    for root in (GeneratorConfig, TrajectoryConfig, SaliencyConfig, JepaConfig):
        visit(root)
    return found


def _holds_an_int(annotation) -> bool:
    if get_origin(annotation) in (Union, UnionType, Annotated):
        return any(_holds_an_int(a) for a in get_args(annotation))
    return annotation is int


INT_FIELDS = [
    (model, name, field)
    for model in _models()
    for name, field in model.model_fields.items()
    if _holds_an_int(field.annotation)
]


def test_the_walk_finds_the_counts_and_seeds_of_every_config():
    found = {f"{m.__module__}.{m.__qualname__}.{n}" for m, n, _ in INT_FIELDS}
    assert {
        "generator.config.OccluderConfig.count",
        "train.trajectory.config.TrainConfig.threads",
        "train.trajectory.config.TrainConfig.render_seed",
        "train.saliency.config.DataConfig.max_val_stimuli",
        "train.jepa.config.DatasetSpec.synthetic_size",
        "train.jepa.config.RunConfig.seed",
    } <= found


@pytest.mark.parametrize(
    ("model", "name", "field"),
    INT_FIELDS,
    ids=[f"{m.__module__}.{m.__qualname__}.{n}" for m, n, _ in INT_FIELDS],
)
def test_every_int_field_says_what_to_write(model, name, field):
    """A count added as pydantic's ``StrictInt`` or ``int`` fails here: use trajkit's Count."""
    meta = field.metadata  # the constraints of an optional count stay inside its annotation
    field_type = TypeAdapter(Annotated[(field.annotation, *meta)] if meta else field.annotation)
    with pytest.raises(ValidationError) as caught:
        field_type.validate_python(2.0)
    assert [e["msg"] for e in caught.value.errors()] == [
        "Value error, 2.0 is not a whole number (write 2)"
    ]
