"""Sample access for both layouts of format v1: per-sample files ("pt") or tar shards ("shards").

``open_source(root, meta)`` is the one way in; ``read(index)`` returns the
video (torch uint8, shape from metadata) and its label.

Why a map-style index and not a streaming ``IterableDataset`` over shards:
every training split, shuffle and camera subset here is chosen by sample
index (``split_indices``), and DataLoader workers must each see a disjoint
part of a split. The checkpoint manifests already record each sample's shard,
byte offset and compressed length, so one sample costs one seek and one
~1.3 MB read (and decompression, unless the shards are plain tars); memory per worker is one sample, never a
shard, and the shuffle is exact rather than a buffer's approximation.

Every file is opened only once it is known to be a regular file inside the
dataset folder (a FIFO or a link to ``/dev/zero`` would hang a read), data
files only at the size their manifest records, every video (but a zstd shard's, whose frame
has a checksum) and label is hashed against its manifest, each label's ``video_sha256``
must be its manifest's, and every JSON file is checked
against its schema (``pydantic``, strict types): damage of any kind is a
``DatasetError`` naming the file, never another exception.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import stat
from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from generator.config import (
    KNOWN_CLASS_NAMES,
    MAX_FRAMES,
    MAX_HORIZON,
    MAX_IMAGE_SIZE,
    MIN_FRAMES,
    MIN_IMAGE_SIZE,
)
from generator.dataformat.layout import (
    FORMATS,
    MAX_STEM_WIDTH,
    MIN_STEM_WIDTH,
    Layout,
    manifest_limit,
    stem_width,
)
from trajkit.cli import error_message, first_line, short_repr
from trajkit.files import loads_json
from trajkit.seeds import MAX_SEED


class DatasetError(ValueError):
    """A dataset folder or file that cannot be read; the message names it."""


# ------------------------------------------------------------------ files

_KINDS = {
    stat.S_IFREG: "a file",
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def kind_of(mode: int) -> str:
    """What a ``stat`` mode is, as an error line names it ("a FIFO")."""
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def regular_size(path: Path, root: Path) -> int:
    """The size of ``path`` if it is a regular file inside ``root`` (a symlink may point within it)."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            real, inside = os.path.realpath(path), os.path.realpath(root)
            if os.path.commonpath([real, inside]) != inside:
                raise DatasetError(f"{path} is a symlink out of the dataset folder (to {real})")
            st = os.stat(real)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except OSError as e:
        raise DatasetError(f"{path} cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(f"{path} is {kind_of(st.st_mode)}, not a regular file")
    return st.st_size


def read_file(path: Path, root: Path, size: int | None = None, limit: int | None = None) -> bytes:
    """The bytes of a regular file inside ``root``; ``size``, if given, is what it must hold,
    and ``limit`` the most that a file small by design may (a huge one is not read whole)."""
    found = regular_size(path, root)
    if size is not None and found != size:
        raise DatasetError(f"{path} has {found} bytes; its manifest records {size}")
    if limit is not None and found > limit:
        raise DatasetError(f"{path} is damaged: {found} bytes, more than such a file holds")
    try:
        with open(path, "rb") as f:
            return f.read(found)
    except OSError as e:
        raise DatasetError(f"{path} cannot be read ({e.strerror})") from None
    except MemoryError:  # past what any bound here allows: a sparse file, or a forged name
        raise DatasetError(f"{path} is damaged: {found} bytes, more than memory holds") from None


# The largest label measured, the "hard" config with every ground-truth option (masks too) at
# 128 px: 65.6 kB for 4 cameras x 42 positions (32 frames, horizon 10), under 400 bytes per
# camera and position with under one byte of mask runs per pixel row; the rest (appearance,
# pillars) under 4 kB. The bound allows 16 times that, whatever options are on.
LABEL_BYTES_PER_VIEW_POSITION = 512
LABEL_BYTES_FIXED = 4096
LABEL_MARGIN = 16


def label_limit(video_shape: Collection[int], horizon: int | None) -> int:
    """The most bytes a label of clips of ``video_shape`` (cameras, frames, 3, H, W) may hold:
    a generous bound, so a larger file is damaged and not read whole (a 100 GB sparse one was
    a MemoryError). ``horizon`` None (older metadata) allows the longest."""
    views, frames, _, size, _ = video_shape
    positions = frames + (MAX_HORIZON if horizon is None else horizon)
    per_view_position = LABEL_BYTES_PER_VIEW_POSITION + size
    return LABEL_MARGIN * (LABEL_BYTES_FIXED + views * positions * per_view_position)


def parse_json(path: Path, data: bytes) -> Any:
    """JSON bytes as Python; bad UTF-8 or syntax, nesting too deep for the parser, a number
    past Python's 4,300 digits: each a ``DatasetError`` naming the file."""
    try:
        return loads_json(data)
    except ValueError as e:  # UnicodeDecodeError, JSONDecodeError and deep nesting among them
        raise DatasetError(f"{path} is damaged: {first_line(e)}") from None


def schema_error(path: Path, e: ValidationError) -> DatasetError:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return DatasetError(f"{path} is damaged: {where + ': ' if where else ''}{error_message(err)}")


def read_model(
    path: Path, root: Path, model: type[BaseModel], limit: int | None = None
) -> tuple[BaseModel, dict]:
    """A JSON file checked against ``model``: the model and the plain dict."""
    data = read_file(path, root, limit=limit)
    try:
        return model.model_validate_json(data), json.loads(data)
    except ValidationError as e:
        raise schema_error(path, e) from None


# ------------------------------------------------------------------ schemas


class _Record(BaseModel):
    """Strict JSON types (no "5" for 5), and no NaN or infinity (Python's JSON reads them; no
    generator writes one); extra keys are allowed."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


def _matrix(v: list[list[float]], rows: int, what: str) -> None:
    if len(v) != rows or any(len(row) != 3 for row in v):
        raise ValueError(f"{what} must be {rows} x 3")


class PosedCamera(_Record):
    """One camera of a label's ``cameras`` (``camera_motion``): ``K`` (3, 3), and per frame
    ``R`` (frames, 3, 3) and ``t`` (frames, 3)."""

    K: list[list[float]]
    R: list[list[list[float]]]
    t: list[list[float]]

    @model_validator(mode="after")
    def _shapes(self) -> PosedCamera:
        _matrix(self.K, 3, "K")
        for r in self.R:
            _matrix(r, 3, "each R")
        _matrix(self.t, len(self.R), "t (one per R)")
        return self


class Label(_Record):
    """The schema every label satisfies; validated with ``context=label_context(meta)``,
    ``class_label`` must index the dataset's classes (else any known class)."""

    index: int
    class_label: int
    class_name: str
    future_frame: int
    future_position: list[float]
    positions: list[list[float]]
    trajectory_params: dict
    appearance: dict
    seed: list[int]
    video_sha256: str
    cameras: list[PosedCamera] | None = None  # per-frame poses, with ``camera_motion``

    @field_validator("class_label")
    @classmethod
    def _known_class(cls, v: int, info: ValidationInfo) -> int:
        count = (info.context or {}).get("num_classes", len(KNOWN_CLASS_NAMES))
        if not 0 <= v < count:
            raise ValueError(f"class_label {short_repr(v)} is not one of 0..{count - 1}")
        return v

    @field_validator("future_position")
    @classmethod
    def _xyz(cls, v: list[float]) -> list[float]:
        if len(v) != 3:
            raise ValueError("future_position must have 3 coordinates")
        return v

    @field_validator("positions")
    @classmethod
    def _points(cls, v: list[list[float]]) -> list[list[float]]:
        if any(len(p) != 3 for p in v):
            raise ValueError("every position must have 3 coordinates")
        return v


def label_context(meta: dict) -> dict:
    """What a label is validated against: the number of the dataset's classes."""
    return {"num_classes": len(meta["classes"])}


class Entry(_Record):
    """A sample's line in a checkpoint manifest (shard, offset, length in the "shards" layout)."""

    index: int
    stem: str
    class_label: int
    video_sha256: str
    label_sha256: str
    video_bytes: int
    shard: str | None = None
    offset: int | None = None
    length: int | None = None


class ShardLine(_Record):
    name: str
    start: int
    end: int
    sha256: str
    bytes: int


class Manifest(_Record):
    format_version: int
    start: int
    end: int
    seed: int
    elapsed_seconds: float
    created: str
    samples: list[Entry]
    shards: list[ShardLine] | None = None


def read_manifest(path: Path, root: Path) -> tuple[Manifest, dict]:
    """A checkpoint manifest, its size bounded by its name (``manifest_limit``)."""
    return read_model(path, root, Manifest, limit=manifest_limit(path))


class Camera(_Record):
    name: str
    azimuth_deg: float
    elevation_deg: float
    K: list[list[float]]
    R: list[list[float]]
    t: list[float]


class Metadata(_Record):
    """``metadata.json``; keys older datasets may lack have defaults, and the values must be
    what a generator writes (``_as_generated``)."""

    format_version: int
    render_version: int = 1
    format: Literal["pt", "shards"] = "pt"
    total_samples: int
    class_distribution: dict[str, int]
    classes: list[str]
    generation_time_seconds: float
    timestamp: str
    video_shape: list[int]
    video_layout: str | None = None
    dtype: str
    seed: int
    stem_width: int
    frames: int | None = None
    horizon: int | None = None
    future_frame_index: int | None = None
    fps: float | None = None
    scene_extent: float | None = None
    scene_bounds: dict[str, list[float]] | None = None
    cameras: list[Camera]
    projection: str | None = None
    checkpoints: list[str] | None = None
    config: dict
    shards: dict | None = None

    @field_validator("video_shape")
    @classmethod
    def _five_axes(cls, v: list[int]) -> list[int]:
        if len(v) != 5 or min(v) < 1:
            raise ValueError("video_shape must be 5 positive sizes (cameras, frames, 3, H, W)")
        return v

    @field_validator("stem_width", "total_samples")
    @classmethod
    def _not_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must not be negative")
        return v

    @model_validator(mode="after")
    def _as_generated(self) -> Metadata:
        """Refuse what no generator writes: counts, names, shape and timing that contradict
        one another or the config's bounds (a reader would allocate, or a stem be formatted
        to, a size no dataset has)."""
        problem = _count_problem(self) or _clip_problem(self)
        if problem:
            raise ValueError(problem)
        return self


def _count_problem(md: Metadata) -> str | None:
    counts = md.class_distribution
    if set(counts) != set(md.classes) or min(counts.values(), default=0) < 0:
        return f"class_distribution must count each of the classes {short_repr(md.classes)}"
    if sum(counts.values()) != md.total_samples:
        return f"total_samples {short_repr(md.total_samples)} is not the sum of class_distribution"
    if not MIN_STEM_WIDTH <= md.stem_width <= MAX_STEM_WIDTH:
        return f"stem_width {short_repr(md.stem_width)} is not {MIN_STEM_WIDTH}..{MAX_STEM_WIDTH}"
    if stem_width(md.total_samples) > md.stem_width:
        return f"stem_width {md.stem_width} cannot name {short_repr(md.total_samples)} samples"
    if not 0 <= md.seed <= MAX_SEED:
        return f"seed {short_repr(md.seed)} is not 0..{MAX_SEED}"
    if md.generation_time_seconds < 0:
        return "generation_time_seconds must not be negative"
    return None


def _clip_problem(md: Metadata) -> str | None:
    views, frames, channels, height, width = md.video_shape
    if views != len(md.cameras):
        return f"video_shape has {short_repr(views)} cameras, cameras lists {len(md.cameras)}"
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        return f"video_shape's frames must be {MIN_FRAMES}..{MAX_FRAMES}"
    if md.frames not in (None, frames):
        return f"frames {short_repr(md.frames)} differs from video_shape's {frames}"
    if channels != 3 or height != width or not MIN_IMAGE_SIZE <= width <= MAX_IMAGE_SIZE:
        sides = f"{MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE}"
        return f"video_shape must end in 3 channels of square images, {sides} pixels a side"
    if md.horizon is not None and not 1 <= md.horizon <= MAX_HORIZON:
        return f"horizon must be 1..{MAX_HORIZON}"
    future = md.future_frame_index
    if future is not None and md.horizon is not None and future != frames - 1 + md.horizon:
        return "future_frame_index must be frames - 1 + horizon"
    if md.fps is not None and md.fps <= 0:
        return "fps must be above 0"
    bounds = md.scene_bounds
    if bounds is not None and (
        sorted(bounds) != ["x", "y", "z"]
        or any(len(b) != 2 or b[0] > b[1] for b in bounds.values())
    ):
        return "scene_bounds must give x, y and z as [lo, hi]"
    if md.scene_extent is not None and md.scene_extent <= 0:
        return "scene_extent must be above 0"
    return None


class Fingerprint(_Record):
    """``checkpoints/fingerprint.json``: what ``--resume`` checks; it must agree with the metadata."""

    format_version: int
    render_version: int = 1
    seed: int
    stem_width: int
    config: dict
    layout: dict | None = None


def check_fingerprint(layout: Layout, meta: dict) -> None:
    """The fingerprint parses and names the seed, stem width, config and renderer of the metadata."""
    fp, _ = read_model(layout.fingerprint, layout.root, Fingerprint)
    md = Metadata.model_validate(meta)
    for key in ("seed", "stem_width", "render_version", "config"):
        if getattr(fp, key) != getattr(md, key):
            raise DatasetError(f"{layout.fingerprint} differs from metadata.json in {key!r}")


# ------------------------------------------------------------------ manifests


class Index:
    """What the manifests record of every sample, in compact arrays (a DataLoader worker forks with it)."""

    def __init__(self, layout: Layout, meta: dict) -> None:
        n = meta["total_samples"]
        entries: dict[int, Entry] = {}
        shards: dict[str, ShardLine] = {}
        for path in manifest_paths(layout, meta):
            m, _ = read_manifest(path, layout.root)
            entries.update((e.index, e) for e in m.samples)
            shards.update((s.name, s) for s in m.shards or [])
        missing, first = uncovered(n, entries)
        if missing:
            raise DatasetError(
                f"{layout.root}: {missing} samples are in no checkpoint manifest (first {first})"
            )
        rows = [entries[i] for i in range(n)]
        self.class_labels = [e.class_label for e in rows]
        self.video_bytes = np.array([e.video_bytes for e in rows], dtype=np.int64)
        self.video_sha = np.array([e.video_sha256 for e in rows], dtype="S64")
        self.label_sha = np.array([e.label_sha256 for e in rows], dtype="S64")
        if meta.get("format", "pt") == "shards":
            bad = [e for e in rows if e.shard not in shards or e.offset is None or e.length is None]
            if bad:
                raise DatasetError(
                    f"{layout.root}: sample {bad[0].index} has no shard, offset and length in its manifest"
                )
            names = sorted({e.shard for e in rows})
            if any(Path(name).name != name or name in (".", "..") for name in names):
                raise DatasetError(f"{layout.root}: a manifest names a shard outside shards/")
            number = {name: k for k, name in enumerate(names)}
            self.shard_names = names
            self.shard_bytes = np.array([shards[s].bytes for s in names], dtype=np.int64)
            self.shard_of = np.array([number[e.shard] for e in rows], dtype=np.int32)
            self.offset = np.array([e.offset for e in rows], dtype=np.int64)
            self.length = np.array([e.length for e in rows], dtype=np.int64)


def uncovered(n: int, listed: Collection[int]) -> tuple[int, int | None]:
    """How many of samples ``0..n-1`` are not ``listed``, and the first: counted over what is
    listed, so a sample count that no folder holds costs no more than a true one."""
    missing = n - sum(1 for i in listed if 0 <= i < n)
    return missing, next(i for i in itertools.count() if i not in listed) if missing else None


def manifest_paths(layout: Layout, meta: dict) -> list[Path]:
    """The chunk manifests on disk; each one the metadata lists must be there."""
    found = layout.manifests()
    names = {p.name for p in found}
    for name in meta.get("checkpoints") or []:
        if name not in names:
            raise DatasetError(f"{layout.checkpoints / name} is missing (metadata.json lists it)")
    return found


# ------------------------------------------------------------------ samples


def pose_problem(label: Label, meta: dict) -> str | None:
    """Why a label's per-frame ``cameras`` do not fit the dataset's clips, if they do not."""
    views, frames = meta["video_shape"][0], meta["video_shape"][1]
    if label.cameras is None:
        moving = "camera_motion" in (meta.get("config") or {})
        return "no per-frame cameras, the config has camera_motion" if moving else None
    if len(label.cameras) != views:
        return f"poses for {len(label.cameras)} cameras, the clips have {views}"
    if any(len(cam.R) != frames for cam in label.cameras):
        return f"camera poses must be one per frame ({frames})"
    return None


def check_label(
    path: Path, data: bytes, index: int, label_sha: bytes, video_sha: bytes, meta: dict
) -> dict:
    """A label's bytes: its manifest's SHA-256, the schema, its own index, its ``video_sha256``
    against the manifest's (a label from another dataset, or a manifest edited since: a field
    compared, as the label is parsed anyway) and its length."""
    if hashlib.sha256(data).hexdigest().encode() != label_sha:
        raise DatasetError(f"{path}: the label's SHA-256 differs from its manifest")
    raw = parse_json(path, data)
    try:  # parsed once: the reader is on the training hot path
        label = Label.model_validate(raw, context=label_context(meta))
    except ValidationError as e:
        raise schema_error(path, e) from None
    if label.index != index:
        raise DatasetError(
            f"{path}: the label says index {short_repr(label.index)}, expected {index}"
        )
    if label.video_sha256.encode() != video_sha:
        raise DatasetError(f"{path}: the label's video_sha256 differs from its manifest")
    frames = meta["video_shape"][1]
    if len(label.positions) < frames:
        raise DatasetError(f"{path}: {len(label.positions)} positions for {frames} frames")
    problem = pose_problem(label, meta)
    if problem:
        raise DatasetError(f"{path}: {problem}")
    return raw


class _FileSource:
    """A dataset on disk, either layout: its layout, metadata, video shape and manifest index;
    ``verify`` also hashes the videos of zstd shards (each frame carries its own checksum)."""

    def __init__(self, root: Path, meta: dict, verify: bool = False) -> None:
        self.layout = Layout(root, meta["stem_width"])
        self.meta = meta
        self.shape = tuple(meta["video_shape"])
        self.index = Index(self.layout, meta)
        self.verify = verify


class PtSource(_FileSource):
    """``videos/<stem>.pt`` and ``labels/<stem>.json``, one pair per sample."""

    format = "pt"

    def read_video(self, index: int) -> torch.Tensor:
        """Hashed on every read (about 1.3 ms a sample, a few percent of what a tiny model takes
        to consume it): a same-size change inside a ``.pt`` has nothing else to show it, and
        the bytes hashed are the ones loaded."""
        path = self.layout.video(index)
        data = read_file(path, self.layout.root, int(self.index.video_bytes[index]))
        if hashlib.sha256(data).hexdigest().encode() != self.index.video_sha[index]:
            raise DatasetError(f"{path}: the video's SHA-256 differs from its manifest")
        return load_video(path, self.shape, source=io.BytesIO(data))

    def read_label(self, index: int) -> dict:
        path = self.layout.label(index)
        limit = label_limit(self.shape, self.meta.get("horizon"))
        data = read_file(path, self.layout.root, limit=limit)
        label_sha, video_sha = self.index.label_sha[index], self.index.video_sha[index]
        return check_label(path, data, index, label_sha, video_sha, self.meta)

    def read(self, index: int) -> tuple[torch.Tensor, dict]:
        return self.read_video(index), self.read_label(index)


class ShardSource(_FileSource):
    """``shards/shard_<start>.tar.zst`` or ``.tar`` (plain); a sample is found by its manifest
    entry (shard, offset, length), the shard's suffix saying whether to decompress it."""

    format = "shards"

    def read_members(self, index: int) -> tuple[bytes, bytes]:
        """The ``.npy`` and ``.json`` bytes of sample ``index``, from one frame of its shard."""
        from generator.dataformat.shards import read_sample

        shard = self.index.shard_of[index]
        path = self.layout.shards / self.index.shard_names[shard]
        size, recorded = regular_size(path, self.layout.root), int(self.index.shard_bytes[shard])
        if size != recorded:
            raise DatasetError(f"{path} has {size} bytes; its manifest records {recorded}")
        try:
            return read_sample(
                path,
                self.layout.stem(index),
                int(self.index.offset[index]),
                int(self.index.length[index]),
            )
        except Exception as e:  # zstd, tar and numpy raise many types for damaged bytes
            raise DatasetError(
                f"{path} is damaged at sample {index}: {type(e).__name__}: {str(e)[:200]}"
            ) from None

    def read(self, index: int) -> tuple[torch.Tensor, dict]:
        from generator.dataformat.shards import compression_of, decode_video

        video_file, label_file = self.read_members(index)
        path = self.layout.shards / self.index.shard_names[self.index.shard_of[index]]
        where = f"{path}#{self.layout.stem(index)}"
        # A zstd frame carries its own checksum; a plain tar has none, so its video is
        # always hashed (about 1 ms a sample, what decompressing would have cost).
        check = self.verify or compression_of(path.name) == "none"
        if check and hashlib.sha256(video_file).hexdigest().encode() != self.index.video_sha[index]:
            raise DatasetError(f"{where}: the video's SHA-256 differs from its manifest")
        try:
            video = decode_video(video_file)
        except ValueError as e:
            raise DatasetError(f"{path} is damaged at sample {index}: {e}") from None
        label_sha, video_sha = self.index.label_sha[index], self.index.video_sha[index]
        label = check_label(
            Path(f"{where}.json"), label_file, index, label_sha, video_sha, self.meta
        )
        if video.dtype != np.uint8 or tuple(video.shape) != self.shape:
            raise DatasetError(
                f"{path}: sample {index} has {video.dtype} {tuple(video.shape)}, expected uint8 {self.shape}"
            )
        return torch.from_numpy(video), label

    def read_video(self, index: int) -> torch.Tensor:
        return self.read(index)[0]

    def read_label(self, index: int) -> dict:
        return self.read(index)[1]


def open_source(root: str | Path, meta: dict, verify: bool = False) -> PtSource | ShardSource:
    """The reader of ``meta``'s layout; ``verify`` hashes zstd shards' videos too (``.pt`` and
    plain-tar videos are always hashed against their manifest)."""
    fmt = meta.get("format", "pt")  # datasets from before formats existed are "pt"
    if fmt in FORMATS:
        check_fingerprint(Layout(root), meta)  # the stem width plays no part in it
    if fmt == "pt":
        return PtSource(Path(root), meta, verify)
    if fmt == "shards":
        return ShardSource(Path(root), meta, verify)
    raise DatasetError(
        f"{Path(root) / 'metadata.json'} has format {short_repr(fmt)}; this reader knows {', '.join(FORMATS)}"
    )


def load_video(
    path: Path, shape: tuple[int, ...] | None = None, source: BinaryIO | None = None
) -> torch.Tensor:
    """A video tensor from ``path`` (or its bytes in ``source``), loaded with ``weights_only=True``.

    Damage or a wrong shape names the file.
    """
    try:
        video = torch.load(
            path if source is None else source, weights_only=True, map_location="cpu"
        )
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except Exception as e:  # torch raises many types for a damaged zip or pickle
        first = (str(e).splitlines() or [""])[0][:200]  # EOFError's message is empty
        raise DatasetError(f"{path} is damaged: {type(e).__name__}: {first}") from None
    if not isinstance(video, torch.Tensor) or video.dtype != torch.uint8:
        raise DatasetError(f"{path} does not hold a uint8 tensor")
    if shape is not None and tuple(video.shape) != tuple(shape):
        raise DatasetError(f"{path} has shape {tuple(video.shape)}, expected {tuple(shape)}")
    return video
