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


@pytest.mark.parametrize(
    "argv",
    [
        ["--epochs", "9" * 5000],  # past Python's digit limit: "expected a whole number"
        ["--epochs", "1" + "0" * 4000],  # a number, out of range
        ["--device", "a" * 5000],  # argparse's invalid choice
    ],
)
def test_a_huge_argument_is_quoted_by_its_ends_in_a_short_line(argv, capsys):
    """Each was quoted whole: a 5 KB error line."""
    from trajkit.cli import OneLineParser, whole_number

    parser = OneLineParser(prog="p")
    parser.add_argument("--epochs", type=whole_number(1, 100))
    parser.add_argument("--device", choices=("cpu", "cuda"))
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("p: error: argument ") and err.endswith(" (see --help)\n"), err
    assert err.count("\n") == 1 and len(err) < 400, err
    assert argv[1][:50] in err and f"...{argv[1][-50:]}" in err, err  # its ends, not all
