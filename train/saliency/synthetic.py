"""Synthetic eye-tracking data: bright objects on dim noise, fixations Gaussian around them.

A stand-in with a known answer: where people "look" is decided by image content (the
objects, placed anywhere) plus a weaker pull to the centre, so a model that reads the
image must beat the centre-bias baseline in information gain. Written in the MIT1003
layout, so it goes through the same loaders as the real data.

``python -m train.saliency.synthetic OUT [--n 200] [--seed 0]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from train.saliency.density import fixation_density
from train.saliency.mit1003 import write_sample
from train.saliency.records import Sample
from trajkit.cli import (
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    one_line,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.lock import NewFolderError, new_folder
from trajkit.seeds import MAX_SEED

SIZES = ((60, 80), (80, 60), (64, 64), (48, 96))
OBJECT_SHARE = 0.85  # of fixations on objects; the rest follow a central Gaussian
# 100 times MIT1003: about 660 MB and minutes on 2 cores (6.6 kB, 3.7 ms a stimulus); a
# 20-digit --n was accepted and wrote for ever
MAX_STIMULI = 100_000


def synthetic_sample(rng: np.random.Generator, index: int, fixations_per_image: int = 24) -> Sample:
    h, w = SIZES[index % len(SIZES)]
    img = 0.25 + 0.08 * rng.standard_normal((h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    radius = 0.07 * min(h, w)
    centres = []
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(radius, h - radius), rng.uniform(radius, w - radius)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        img[disc] = rng.uniform(0.75, 1.0, size=3)
        centres.append((cx, cy))
    n_obj = int(round(fixations_per_image * OBJECT_SHARE))
    picks = rng.integers(0, len(centres), size=n_obj)
    obj = np.array([centres[k] for k in picks]) + rng.normal(0, radius * 0.7, size=(n_obj, 2))
    rest = np.array([w / 2, h / 2]) + rng.normal(0, 1, size=(fixations_per_image - n_obj, 2)) * [
        w / 4,
        h / 4,
    ]
    fix = np.concatenate([obj, rest])
    fix = fix[(fix[:, 0] >= 0) & (fix[:, 0] < w) & (fix[:, 1] >= 0) & (fix[:, 1] < h)]
    image = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return Sample(f"synthetic_{index:04d}.jpeg", "", image, np.floor(fix))


def write_synthetic(dst: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` synthetic stimuli to ``dst`` in the MIT1003 layout; return ``dst``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        s = synthetic_sample(rng, i)
        write_sample(Path(dst), s, fixation_density(s.fixations, s.size))
    return Path(dst)


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(
        prog="python -m train.saliency.synthetic", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("out", type=folder_arg)
    ap.add_argument("--n", type=whole_number(1, MAX_STIMULI), default=200, help="stimuli to write")
    ap.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0)
    args = ap.parse_args(argv)
    return exit_on_interrupt(
        lambda: _write(args), f"nothing of {args.out} was kept; run the same command again"
    )


def _write(args) -> int:
    try:
        with new_folder(args.out) as work:  # a half-written set would pass for a smaller one
            write_synthetic(work, args.n, args.seed)
    except NewFolderError as e:
        print(one_line(f"error: {e}"), file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(one_line(f"error: cannot write {args.out}: {failed_io(e)}"), file=sys.stderr)
        return 1
    print(f"wrote {args.n} synthetic stimuli to {args.out} (MIT1003 layout)")
    return 0


run = entry_point(main)  # python -m train.saliency.synthetic and its console script

if __name__ == "__main__":
    run()
