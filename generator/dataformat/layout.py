"""Format v1 on disk: where each file of a dataset lives and what its constants are.

    DIR/metadata.json            written last: a dataset is whole when it exists
    DIR/checkpoints/fingerprint.json  what a resume must match (config, seed, layout, renderer)
    DIR/checkpoints/checkpoint_*.json per checkpoint: every sample's hashes and class
    DIR/videos/, DIR/labels/     format "pt": one .pt and one .json per sample
    DIR/shards/                  format "shards": tar shards (.tar.zst or .tar)

See docs/architecture.md for the whole format.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from trajkit.files import read_json

FORMAT_VERSION = 1
FORMATS = ("pt", "shards")  # metadata "format": one file pair per sample, or tar shards
# How shards are stored, by ``--compression``: each sample a zstd frame, or a plain tar.
SHARD_SUFFIXES = {"zstd": ".tar.zst", "none": ".tar"}
MIN_STEM_WIDTH = 4
MAX_STEM_WIDTH = 200  # the longest name, a temporary shard's, then fits a filesystem's 255 bytes
METADATA = "metadata.json"
FINGERPRINT = "fingerprint.json"
LOCK = ".lock"
CONVERTING = ".converting"
"""In a folder while ``convert`` writes it, removed just before its metadata.json is written:
a folder holding it and no metadata.json is an unfinished convert, which only the same
convert finishes (by starting again)."""
STATS_FILE = "normalization.json"  # the reader's cache of per-channel statistics


def stem_width(n: int) -> int:
    """Digits for zero-padded stems so ``n`` samples sort in index order (at least 4)."""
    return max(MIN_STEM_WIDTH, len(str(max(n - 1, 0))))


class Layout:
    """Where each file of a format-v1 dataset lives."""

    def __init__(self, root: str | os.PathLike, width: int = MIN_STEM_WIDTH) -> None:
        self.root = Path(root)
        self.width = width
        self.videos = self.root / "videos"
        self.labels = self.root / "labels"
        self.checkpoints = self.root / "checkpoints"
        self.shards = self.root / "shards"
        self.metadata = self.root / METADATA
        self.fingerprint = self.checkpoints / FINGERPRINT
        self.lock = self.root / LOCK

    def stem(self, index: int) -> str:
        return f"sample_{index:0{self.width}d}"

    def index_of(self, stem: str) -> int | None:
        """The index whose stem is ``stem``, None for a name that is no sample's: a check that
        starts from the names a folder holds costs what it holds, not what a metadata claims."""
        digits = stem.removeprefix("sample_")
        if not (digits.isascii() and digits.isdigit()) or self.stem(int(digits)) != stem:
            return None
        return int(digits)

    def video(self, index: int) -> Path:
        return self.videos / f"{self.stem(index)}.pt"

    def label(self, index: int) -> Path:
        return self.labels / f"{self.stem(index)}.json"

    def shard(self, start: int, compression: str = "zstd") -> Path:
        """The shard whose first sample is ``start`` (format "shards")."""
        return self.shards / f"shard_{start:0{self.width}d}{SHARD_SUFFIXES[compression]}"

    def manifest(self, end: int) -> Path:
        return self.checkpoints / f"checkpoint_{end}.json"

    # no mutate: any default but "shards" means "pt"
    def make_dirs(self, fmt: str = "pt") -> None:  # pragma: no mutate
        for d in (self.shards,) if fmt == "shards" else (self.videos, self.labels):
            d.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def folders(self) -> tuple[Path, ...]:
        """Every folder this generator writes files into (and so leaves temporaries in)."""
        return (self.root, self.videos, self.labels, self.shards, self.checkpoints)

    def manifests(self) -> list[Path]:
        """Chunk manifests in sample order."""
        found = []
        for p in self.checkpoints.glob("checkpoint_*.json"):
            end = written_number(p.stem.removeprefix("checkpoint_"))
            if end is not None:
                found.append((end, p))
        return [p for _, p in sorted(found)]


class FolderError(Exception):
    """A dataset folder that cannot be created or locked; one line that says why."""


def enclosing_dataset(root: Path) -> Path | None:
    """The dataset folder (whole or under way) that holds ``root``, if one does."""
    for folder in Path(os.path.realpath(root)).parents:
        layout = Layout(folder)
        # os.path.isfile: a name too long to look up holds no dataset (Path.is_file raises)
        if os.path.isfile(layout.metadata) or os.path.isfile(layout.fingerprint):
            return folder
    return None


def unfinished_convert(root: Path) -> bool:
    """Whether ``root`` is a convert's unfinished output: its marker is there and no
    metadata.json (a folder with both, one a generator --resume finished before it refused
    such folders, is a whole dataset)."""
    return os.path.isfile(root / CONVERTING) and not os.path.lexists(root / METADATA)


def lock_is_new(root: Path) -> bool:
    """Whether ``root`` has no lock file yet: one that a refusal made is removed again."""
    return not os.path.lexists(Layout(root).lock)


def check_folder(root: Path, name: str = "--out") -> bool:
    """Whether ``root`` exists, after refusing what cannot become a dataset folder: a file, a
    path through one, a folder inside a dataset or one we may not write. Nothing is written,
    so ``preflight`` gives the verdict ``open_folder`` would. ``name`` is how the command
    line calls the folder."""
    try:  # unlike exists(), tells a missing folder from a path through a file or a link loop
        mode: int | None = os.stat(root).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise FolderError(f"cannot create {root}: {e.strerror}") from None
    exists = mode is not None
    if exists and not stat.S_ISDIR(mode):
        raise FolderError(f"{name} {root} is a file, not a folder")
    holder = enclosing_dataset(root)
    if holder is not None:  # it would become a stray folder of that dataset
        raise FolderError(
            f"{name} {root} is inside the dataset {holder}; choose a folder outside it"
        )
    if exists and not os.access(root, os.W_OK):
        raise FolderError(f"{root} is not writable")
    return exists


def open_folder(root: Path, name: str = "--out") -> tuple[object, bool]:
    """Create ``root`` if needed and lock it; returns the lock and whether we created the folder."""
    from trajkit.lock import FolderLock, LockedError, remove_if_unused

    created = not check_folder(root, name)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FolderError(f"cannot create {root}: {e.strerror}") from None
    try:
        return FolderLock(Layout(root).lock).acquire(), created
    except LockedError as e:
        raise FolderError(str(e)) from None
    except OSError as e:  # a full disk fails the lock's note of its holder
        if created:  # the folder made here goes too, unless another process wrote into it
            remove_if_unused(root, Layout(root).lock.name)
        raise FolderError(f"cannot lock {root}: {e.strerror}") from None


# A manifest lists each sample of its chunk in about 250 bytes, and in a shard dataset each
# shard too: 580 bytes a sample with one-sample shards (measured). 8 KiB for each sample
# before its end bounds it 14 times over.
MANIFEST_BYTES_PER_SAMPLE = 8192
MANIFEST_BYTES_FIXED = 64 << 10


def manifest_limit(manifest: Path) -> int:
    """The most bytes ``checkpoint_N.json`` may hold: it lists at most the N samples before
    its end. A larger file is damaged and not read whole (a 30 GB sparse one was a
    MemoryError traceback in validate, resume and convert)."""
    end = written_number(manifest.stem.removeprefix("checkpoint_")) or 0
    return MANIFEST_BYTES_FIXED + MANIFEST_BYTES_PER_SAMPLE * end


def written_number(text: str) -> int | None:
    """``text`` as this generator writes a number into a file name (ASCII digits), else None:
    ``isdigit`` alone takes "²", which ``int`` refuses (``checkpoint_².json`` was a traceback
    in validate, --resume and convert)."""
    return int(text) if text.isascii() and text.isdigit() else None


def manifest_hashes(manifest: Path) -> dict[str, str]:
    """Relative path -> SHA-256 from one checkpoint manifest (``pt``: videos and labels;
    ``shards``: shards), for a copy that checks files against them; a manifest that does not
    parse vouches for nothing."""
    try:
        if manifest.stat().st_size > manifest_limit(manifest):
            return {}
        m = read_json(manifest)
        found = {}
        for e in m.get("samples") or []:
            found[f"videos/{e['stem']}.pt"] = e["video_sha256"]
            found[f"labels/{e['stem']}.json"] = e["label_sha256"]
        for s in m.get("shards") or []:
            found[f"shards/{s['name']}"] = s["sha256"]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str) and len(v) == 64}


def label_bytes(label: dict) -> bytes:
    return (json.dumps(label, sort_keys=True, separators=(",", ":")) + "\n").encode()
