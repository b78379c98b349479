"""``python -m train.saliency.convert SRC DST --to images|hdf5``.

Converts between a dataset's original image layout and pysaliency's HDF5 export,
then reopens DST and checks that its loader yields what the source's loader yields:
the same stimuli, identical pixels, the same fixation points.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from train.saliency import cat2000, mit1003, pysaliency_hdf5
from train.saliency.density import fixation_density
from train.saliency.layouts import open_source, out_of_memory_reading
from train.saliency.records import LayoutError, SaliencySource, StimulusFileError
from trajkit.cli import (
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    one_line,
    path_arg,
    quiet_on_closed_output,
)
from trajkit.lock import NewFolderError, new_folder


class Mismatch(Exception):
    """The converted set does not load as the source does: it must not be published."""

    def __init__(self, problems: list[str]):
        super().__init__(problems)
        self.problems = problems


def convert(src: SaliencySource, dst: Path, to: str, *, quiet: bool = True) -> int:
    """Write every stimulus of ``src`` into ``dst`` in layout ``to``; return the count."""
    samples = (src.load(i) for i in tqdm(range(len(src)), desc="convert", disable=quiet))
    if to == "hdf5":
        prefix = "Stimuli" if src.dataset == "CAT2000" else "stimuli"
        return pysaliency_hdf5.write_dataset(dst, samples, prefix)
    base = dst / "trainSet" if src.dataset == "CAT2000" else dst
    writer = cat2000.write_sample if src.dataset == "CAT2000" else mit1003.write_sample
    n = 0
    for s in samples:
        fmap = (
            s.fixation_map if s.fixation_map is not None else fixation_density(s.fixations, s.size)
        )
        writer(base, s, fmap)
        n += 1
    return n


def _stem(key: str) -> str:
    return str(Path(key).with_suffix(""))


def _points(fix: np.ndarray) -> set[tuple[int, int]]:
    return {(int(x), int(y)) for x, y in np.rint(fix).astype(int)}


def compare(a: SaliencySource, b: SaliencySource) -> list[str]:
    """Differences between what two loaders yield, one line each (empty: the same).

    Fixation points are compared as sets of pixels: the image layouts store them as
    binary masks, which keep neither sub-pixel position nor repeats.
    """
    problems = []
    index_b = {_stem(r.key): i for i, r in enumerate(b.refs)}
    if len(a) != len(b):
        problems.append(f"stimulus count {len(a)} != {len(b)}")
    for i, ref in enumerate(a.refs):
        j = index_b.get(_stem(ref.key))
        if j is None:
            problems.append(f"{ref.key}: missing after conversion")
            continue
        sa, sb = a.load(i), b.load(j)
        if sa.category != sb.category:
            problems.append(f"{ref.key}: category {sa.category!r} != {sb.category!r}")
        if sa.image.shape != sb.image.shape:
            problems.append(f"{ref.key}: image shape {sa.image.shape} != {sb.image.shape}")
        elif not np.array_equal(sa.image, sb.image):
            diff = np.abs(sa.image.astype(int) - sb.image.astype(int)).mean()
            if diff > 3.0:
                problems.append(f"{ref.key}: pixels differ (mean abs {diff:.2f})")
        if _points(sa.fixations) != _points(sb.fixations):
            problems.append(
                f"{ref.key}: fixation points differ ({len(sa.fixations)} vs {len(sb.fixations)})"
            )
    return problems


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(
        prog="python -m train.saliency.convert", description=__doc__.split("\n\n")[1]
    )
    ap.add_argument("src", type=path_arg)
    ap.add_argument("dst", type=folder_arg)
    ap.add_argument("--to", choices=["images", "hdf5"], required=True)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    return exit_on_interrupt(
        lambda: _convert(args), f"nothing of {args.dst} was kept; run the same command again"
    )


def _convert(args) -> int:
    quiet = args.quiet or not sys.stderr.isatty()
    try:
        src = open_source(args.src)
    except LayoutError as err:  # a damaged file the layout lists is bad data, as in verify
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1 if isinstance(err, StimulusFileError) else 2
    if src.layout == args.to:
        print(one_line(f"error: {args.src} is already in {args.to} layout"), file=sys.stderr)
        return 2
    try:
        with new_folder(args.dst) as work:
            print(f"found {src.describe()}")
            n = convert(src, work, args.to, quiet=quiet)
            problems = compare(src, open_source(work))
            if problems:  # leaving the block by an error keeps nothing of the copy
                raise Mismatch(problems)
    except NewFolderError as err:
        print(one_line(f"error: {err}"), file=sys.stderr)
        return err.exit_code
    except Mismatch as err:
        for p in err.problems[:20]:
            print(one_line(f"mismatch: {p}"), file=sys.stderr)
        print(
            one_line(
                f"error: the check after converting {n} stimuli found {len(err.problems)} "
                f"differences; nothing was written to {args.dst}"
            ),
            file=sys.stderr,
        )
        return 1
    except LayoutError as err:  # a damaged source: no half copy
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1
    except OSError as err:  # a full disk: no half copy
        print(f"error: {failed_io(err)}", file=sys.stderr)
        return 1
    except MemoryError as err:
        print(out_of_memory_reading(args.src, err), file=sys.stderr)
        return 1
    print(f"converted {n} stimuli to {args.dst} ({args.to}); loader output checked identical")
    return 0


run = entry_point(main)  # python -m train.saliency.convert and its console script

if __name__ == "__main__":
    run()
