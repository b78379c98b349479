"""What every command line here shares: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from pydantic import ValidationError

# C0 and C1 controls and the Unicode line and paragraph separators: each ends a line for
# someone (str.splitlines breaks at \x85 and \u2028 too).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: object) -> str:
    """``text`` with control characters escaped (a newline becomes ``\\n``): an error that
    quotes a hostile value stays one line."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit 2.

    An argument holding a control character is refused: a NUL made every path call raise,
    and a newline in a path split the error lines that quote it.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        args = sys.argv[1:] if args is None else list(args)
        for arg in args:
            if isinstance(arg, str) and CONTROL.search(arg):
                self.error(f"argument {one_line(arg)!r} holds a control character")
        return super().parse_known_args(args, namespace)

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


def caused_by_interrupt(exc: BaseException | None) -> bool:
    """Whether Ctrl-C is behind ``exc``: a library may catch the KeyboardInterrupt and raise
    its own error from it (pydantic does, inside a serializer)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def exit_on_interrupt(command: Callable[[], int], message: str) -> int:
    """Run ``command``; Ctrl-C anywhere inside it is ``interrupted: message`` and exit 130."""
    try:
        return command()
    except BaseException as e:
        if not caused_by_interrupt(e):
            raise
        print(f"interrupted: {message}", file=sys.stderr)
        return 130
