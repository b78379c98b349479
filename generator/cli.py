"""What every command line here shares: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def describe_validation_error(e: ValidationError) -> str:
    """All pydantic errors on one line, each as ``field.path: message``."""
    parts = []
    for err in e.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
