"""The float types of every config: a number, never a boolean; a learning rate.

pydantic's float takes ``true`` for 1.0, and YAML 1.1 (PyYAML) reads ``yes``, ``no``, ``on``
and ``off`` as booleans, so ``dropout: off`` trained at 0.0 and ``lr: yes`` at 1.0 without a
word. Not ``StrictFloat``: PyYAML reads ``1e-3`` (no dot) as the string "1e-3", which the lax
float turns into 0.001, as a user means it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

BOOLEAN_REFUSED = "Input should be a valid number, not a boolean"
YAML_BOOLEANS = "YAML reads yes/no and on/off as true/false"  # why a config holds a boolean


def not_a_boolean(value: Any) -> Any:
    """``value``, unless it is a boolean: a ValueError pydantic reports on the field."""
    if isinstance(value, bool):
        raise ValueError(f"{BOOLEAN_REFUSED} ({YAML_BOOLEANS})")
    return value


Real = Annotated[float, BeforeValidator(not_a_boolean)]
"""A float field's type; constraints go on top as ever: ``lr: Real = Field(1e-3, gt=0)``."""

MAX_LR = 10.0
LearningRate = Annotated[Real, Field(gt=0, le=MAX_LR)]
"""A learning rate: AdamW moves each weight by about lr a step, so past 10 nothing trains,
and past about 1e37 its float32 step overflowed in a traceback, the run folder left behind."""
