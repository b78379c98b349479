"""``validate`` for the sharded layout: the same checks as for "pt", read through the shards.

Files: exactly the shards the manifests name, nothing else. Each shard's
SHA-256 and size against its manifest line; each sample's frame decoded at
its recorded offset, its label checked against the schema and its SHA-256,
its ``.npy`` against the video SHA-256, shape and dtype. ``--quick`` skips
hashing whole shards and decoding tensors (labels are still read).
"""

from __future__ import annotations

import json
from pathlib import Path

from joblib import Parallel, delayed

from generator.dataset import STATS_FILE
from generator.shards import decode_video, read_sample
from generator.store import (
    FINGERPRINT,
    LOCK,
    TMP_PREFIX,
    Layout,
    read_json,
    sha256_bytes,
    sha256_file,
)


def _manifests(layout: Layout) -> tuple[dict[int, dict], dict[str, dict], list[int], list[str]]:
    """Entries by index, shard lines by name, checkpoint ends, and problems reading them."""
    entries: dict[int, dict] = {}
    shards: dict[str, dict] = {}
    ends, problems = [], []
    for path in layout.manifests():
        try:
            m = read_json(path)
            for e in m["samples"]:
                entries[int(e["index"])] = e
            for s in m["shards"]:
                shards[s["name"]] = s
            ends.append(int(m["end"]))
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{path.name}: {e}")
    return entries, shards, ends, problems


def _sample_problems(
    layout: Layout, e: dict, meta: dict, quick: bool
) -> tuple[list[str], int | None]:
    from generator.validate import label_problems

    index, stem = int(e["index"]), e["stem"]
    where = f"shards/{e['shard']}#{stem}"
    try:
        video_file, label_file = read_sample(
            layout.shards / e["shard"], stem, int(e["offset"]), int(e["length"])
        )
    except Exception as err:  # zstd, tar and OS errors alike: the sample cannot be read
        return [f"{where}: cannot be read ({type(err).__name__}: {str(err)[:120]})"], None
    problems, cls = label_problems(f"{where}.json", label_file, index, meta)
    if sha256_bytes(label_file) != e["label_sha256"]:
        problems.append(f"{where}.json: SHA-256 differs from its manifest")
    if not quick:
        if sha256_bytes(video_file) != e["video_sha256"]:
            problems.append(f"{where}.npy: SHA-256 differs from its manifest")
        try:
            video = decode_video(video_file)
            if str(video.dtype) != meta["dtype"] or list(video.shape) != meta["video_shape"]:
                problems.append(
                    f"{where}.npy: {video.dtype} {list(video.shape)}, expected {meta['dtype']} {meta['video_shape']}"
                )
        except ValueError as err:
            problems.append(f"{where}.npy is damaged: {err}")
    try:
        if json.loads(label_file).get("video_sha256") != e["video_sha256"]:
            problems.append(f"{where}.json does not vouch for its video")
    except ValueError:
        pass  # already reported by the schema check
    return problems, cls


def check_shards(root: Path, meta: dict, rep, quick: bool, workers: int) -> None:
    """Add the sharded layout's checks to ``rep`` (a ``validate.Report``)."""
    from generator.validate import balance_problems, check_manifest_coverage

    n = meta["total_samples"]
    layout = Layout(root, meta["stem_width"])
    entries, shards, ends, manifest_problems = _manifests(layout)
    manifests = layout.manifests()

    on_disk = {p.name for p in layout.shards.iterdir()} if layout.shards.is_dir() else set()
    rep.check(
        "counts",
        [f"shards/{s} is missing" for s in sorted(set(shards) - on_disk)],
        f"{len(shards)} shards",
    )
    extra = [f"shards/{s}" for s in sorted(on_disk - set(shards))]
    allowed_top = {"shards", "checkpoints", "metadata.json", LOCK, STATS_FILE}
    extra += [p.name for p in root.iterdir() if p.name not in allowed_top]
    if layout.checkpoints.is_dir():
        extra += [
            f"checkpoints/{p.name}"
            for p in layout.checkpoints.iterdir()
            if p.name != FINGERPRINT and p not in manifests
        ]
    rep.check(
        "no orphan or temporary files",
        [
            f"{e} (temporary)"
            if Path(e).name.startswith(TMP_PREFIX)
            else f"{e} is not part of the dataset"
            for e in extra
        ],
    )

    check_manifest_coverage(rep, n, entries, manifest_problems, len(manifests))

    present = [entries[i] for i in range(n) if i in entries and entries[i]["shard"] in on_disk]
    results = Parallel(n_jobs=workers, prefer="threads")(
        delayed(_sample_problems)(layout, e, meta, quick) for e in present
    )
    classes, sample_problems = {}, []
    for e, (problems, cls) in zip(present, results, strict=True):
        sample_problems += problems
        if cls is not None:
            classes[int(e["index"])] = cls
    rep.check(
        "samples" + (" (quick: labels only)" if quick else ""),
        sample_problems,
        f"{len(classes)} labels" + ("" if quick else ", videos, checksums and tensor shapes"),
    )
    rep.check(
        "class balance",
        balance_problems(classes, meta, ends),
        ", ".join(f"{c} {v}" for c, v in meta["class_distribution"].items()),
    )
    if not quick:
        names = sorted(set(shards) & on_disk)
        sums = Parallel(n_jobs=workers, prefer="threads")(
            delayed(sha256_file)(layout.shards / s) for s in names
        )
        rep.check(
            "shard checksums",
            [
                f"shards/{s}: SHA-256 differs from its manifest"
                for s, got in zip(names, sums, strict=True)
                if got != shards[s]["sha256"]
            ],
            f"{len(names)} shards",
        )
