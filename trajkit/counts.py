"""The integer type of every config: a whole number, never a boolean or a float.

pydantic's int took ``epochs: true`` for 1 (YAML 1.1 reads yes/no and on/off as booleans),
and its ``StrictInt`` said "Input should be a valid integer" for ``epochs: 3.0``: neither
what to write nor why ``yes`` is refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictInt

from trajkit.cli import short_repr
from trajkit.real import YAML_BOOLEANS


def _whole_number(value: Any) -> Any:
    """``value`` if it is an int, else a ValueError pydantic reports on the field, saying
    what to write."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a whole number ({YAML_BOOLEANS})")
    if isinstance(value, int):
        return value
    exact = isinstance(value, float) and value.is_integer() and abs(value) < 2**53
    raise ValueError(
        f"{short_repr(value)} is not a whole number" + (f" (write {int(value)})" if exact else "")
    )


Count = Annotated[StrictInt, BeforeValidator(_whole_number)]
"""An int field's type; constraints go on top as ever: ``epochs: Count = Field(10, ge=1)``."""
