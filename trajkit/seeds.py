"""One range for every seed the suite takes, on the command line or in a config: 0 to 2**32 - 1.

Why this range: torch's generators take at most 64 bits and the trainers derive per-epoch
seeds from theirs by multiplying, numpy's legacy seeding takes 32, and a JSON reader in
JavaScript, or one that loads integers as int64, reads a 32-bit seed back whole. A seed
outside it is one line where it is given, not an overflow deep inside a run.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from trajkit.counts import Count

MAX_SEED = 2**32 - 1

Seed = Annotated[Count, Field(ge=0, le=MAX_SEED)]
"""A ``Count``: pydantic's int took a config's ``seed: true`` for 1."""
