"""A bad argument on any command line is one line on stderr quoting it, and exit 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("arg, quoted", [("x\ny", r"'x\ny'"), ("a\u2028b\x85", r"'a\u2028b\x85'")])
def test_an_argument_with_a_control_character_is_quoted_once(arg, quoted, capsys):
    """It was quoted twice: the newline showed as ``\\\\n``."""
    from trajkit.cli import OneLineParser

    with pytest.raises(SystemExit):
        OneLineParser(prog="p").parse_args([arg])
    err = capsys.readouterr().err
    assert err == f"p: error: argument {quoted} holds a control character (see --help)\n", err
