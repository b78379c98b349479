"""Per-frame ground truth of the target ball (opt-in: ``ground_truth: {enabled: true}``).

For every camera and observed frame a label's ``ground_truth.cameras[c]`` holds lists
over frames:

- ``uv``: the ball centre's pixel (u = column, v = row, pixel centres at integers),
  ``K (R X + t)`` of its world position with the dataset's cameras;
- ``depth``: the centre's depth along the camera's optical axis, metres;
- ``visible_fraction``: the share of the ball's drawn coverage that is not hidden by
  pillars or distractors (1 when nothing is in front of it);
- ``visibility``: ``"out_of_frame"`` when the centre is behind the camera or outside the
  image ``[-0.5, size - 0.5]``, else ``"occluded"`` when under half of the ball shows,
  else ``"visible"``;
- with ``masks: true``, ``mask_rle``: the pixels where more than half of the pixel
  shows the ball, row-major run lengths alternating off/on, starting with an off
  run (possibly 0), summing to ``size * size``.

With ``camera_motion``, the cameras move: ``uv`` and ``depth`` of frame f use frame f's
pose, stored in the label's own ``cameras`` (per camera ``K`` (3, 3), ``R`` (frames, 3, 3),
``t`` (frames, 3)); the metadata's cameras are then the rig's nominal pose.

``check_ground_truth`` re-derives all of it from the label's positions and cameras (the
label's per-frame poses when it has them, else the metadata's) with its own arithmetic,
so a wrong projection or flag is caught.
"""

from __future__ import annotations

import numpy as np

from generator.render.cameras import Camera
from trajkit.cli import short_repr

VISIBLE, OCCLUDED, OUT_OF_FRAME = "visible", "occluded", "out_of_frame"
OCCLUDED_BELOW = 0.5  # visible fraction under which an in-frame ball counts as occluded
PIXEL_TOLERANCE = 1e-6  # stored (u, v) against the re-derived projection


def in_frame(uv: np.ndarray, depth: np.ndarray, size: int) -> np.ndarray:
    inside = (uv >= -0.5) & (uv <= size - 0.5)
    return (depth > 0) & inside[..., 0] & inside[..., 1]


def encode_mask(mask: np.ndarray) -> list[int]:
    """Row-major run lengths of a boolean mask, alternating off/on, starting with off."""
    flat = mask.ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return [0, *runs] if flat.size and flat[0] else runs


