"""``python -m generator preview DIR --index I --out F.png|F.gif``: look at one sample.

PNG: a contact sheet, one row per camera, frames evenly spaced in time, with
the labelled path projected through each camera (observed part solid, the
future frames dashed, the future position marked x). GIF: all four views
tiled, frame by frame, with the same overlay.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

from generator.dataformat.dataset import DatasetError, load_sample
from generator.dataformat.layout import enclosing_dataset
from trajkit.files import open_atomic


def _projected(meta: dict, label: dict, frame: int) -> list[np.ndarray]:
    """The label's whole path in each camera's image at ``frame``: with ``camera_motion``
    through that frame's pose (the label's ``cameras``), else through the rig's."""
    positions = np.asarray(label["positions"])
    posed = label.get("cameras")
    out = []
    for c, cam in enumerate(meta["cameras"]):
        K, R, t = (np.asarray(cam[k]) for k in ("K", "R", "t"))
        if posed is not None:
            R, t = np.asarray(posed[c]["R"][frame]), np.asarray(posed[c]["t"][frame])
        uvw = (positions @ R.T + t) @ K.T
        out.append(uvw[:, :2] / uvw[:, 2:3])
    return out


def _overlay(ax, uv: np.ndarray, frames: int, upto: int | None = None) -> None:
    obs = uv[:frames] if upto is None else uv[: upto + 1]
    ax.plot(obs[:, 0], obs[:, 1], "-", color="white", lw=0.8, alpha=0.8)
    ax.plot(uv[frames - 1 :, 0], uv[frames - 1 :, 1], "--", color="yellow", lw=0.8)
    ax.plot(uv[-1, 0], uv[-1, 1], "x", color="red", ms=6, mew=1.5)


def contact_sheet(
    video: np.ndarray, label: dict, meta: dict, out: BinaryIO, columns: int = 8
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cams, frames = video.shape[:2]
    picks = np.linspace(0, frames - 1, min(columns, frames)).round().astype(int)
    fig, axes = plt.subplots(
        cams, len(picks), figsize=(1.6 * len(picks), 1.7 * cams + 0.6), squeeze=False
    )
    size = video.shape[-1]
    for c in range(cams):
        for j, f in enumerate(picks):
            ax = axes[c, j]
            ax.imshow(video[c, f].transpose(1, 2, 0), interpolation="nearest")
            _overlay(ax, _projected(meta, label, int(f))[c], frames, upto=int(f))
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(f"frame {f + 1}", fontsize=8)
            if j == 0:
                ax.set_ylabel(meta["cameras"][c].get("name", f"cam{c}"), fontsize=8)
    fig.suptitle(_title(label, meta), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110, format="png")
    plt.close(fig)


def animation(video: np.ndarray, label: dict, meta: dict, out: BinaryIO) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    cams, frames = video.shape[:2]
    cols = 2 if cams > 1 else 1
    rows = -(-cams // cols)
    size = video.shape[-1]
    images = []
    for f in range(frames):
        fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows + 0.5), squeeze=False)
        uvs = _projected(meta, label, f)
        for c in range(rows * cols):
            ax = axes[c // cols, c % cols]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= cams:
                ax.axis("off")
                continue
            ax.imshow(video[c, f].transpose(1, 2, 0), interpolation="nearest")
            _overlay(ax, uvs[c], frames, upto=f)
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_title(meta["cameras"][c].get("name", f"cam{c}"), fontsize=8)
        fig.suptitle(f"{_title(label, meta)}\nframe {f + 1}/{frames}", fontsize=8)
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()))
        plt.close(fig)
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def _title(label: dict, meta: dict) -> str:
    fut = ", ".join(f"{x:.2f}" for x in label["future_position"])
    return (
        f"sample {label['index']}: {label['class_name']} (class {label['class_label']}); "
        f"future position at frame {meta['future_frame_index'] + 1}: ({fut})"
    )


def main(argv: list[str]) -> int:
    from trajkit.cli import OneLineParser

    p = OneLineParser(prog="python -m generator preview", description=__doc__.splitlines()[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--index", type=int, default=0)
    p.add_argument(
        "--out", type=Path, required=True, help="a .png (contact sheet) or .gif (animation)"
    )
    args = p.parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".gif"):
        print(f"error: --out must end in .png or .gif, got {args.out.name!r}", file=sys.stderr)
        return 2
    holder = enclosing_dataset(args.out)
    if holder is not None:  # a stray file there fails validate, and a push would carry it
        print(
            f"error: --out {args.out} is inside the dataset {holder}; write it elsewhere",
            file=sys.stderr,
        )
        return 2
    try:
        video, label, meta = load_sample(args.dir, args.index)
    except IndexError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DatasetError as e:  # damaged, unfinished or being written: exit 1, as validate's
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a name over the filesystem's limit
        print(f"error: cannot read {args.dir}: {e.strerror or e}", file=sys.stderr)
        return 2
    draw = contact_sheet if suffix == ".png" else animation
    try:  # a new folder for the picture is made, as a user asking for one expects
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open_atomic(args.out, fsync=False) as f:  # a failed write keeps the old picture
            draw(video, label, meta, f)
    except FileExistsError:  # from mkdir: the folder asked for is something else
        print(f"error: cannot write {args.out}: {args.out.parent} is not a folder", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
