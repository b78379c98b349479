"""Reading format v1: metadata, single samples, and ``TrajectoryDataset`` for training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from generator.store import FORMAT_VERSION, METADATA, Layout


class DatasetError(ValueError):
    """A dataset folder or file that cannot be read; the message names it."""


def read_metadata(root: str | Path) -> dict:
    root = Path(root)
    path = root / METADATA
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(
            f"{path} is missing: the dataset is incomplete (finish it with python -m generator --resume)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path} is damaged: {e}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{path} has format_version {version!r}; this reader knows {FORMAT_VERSION}"
        )
    return meta


def load_video(
    path: Path, shape: tuple[int, ...] | None = None, mmap: bool = False
) -> torch.Tensor:
    """A video tensor, loaded with ``weights_only=True``; damage or a wrong shape names the file."""
    try:
        video = torch.load(path, weights_only=True, mmap=mmap, map_location="cpu")
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except Exception as e:  # torch raises many types for a damaged zip or pickle
        raise DatasetError(
            f"{path} is damaged: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    if not isinstance(video, torch.Tensor) or video.dtype != torch.uint8:
        raise DatasetError(f"{path} does not hold a uint8 tensor")
    if shape is not None and tuple(video.shape) != tuple(shape):
        raise DatasetError(f"{path} has shape {tuple(video.shape)}, expected {tuple(shape)}")
    return video


def load_label(path: Path) -> dict:
    try:
        label = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path} is damaged: {e}") from None
    if not isinstance(label, dict):
        raise DatasetError(f"{path} is not a JSON object")
    return label


def load_sample(root: str | Path, index: int) -> tuple[np.ndarray, dict, dict]:
    """Video (numpy uint8), label and metadata of sample ``index``."""
    meta = read_metadata(root)
    if not 0 <= index < meta["total_samples"]:
        raise DatasetError(
            f"--index {index} is out of range: {root} holds {meta['total_samples']} samples"
        )
    layout = Layout(root, meta["stem_width"])
    video = load_video(layout.video(index), tuple(meta["video_shape"]))
    return video.numpy(), load_label(layout.label(index)), meta