def decode_mask(runs: list[int], size: int) -> np.ndarray:
    """The boolean ``size`` x ``size`` mask of ``encode_mask``'s runs; a run that is not a
    whole number of pixels, or runs that do not cover the image, are a ``ValueError`` saying
    which (a negative run was reported as "runs sum to 1024, not 1024")."""
    if not isinstance(runs, list):
        raise ValueError(f"{short_repr(runs)} is not a list of runs")
    for k, r in enumerate(runs):
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
            raise ValueError(f"run {k} is {short_repr(r)}, not a whole number of pixels")
        if r < 0:
            raise ValueError(f"run {k} is {short_repr(r)}, a negative number of pixels")
    if sum(runs) != size * size:
        raise ValueError(f"runs sum to {short_repr(sum(runs))}, not {size * size}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(size, size)


def ground_truth(
    cams: list[Camera],
    size: int,
    positions: np.ndarray,
    coverage: np.ndarray,
    visible: np.ndarray,
    masks: bool,
) -> dict:
    """The record for one sample: ``positions`` (T, 3) observed; coverage and visible (V, T, S, S)."""
    cameras = []
    for i, cam in enumerate(cams):
        uv, depth = cam.project(positions)
        drawn = coverage[i].sum(axis=(1, 2))
        shown = visible[i].sum(axis=(1, 2))
        fraction = np.where(drawn > 0, shown / np.maximum(drawn, 1e-12), 1.0)
        inside = in_frame(uv, depth, size)
        status = np.where(
            ~inside, OUT_OF_FRAME, np.where(fraction < OCCLUDED_BELOW, OCCLUDED, VISIBLE)
        )
        record = {
            "uv": uv.tolist(),
            "depth": depth.tolist(),
            "visible_fraction": np.round(fraction, 6).tolist(),
            "visibility": status.tolist(),
        }
        if masks:
            record["mask_rle"] = [encode_mask(frame > 0.5) for frame in visible[i]]
        cameras.append(record)
    return {"cameras": cameras}


def check_ground_truth(label: dict, meta: dict) -> list[str]:
    """Problems with ``label``'s ground truth against ``meta``'s cameras; [] when it holds.

    Independent of the renderer: plain matrix products ``K (R X + t)`` of the label's
    positions, the image bounds from ``video_shape``, the ball's projected radius from
    its size. A label with per-frame poses (``cameras``) is checked against those, frame
    by frame. Labels of a dataset without ground truth have nothing to check.
    """
    section = meta.get("config", {}).get("ground_truth")
    if not isinstance(section, dict) or section.get("enabled", True) is False:
        return []
    stem = f"label {label.get('index')}"
    gt = label.get("ground_truth")
    if not isinstance(gt, dict) or not isinstance(gt.get("cameras"), list):
        return [f"{stem}: no ground_truth.cameras"]
    try:
        cams = list(meta["cameras"])
        frames, size = int(meta["frames"]), int(meta["video_shape"][-1])
        posed = label.get("cameras")
        if posed is not None:
            if len(posed) != len(cams):
                return [f"{stem}: poses for {len(posed)} cameras, metadata has {len(cams)}"]
            cams = [_per_frame(cam, frames) for cam in posed]
        X = np.asarray(label["positions"], dtype=np.float64)[:frames].reshape(frames, 3)
        radius_m = float(label["appearance"]["ball_radius"])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        return [f"{stem}: cannot check ground truth, positions or cameras unreadable ({e!r})"]
    if len(gt["cameras"]) != len(cams):
        return [f"{stem}: ground truth for {len(gt['cameras'])} cameras, metadata has {len(cams)}"]
    problems = []
    for c, (cam, rec) in enumerate(zip(cams, gt["cameras"], strict=True)):
        K, R, t = (np.asarray(cam[k], dtype=np.float64) for k in ("K", "R", "t"))
        if R.ndim == 3:  # a pose per frame
            Xc = np.einsum("fij,fj->fi", R, X) + t
        else:
            Xc = X @ R.T + t
        uvw = Xc @ K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / uvw[:, 2:3]
        depth = Xc[:, 2]
        try:
            stored_uv = np.asarray(rec["uv"], dtype=np.float64).reshape(frames, 2)
            stored_depth = np.asarray(rec["depth"], dtype=np.float64).reshape(frames)
            fraction = np.asarray(rec["visible_fraction"], dtype=np.float64).reshape(frames)
            status = list(rec["visibility"])
        except (KeyError, ValueError, TypeError) as e:
            problems.append(f"{stem} camera {c}: malformed ground truth ({e})")
            continue
        if len(status) != frames:
            problems.append(
                f"{stem} camera {c}: {len(status)} visibility flags for {frames} frames"
            )
            continue
        off = np.abs(stored_uv - uv).max(axis=1)
        bad = np.flatnonzero(~(off <= PIXEL_TOLERANCE))
        if bad.size:
            f = int(bad[0])
            problems.append(
                f"{stem} camera {c} frame {f}: uv {stored_uv[f].tolist()} is "
                f"{off[f]:.3g} px from K (R X + t) = {uv[f].tolist()}"
            )
        if not np.allclose(stored_depth, depth, rtol=0, atol=1e-9):
            problems.append(f"{stem} camera {c}: depth differs from the camera-frame z")
        if ((fraction < 0) | (fraction > 1)).any():
            problems.append(f"{stem} camera {c}: visible_fraction outside [0, 1]")
        inside = in_frame(uv, depth, size)
        expected = np.where(
            ~inside, OUT_OF_FRAME, np.where(fraction < OCCLUDED_BELOW, OCCLUDED, VISIBLE)
        )
        wrong = [f for f in range(frames) if status[f] != expected[f]]
        if wrong:
            f = wrong[0]
            problems.append(
                f"{stem} camera {c} frame {f}: visibility {status[f]!r}, geometry and "
                f"visible_fraction {fraction[f]:.3g} say {str(expected[f])!r}"
            )
        if "mask_rle" in rec:
            problems += _check_masks(stem, c, rec["mask_rle"], uv, depth, K, radius_m, size)
    return problems


def _per_frame(cam: dict, frames: int) -> dict:
    """A label's camera as arrays K (3, 3), R (frames, 3, 3), t (frames, 3); ValueError if not."""
    K = np.asarray(cam["K"], dtype=np.float64).reshape(3, 3)
    R = np.asarray(cam["R"], dtype=np.float64).reshape(frames, 3, 3)
    t = np.asarray(cam["t"], dtype=np.float64).reshape(frames, 3)
    return {"K": K, "R": R, "t": t}


def _check_masks(
    stem: str,
    c: int,
    runs: list,
    uv: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    radius_m: float,
    size: int,
) -> list[str]:
    """Each mask lies within the ball's projected disc (plus a pixel)."""
    if len(runs) != len(uv):
        return [f"{stem} camera {c}: {len(runs)} masks for {len(uv)} frames"]
    for f, frame_runs in enumerate(runs):
        try:
            mask = decode_mask(frame_runs, size)
        except (ValueError, TypeError) as e:
            return [f"{stem} camera {c} frame {f}: mask_rle unreadable ({e})"]
        if not mask.any():
            continue
        if depth[f] <= 0:
            return [f"{stem} camera {c} frame {f}: mask shows a ball behind the camera"]
        reach = K[0, 0] * radius_m / depth[f] + 1.0
        rows, cols = np.nonzero(mask)  # the ball's few pixels, not the whole image
        far = np.hypot(cols - uv[f, 0], rows - uv[f, 1]).max()
        if far > reach:
            return [
                f"{stem} camera {c} frame {f}: mask reaches {far:.1f} px from the centre, "
                f"the ball's radius is {reach - 1.0:.1f} px"
            ]
    return []
