"""``python -m extractors list``: every registered extractor with its size and cost per preset."""

from __future__ import annotations

import sys

from extractors.config import PRESET_NAMES, ExtractorConfigError
from extractors.cost import PRESET_CLIP_SHAPES, extractor_cost
from extractors.registry import UnknownExtractorError, get_extractor, list_extractors
from trajkit.cli import OneLineParser, entry_point, one_line, quiet_on_closed_output


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_table(
    names: list[str], presets: list[str], clip_shapes: dict[str, tuple[int, ...]]
) -> str:
    header = ["name", "preset", "params", "MACs/clip", "description"]
    rows = []
    for name in names:
        entry = get_extractor(name)
        for i, preset in enumerate(presets):
            params, macs = extractor_cost(name, preset, clip_shapes[preset])
            rows.append(
                [
                    name if i == 0 else "",
                    preset,
                    _human(params),
                    _human(macs),
                    entry.description if i == 0 else "",
                ]
            )
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    shapes = ", ".join(f"{p} {'x'.join(str(s) for s in clip_shapes[p])}" for p in presets)
    return "\n".join(
        [*lines, f"(MACs: one camera's clip as trained, {shapes}; FlopCounterMode FLOPs / 2)"]
    )


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

    try:
        names = args.names or list_extractors()
        for name in names:
            get_extractor(name)
        print(format_table(names, args.preset or list(PRESET_NAMES), PRESET_CLIP_SHAPES))
    except (UnknownExtractorError, ExtractorConfigError) as exc:
        print(one_line(f"error: {exc}"), file=sys.stderr)
        return 2
    return 0


run = entry_point(main)  # python -m extractors and its console script

if __name__ == "__main__":
    run()
