"""Validated extractor configs with named presets.

Every extractor has one pydantic model, a subclass of :class:`ExtractorConfig`,
whose ``presets`` hold at least ``tiny`` (trains on a 2-core CPU in minutes)
and ``base`` (the published widths, for a GPU). A preset is a plain dict of
field values; user overrides are merged on top and the whole is validated once,
so a bad value gets one line naming the field, whatever its source (YAML,
command line, Python).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import Self

from trajkit.cli import error_message, short_repr

PRESET_NAMES: tuple[str, ...] = ("tiny", "base")
"""Presets every extractor must define; others may be added per extractor."""


class ExtractorConfigError(ValueError):
    """A preset name or config value that an extractor cannot accept."""


class ExtractorConfig(BaseModel):
    """Base of every extractor config: frozen, no unknown keys, named presets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    embed_dim: int = Field(gt=0, description="size D of the (B, D) clip embedding")

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
