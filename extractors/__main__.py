"""``python -m extractors list``: every registered extractor with its size and cost per preset."""

from __future__ import annotations

import argparse
import sys

from extractors.config import PRESET_NAMES  # pydantic, which trajkit.cli loads anyway
from trajkit.cli import (
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    first_line,
    load_modules,
    one_line,
    quiet_on_closed_output,
)


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_table(
    names: list[str], presets: list[str], clip_shapes: dict[str, tuple[int, ...]]
) -> tuple[str, list[str]]:
    """The table, and one warning line per extractor and error that left its cells as "?":
    a plugin whose model breaks the contract, or fails to build or run, must not take the
    other rows down."""
    from extractors.cost import extractor_cost
    from extractors.registry import get_extractor

    header = ["name", "preset", "params", "MACs/clip", "description"]
    rows = []
    broken: list[str] = []
    failed: dict[tuple[str, str], list[str]] = {}  # (name, error) -> the presets it failed at
    for name in names:
        entry = get_extractor(name)
        contract_broken = contract_warning(name)
        if contract_broken:
            broken.append(contract_broken)
        for i, preset in enumerate(presets):
            params = macs = "?"
            if not contract_broken:
                try:
                    params, macs = map(_human, extractor_cost(name, preset, clip_shapes[preset]))
                except Exception as exc:  # anything a third party's factory or forward raises
                    error = first_line(f"{type(exc).__name__}: {exc}")
                    failed.setdefault((name, error), []).append(preset)
            rows.append(
                [
                    name if i == 0 else "",
                    preset,
                    params,
                    macs,
                    entry.description if i == 0 else "",
                ]
            )
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    shapes = ", ".join(f"{p} {'x'.join(str(s) for s in clip_shapes[p])}" for p in presets)
    table = "\n".join(
        [*lines, f"(MACs: one camera's clip as trained, {shapes}; FlopCounterMode FLOPs / 2)"]
    )
    warnings = broken + [
        one_line(
            f"warning: extractor {name!r} ({get_extractor(name).module}) could not be "
            f"measured at {', '.join(at)}: {error}"
        )
        for (name, error), at in failed.items()
    ]
    return table, warnings


def contract_warning(name: str) -> str | None:
    """``warning: ...`` when extractor ``name`` breaks the contract, else None. A tiny preset
    of its own that fails to validate is left to the measuring, which says how."""
    from extractors.registry import ExtractorContractError, check_contract

    try:
        check_contract(name)
    except ExtractorContractError as exc:
        return f"warning: {exc}"
    except Exception:  # the preset, not the model: the measuring's warning names it
        pass
    return None


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m extractors", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    lister = sub.add_parser("list", help="registered extractors, parameters and MACs per preset")
    lister.add_argument("names", nargs="*", help="only these extractors (default: all)")
    lister.add_argument(
        "--preset",
        action="append",
        choices=PRESET_NAMES,
        help="only this preset (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    load_modules("extractors.cost")  # torch and the built-in extractors: seconds
    return exit_on_interrupt(
        lambda: list_command(args, lister.prog), "listing reads only; nothing was changed"
    )


def list_command(args: argparse.Namespace, prog: str) -> int:
    from extractors.cost import PRESET_CLIP_SHAPES
    from extractors.registry import UnknownExtractorError, get_extractor, list_extractors

    names = list(dict.fromkeys(args.names)) or list_extractors()  # a name given twice: one row
    try:
        for name in names:
            get_extractor(name)
    except UnknownExtractorError as exc:  # a bad argument, said as argparse says its own
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    presets = list(dict.fromkeys(args.preset or PRESET_NAMES))
    table, problems = format_table(names, presets, PRESET_CLIP_SHAPES)
    for warning in problems:
        print(warning, file=sys.stderr)
    print(table)
    return 0


run = entry_point(main)  # python -m extractors and its console script

if __name__ == "__main__":
    run()
