"""A boolean where an extractor's number goes is refused, in the built-ins and in a plugin's
config alike: YAML reads yes/no/on/off as booleans, and pydantic took `embed_dim: true` as
1 and `entropy_weight: no` as 0.0."""

from __future__ import annotations

import typing

import pytest
from pydantic import Field

from extractors.config import ExtractorConfig, ExtractorConfigError
from extractors.registry import get_extractor, list_extractors


def number_fields(config: type[ExtractorConfig]) -> list[str]:
    """The fields of ``config`` that hold numbers (ints, floats, tuples of them)."""

    def numeric(annotation) -> bool:
        if annotation in (int, float):
            return True
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return bool(args) and all(numeric(a) for a in args)

    return [name for name, f in config.model_fields.items() if numeric(f.annotation)]


@pytest.mark.parametrize("name", list_extractors())
def test_every_number_field_of_a_built_in_refuses_a_boolean(name):
    config = get_extractor(name).config_cls
    fields = number_fields(config)
    assert "embed_dim" in fields
    for field in fields:
        default = config.model_fields[field].default
        value = [True] * len(default) if isinstance(default, tuple) else True
        with pytest.raises(ExtractorConfigError, match=f"{field}: .*not a boolean"):
            config.from_preset("tiny", **{field: value})


def test_a_boolean_field_still_takes_booleans():
    config = get_extractor("magvit").config_cls
    assert config.from_preset("tiny", temporal_downsample=(False,)).temporal_downsample == (False,)


def test_a_plugins_config_refuses_a_boolean_number_too():
    class Plugin(ExtractorConfig):
        presets: typing.ClassVar[dict] = {"tiny": {"embed_dim": 8}}
        scale: float = Field(1.0, gt=0)
        flag: bool = False

    with pytest.raises(ExtractorConfigError, match="scale: .*not a boolean"):
        Plugin.from_preset("tiny", scale=True)
    assert Plugin.from_preset("tiny", flag=True, scale="1e-3").scale == 0.001
