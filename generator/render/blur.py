"""Motion blur (opt-in: ``motion_blur: {samples: N, shutter: s}``): where a ball is within each shutter.

A frame's exposure spans ``shutter`` of the frame interval, centred on the frame's time;
the ball (and each distractor) is drawn at ``N`` instants spread evenly over it and the
frame shows their mean (``renderer.blend_instants``). Positions between frames come from
the cubic through the four nearest frames of the path (exact for the linear and
parabolic laws, within micrometres for the others at 30 fps), so no path is redrawn and a
blurred sample keeps its unblurred sample's labels. Elementwise arithmetic only: the same
bits on every machine.
"""

from __future__ import annotations

import numpy as np

from generator.config import MotionBlurConfig


def shutter_offsets(blur: MotionBlurConfig) -> np.ndarray:
    """The N instants' offsets from the frame's time, in frames: the middles of N equal slices."""
    n = blur.samples
    return ((np.arange(n) + 0.5) / n - 0.5) * blur.shutter


def instants(path: np.ndarray, frames: int, blur: MotionBlurConfig) -> np.ndarray:
    """Positions (N, frames, 3) within each observed frame's shutter, from ``path`` (F, 3) at whole frames."""
    count = len(path)
    nodes = min(4, count)
    times = np.arange(frames)[None, :] + shutter_offsets(blur)[:, None]  # (N, T), in frames
    first = np.clip(np.floor(times).astype(np.int64) - (nodes // 2 - 1), 0, count - nodes)
    x = times - first  # where each instant falls among its stencil's nodes 0..nodes-1
    out = np.zeros(times.shape + (3,))
    for j in range(nodes):  # Lagrange weights, multiplied out in a fixed order
        weight = np.ones_like(x)
        for m in range(nodes):
            if m != j:
                weight = weight * (x - m) / (j - m)
        out = out + weight[..., None] * path[first + j]
    return out
