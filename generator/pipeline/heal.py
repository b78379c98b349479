"""``--resume`` heals: checkpointed samples whose files are gone or damaged are rendered again.

Sample ``i`` depends only on ``(seed, i)``, so a truncated, emptied, deleted or replaced
file inside a sealed chunk is not lost: it is rendered again, byte for byte what the
manifest records. Every resume checks what it keeps cheaply (a regular file of the
recorded size; each label's SHA-256, labels being small); ``--verify`` also hashes every
video or shard. Nothing is ever read from something that is not a regular file, so a FIFO
or a link to a device cannot hang the check.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from joblib import Parallel, delayed

from generator.dataformat.layout import Layout
from generator.dataformat.sources import DatasetError, read_file, read_manifest, regular_size
from generator.pipeline.tasks import render_shard_task, render_task
from trajkit.files import sha256_bytes, sha256_file

TASK_SIZE = 16


def file_intact(path: Path, root: Path, size: int | None, sha: str, verify: bool) -> bool:
    """A regular file of ``size`` bytes (any size if None); with ``verify``, of SHA-256 ``sha``."""
    try:
        found = regular_size(path, root)
    except DatasetError:
        return False
    if size is not None and found != size:
        return False
    try:
        return not verify or sha256_file(path) == sha
    except OSError:
        return False


def label_intact(path: Path, root: Path, sha: str, limit: int) -> bool:
    """A regular file of SHA-256 ``sha``; one over ``limit`` bytes is damaged, not read."""
    try:
        return sha256_bytes(read_file(path, root, limit=limit)) == sha
    except DatasetError:
        return False


def _sealed(layout: Layout) -> list[dict]:
    """The manifests a resume keeps (``generate._completed`` has dropped damaged ones)."""
    return [read_manifest(p, layout.root)[1] for p in layout.manifests()]


def damaged_samples(layout: Layout, verify: bool, workers: int, label_bytes: int) -> list[dict]:
    """Manifest entries of "pt" samples whose video or label is not as recorded (a label over
    ``label_bytes``, the most one can hold, is damaged)."""

    def broken(e: dict) -> bool:
        i = e["index"]
        root = layout.root
        video = file_intact(layout.video(i), root, e.get("video_bytes"), e["video_sha256"], verify)
        return not (video and label_intact(layout.label(i), root, e["label_sha256"], label_bytes))

    entries = [e for m in _sealed(layout) for e in m["samples"]]
    # no mutate: threads or processes, any count: the same results
    with Parallel(n_jobs=workers, prefer="threads") as parallel:  # pragma: no mutate
        flags = parallel(delayed(broken)(e) for e in entries)
    # no mutate: the flags are one per entry, so strict never fires
    return [e for e, bad in zip(entries, flags, strict=True) if bad]  # pragma: no mutate


def damaged_shards(layout: Layout, verify: bool) -> list[dict]:
    """Manifest records of shards that are not as recorded."""
    return [
        s
        for m in _sealed(layout)
        for s in m.get("shards", [])
        if not file_intact(layout.shards / s["name"], layout.root, s["bytes"], s["sha256"], verify)
    ]


def make_room(path: Path) -> None:
    """Make room for a file: a rename replaces a FIFO or a link, but not a folder."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)


class HealError(Exception):
    """A sample rendered again did not give the bytes its manifest records."""


def heal(req, cfg_json: str, layout: Layout, parallel: Parallel, label_bytes: int) -> int:
    """Render again every damaged sample of the sealed chunks (``label_bytes``: the most a
    label holds); returns how many were repaired."""

    root = str(layout.root)
    if req.format == "shards":
        shards = damaged_shards(layout, req.verify)
        for s in shards:
            make_room(layout.shards / s["name"])
        calls = [
            delayed(render_shard_task)(
                cfg_json,
                req.seed,
                root,
                layout.width,
                req.zstd_level,
                s["start"],
                s["end"],
                req.compression,
            )
            for s in shards
        ]
        for want, got in zip(shards, parallel(calls), strict=True):
            if (got["shard"]["sha256"], got["shard"]["bytes"]) != (want["sha256"], want["bytes"]):
                raise HealError(
                    f"shard {want['name']} rendered again differs from its manifest: the dataset "
                    "was made by another generator release or its manifest was edited"
                )
        return sum(s["end"] - s["start"] for s in shards)
    damaged = damaged_samples(layout, req.verify, req.workers, label_bytes)
    want = {e["index"]: e for e in damaged}
    indices = sorted(want)
    for i in indices:
        make_room(layout.video(i))
        make_room(layout.label(i))
    tasks = [indices[k : k + TASK_SIZE] for k in range(0, len(indices), TASK_SIZE)]
    calls = [delayed(render_task)(cfg_json, req.seed, root, layout.width, t) for t in tasks]
    for entries in parallel(calls):
        for e in entries:
            w = want[e["index"]]
            keys = (
                "video_sha256",
                "label_sha256",
                "video_bytes",
            )  # a wrong size: re-rendered each time
            if [e[k] for k in keys] != [w[k] for k in keys]:
                raise HealError(
                    f"sample {e['index']} rendered again differs from its manifest: the dataset "
                    "was made by another generator release or its manifest was edited"
                )
    return len(indices)
