"""Damage a dataset folder the ways disks, users and attackers do, for the damage fuzzer.

``apply(kind, dataset_root, layout, rng) -> damaged_path`` damages one file of
the dataset at ``dataset_root`` (``layout`` "pt" or "shards"), chosen with
``rng`` (a ``numpy.random.Generator``), and returns that file's path: the one
``validate`` and the reader must name. ``KINDS`` lists every kind.

Byte damage (truncate, zero-fill, delete, folder, FIFO, symlink out of the
folder) may hit any file of the dataset. A flipped byte hits only files whose
SHA-256 a manifest records (videos, labels, shards): a flipped digit in
metadata, a manifest or the fingerprint can leave valid JSON that merely says
something else, which nothing can tell from the truth. A wrong field type
rewrites one field of one JSON file with a value of another JSON type.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

BYTE_KINDS = ("truncate", "zero-fill", "flip", "delete", "folder", "fifo", "symlink-out")
TYPE_KINDS = ("type:metadata", "type:manifest", "type:fingerprint", "type:label")
KINDS = BYTE_KINDS + TYPE_KINDS
LAYOUTS = ("pt", "shards")


def sample_files(root: Path, layout: str) -> list[Path]:
    """The files that hold samples: videos and labels, or shards."""
    if layout == "pt":
        return sorted((root / "videos").iterdir()) + sorted((root / "labels").iterdir())
    return sorted((root / "shards").iterdir())


def format_files(root: Path) -> list[Path]:
    """Metadata, every manifest and the fingerprint."""
    return [root / "metadata.json", *sorted((root / "checkpoints").iterdir())]


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def _other_type(value: object) -> object:
    """A JSON value of another type than ``value``."""
    if isinstance(value, bool | int | float):
        return "not a number"
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, dict):
        return ["not", "an", "object"]
    return 3.5  # null


def _retype(obj: dict, rng: np.random.Generator) -> None:
    key = _pick(rng, sorted(obj))
    obj[key] = _other_type(obj[key])


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _retype_shard_label(root: Path, rng: np.random.Generator) -> Path:
    """Rewrite one sample's label inside its shard, recompressed in place; later offsets follow."""
    import zstandard

    from generator.dataformat.shards import parse_record, read_frame, tar_member

    manifest = _pick(rng, sorted((root / "checkpoints").glob("checkpoint_*.json")))
    m = json.loads(manifest.read_text())
    entry = _pick(rng, m["samples"])
    shard = root / "shards" / entry["shard"]
    members = parse_record(read_frame(shard, entry["offset"], entry["length"]))
    stem = entry["stem"]
    label = json.loads(bytes(members[f"{stem}.json"]))
    _retype(label, rng)
    record = tar_member(f"{stem}.npy", members[f"{stem}.npy"]) + tar_member(
        f"{stem}.json", json.dumps(label).encode()
    )
    frame = zstandard.ZstdCompressor(write_content_size=True, write_checksum=True).compress(record)
    data = shard.read_bytes()
    start, end = entry["offset"], entry["offset"] + entry["length"]
    shard.write_bytes(data[:start] + frame + data[end:])
    shift = len(frame) - entry["length"]
    for e in m["samples"]:
        if e["shard"] == entry["shard"] and e["offset"] > entry["offset"]:
            e["offset"] += shift
    entry["length"] = len(frame)
    _write_json(manifest, m)
    return shard


def apply(kind: str, dataset_root: Path, layout: str, rng: np.random.Generator) -> Path:
    """Damage one file of the dataset in the way ``kind`` names; return the damaged path."""
    root = Path(dataset_root)
    if kind == "type:metadata":
        path = root / "metadata.json"
    elif kind == "type:fingerprint":
        path = root / "checkpoints" / "fingerprint.json"
    elif kind == "type:manifest":
        path = _pick(rng, sorted((root / "checkpoints").glob("checkpoint_*.json")))
    elif kind == "type:label":
        if layout == "shards":
            return _retype_shard_label(root, rng)
        path = _pick(rng, sorted((root / "labels").iterdir()))
    elif kind == "flip":
        path = _pick(rng, sample_files(root, layout))
    elif kind in BYTE_KINDS:
        path = _pick(rng, sample_files(root, layout) + format_files(root))
    else:
        raise ValueError(f"unknown kind of damage {kind!r}; known: {', '.join(KINDS)}")

    if kind.startswith("type:"):
        obj = json.loads(path.read_text())
        if kind == "type:manifest" and rng.random() < 0.5:
            _retype(_pick(rng, obj["samples"]), rng)  # a field of one sample's entry
        else:
            _retype(obj, rng)
        _write_json(path, obj)
    elif kind == "truncate":
        size = path.stat().st_size
        os.truncate(path, int(rng.integers(0, size)))
    elif kind == "zero-fill":
        path.write_bytes(bytes(path.stat().st_size))
    elif kind == "flip":
        data = bytearray(path.read_bytes())
        data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
    elif kind == "delete":
        path.unlink()
    elif kind == "folder":
        path.unlink()
        path.mkdir()
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "symlink-out":
        # The same bytes outside the folder, or an endless device: both must be refused.
        if rng.random() < 0.5:
            outside = root.parent / f"outside-{root.name}" / path.name
            outside.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, outside)
        else:
            outside = Path("/dev/zero")
        path.unlink()
        path.symlink_to(outside)
    return path
