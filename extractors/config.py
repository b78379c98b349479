"""Validated extractor configs with named presets.

Every extractor has one pydantic model, a subclass of :class:`ExtractorConfig`,
whose ``presets`` hold at least ``tiny`` (trains on a 2-core CPU in minutes)
and ``base`` (the published widths, for a GPU). A preset is a plain dict of
field values; user overrides are merged on top and the whole is validated once,
so a bad value gets one line naming the field, whatever its source (YAML,
command line, Python).
"""

from __future__ import annotations

from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from typing_extensions import Self

from trajkit.cli import error_message, short_repr
from trajkit.real import not_a_boolean

PRESET_NAMES: tuple[str, ...] = ("tiny", "base")
"""Presets every extractor must define; others may be added per extractor."""


class ExtractorConfigError(ValueError):
    """A preset name or config value that an extractor cannot accept."""


class ExtractorConfig(BaseModel):
    """Base of every extractor config: frozen, no unknown keys, named presets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    embed_dim: int = Field(gt=0, description="size D of the (B, D) clip embedding")

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """A boolean only where the field holds booleans, in every subclass, a plugin's too:
        pydantic took ``embed_dim: true`` as 1, and YAML reads yes/no/on/off as booleans
        (``entropy_weight: no`` was 0.0)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and not _holds_booleans(field.annotation):
            for item in value if isinstance(value, list | tuple) else [value]:
                not_a_boolean(item)
        return value

    @classmethod
    def from_preset(cls, preset: str = "tiny", **overrides: Any) -> Self:
        """The ``preset`` values with ``overrides`` on top, validated.

        Raises :class:`ExtractorConfigError` with a one-line message naming the
        preset or each bad field.
        """
        if preset not in cls.presets:
            known = ", ".join(sorted(cls.presets)) or "none"
            raise ExtractorConfigError(
                f"{cls.__name__}: unknown preset {preset!r} (known: {known})"
            )
        values = {**cls.presets[preset], **overrides}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ExtractorConfigError(describe_validation_error(cls, exc)) from None


def _holds_booleans(annotation: Any) -> bool:
    """Whether ``bool`` is anywhere in a field's type (``bool``, ``tuple[bool, ...]``)."""
    return annotation is bool or any(_holds_booleans(a) for a in get_args(annotation))


def describe_validation_error(cls: type[BaseModel], exc: ValidationError) -> str:
    """One line per pydantic error, joined with '; ', each naming its field."""
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
        got = f" (got {short_repr(err['input'])})" if err["type"] != "missing" else ""
        if err["type"] == "extra_forbidden":
            known = ", ".join(cls.model_fields)
            parts.append(f"{field}: unknown field (known: {known})")
        else:
            parts.append(f"{field}: {error_message(err)}{got}")
    return f"{cls.__name__}: " + "; ".join(parts)
