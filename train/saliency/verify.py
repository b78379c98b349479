"""``python -m train.saliency.verify DIR``: what is present, what is missing, counts per category.

Exit 0 when every stimulus has fixations, 1 when some are missing (each kind of gap
is named with where to get it), 2 when DIR is no layout we know.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from tqdm import tqdm

from train.saliency.layouts import open_source, out_of_memory_reading, where_to_get
from train.saliency.records import LayoutError, SaliencySource, StimulusFileError
from trajkit.cli import (
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    one_line,
    path_arg,
    quiet_on_closed_output,
)


def inventory(src: SaliencySource, *, quiet: bool = True) -> dict:
    """Per-category counts of stimuli, stimuli with fixations, fixations and maps."""
    per_cat: dict[str, Counter] = {}
    no_fix, no_map = [], []
    for i in tqdm(range(len(src)), desc="verify", disable=quiet):
        s = src.load(i)
        c = per_cat.setdefault(s.category or "(none)", Counter())
        c["stimuli"] += 1
        c["fixations"] += len(s.fixations)
        if len(s.fixations):
            c["with_fixations"] += 1
        else:
            no_fix.append(s.key)
        if s.fixation_map is not None:
            c["with_maps"] += 1
        else:
            no_map.append(s.key)
    return {
        "dataset": src.dataset,
        "layout": src.layout,
        "root": str(src.root),
        "stimuli": len(src),
        "categories": {k: dict(v) for k, v in sorted(per_cat.items())},
        "missing_fixations": no_fix,
        "missing_maps": no_map,
    }


def report(inv: dict) -> str:
    lines = [
        f"found {inv['dataset']} in {inv['layout']} layout at {inv['root']}: "
        f"{inv['stimuli']} stimuli"
    ]
    lines.append(
        f"{'category':24s} {'stimuli':>8s} {'w/ fix':>8s} {'fixations':>10s} {'w/ map':>8s}"
    )
    for cat, c in inv["categories"].items():
        lines.append(
            f"{cat:24s} {c.get('stimuli', 0):8d} {c.get('with_fixations', 0):8d} "
            f"{c.get('fixations', 0):10d} {c.get('with_maps', 0):8d}"
        )
    where = where_to_get(inv["dataset"])
    if inv["layout"] == "hdf5":
        where += f" or a fresh pysaliency export ({where_to_get('pysaliency')})"
    if inv["missing_fixations"]:
        lines.append(
            f"missing fixations for {len(inv['missing_fixations'])} stimuli "
            f"(e.g. {inv['missing_fixations'][0]}); get them from {where}"
        )
    if inv["missing_maps"]:
        lines.append(
            f"missing fixation maps for {len(inv['missing_maps'])} stimuli "
            f"(e.g. {inv['missing_maps'][0]}); get them from {where}; "
            "training does not need them (maps are derived from fixations)"
        )
    if not inv["missing_fixations"] and not inv["missing_maps"]:
        lines.append("nothing missing")
    return "\n".join(map(one_line, lines))  # a newline in a file name splits no line


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m train.saliency.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=path_arg)
    ap.add_argument("--json", action="store_true", help="print the inventory as JSON")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    return exit_on_interrupt(lambda: _verify(args), "verify reads only; nothing was changed")


def _verify(args: argparse.Namespace) -> int:
    try:
        src = open_source(args.root)
    except LayoutError as err:  # a damaged file the layout lists is bad data, not a bad argument
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1 if isinstance(err, StimulusFileError) else 2
    if len(src) == 0:
        print(
            one_line(
                f"error: {args.root}: {src.dataset} layout but no stimuli in it; get them from "
                f"{where_to_get(src.dataset)}"
            ),
            file=sys.stderr,
        )
        return 1
    try:
        inv = inventory(src, quiet=args.quiet or not sys.stderr.isatty())
    except LayoutError as err:
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1
    except MemoryError as err:
        print(out_of_memory_reading(args.root, err), file=sys.stderr)
        return 1
    print(json.dumps(inv, indent=2) if args.json else report(inv))
    return 1 if inv["missing_fixations"] else 0


run = entry_point(main)  # python -m train.saliency.verify and its console script

if __name__ == "__main__":
    run()
