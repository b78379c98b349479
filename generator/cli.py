"""What every command line here shares: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import re
import sys

from pydantic import ValidationError


def one_line(text: object) -> str:
    """``text`` with control characters escaped (a newline becomes ``\\n``): an error that
    quotes a hostile value stays one line."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(text))


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {one_line(message)} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def describe_validation_error(e: ValidationError) -> str:
    """All pydantic errors on one line, each as ``field.path: message``."""
    parts = []
    for err in e.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
