"""``validate`` for the sharded layout: the same checks as for "pt", read through the shards.

Files: exactly the shards the manifests name, nothing else, each with the
suffix of the metadata's compression (``.tar.zst`` or ``.tar``). Each shard's
type, size and SHA-256 against its manifest line (a shard that fails is one
line, and its samples are not read); each sample's frame decoded at its
recorded offset, its label checked against the schema and its SHA-256, its
``.npy`` against the video SHA-256, shape and dtype. ``--quick`` skips hashing
whole shards and decoding tensors (labels are still read). With a ground-truth check
(a dataset with per-frame ground truth), each label's ground truth is checked too.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from joblib import Parallel, delayed

from generator.dataformat.checks import (
    GROUND_TRUTH_DETAIL,
    GroundTruthCheck,
    Report,
    balance_problems,
    check_manifest_coverage,
    ground_truth_problems,
    label_problems,
    read_manifests,
    with_manifest_classes,
)
from generator.dataformat.layout import FINGERPRINT, LOCK, SHARD_SUFFIXES, STATS_FILE, Layout
from generator.dataformat.shards import (
    compression_of,
    dataset_compression,
    decode_video,
    read_sample,
)
from generator.dataformat.sources import DatasetError, read_file, regular_size
from trajkit.files import TMP_PREFIX, sha256_bytes


def _compression(name: str) -> str | None:
    try:
        return compression_of(name)
    except ValueError:
        return None


def _shard_problem(layout: Layout, line: dict, quick: bool) -> str | None:
    """What is wrong with a whole shard: its type, its size, then (unless quick) its SHA-256."""
    path = layout.shards / line["name"]
    try:
        size = regular_size(path, layout.root)
        if size != line["bytes"]:
            return f"shards/{line['name']}: {size} bytes, its manifest records {line['bytes']}"
        if not quick and sha256_bytes(read_file(path, layout.root, size)) != line["sha256"]:
            return f"shards/{line['name']}: SHA-256 differs from its manifest"
    except DatasetError as e:
        return str(e)
    return None


def _sample_problems(
    layout: Layout, e: dict, meta: dict, quick: bool, gt_check: GroundTruthCheck | None
) -> tuple[list[str], int | None, list[str]]:
    index, stem = e["index"], e["stem"]
    where = f"shards/{e['shard']}#{stem}"
    try:
        video_file, label_file = read_sample(
            layout.shards / e["shard"], stem, e["offset"], e["length"]
        )
    except Exception as err:  # zstd, tar and OS errors alike: the sample cannot be read
        # no mutate: the message's cut is cosmetic
        why = f"{type(err).__name__}: {str(err)[:120]}"  # pragma: no mutate
        return [f"{where}: cannot be read ({why})"], None, []
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
    if cls is not None and json.loads(label_file)["video_sha256"] != e["video_sha256"]:
        problems.append(f"{where}.json does not vouch for its video")
    gt = []
    if cls is not None and gt_check is not None:
        gt = ground_truth_problems(f"{where}.json", label_file, meta, gt_check)
    return problems, cls, gt


def check_shards(
    root: Path,
    meta: dict,
    rep: Report,
    quick: bool,
    workers: int,
    gt_check: GroundTruthCheck | None = None,
) -> None:
    """Add the sharded layout's checks to ``rep`` (the ground truth's too, given ``gt_check``).

    A shard that fails as a whole is one line, and its samples are not read again.
    """
    n = meta["total_samples"]
    layout = Layout(root, meta["stem_width"])
    entries, shards, ends, manifest_problems = read_manifests(layout, meta)
    manifests = layout.manifests()

    on_disk = {p.name for p in layout.shards.iterdir()} if layout.shards.is_dir() else set()
    compression = dataset_compression(meta)
    rep.check(
        "counts",
        [f"shards/{s} is missing" for s in sorted(set(shards) - on_disk)]
        + [
            f"shards/{s} is not a {SHARD_SUFFIXES[compression]} shard, as compression "
            f"{compression!r} in metadata.json needs"
            for s in sorted(shards)
            if _compression(s) != compression
        ],
        f"{len(shards)} shards" + (", plain tar" if compression == "none" else ""),
    )
    # While a manifest cannot be read, the shards it lists are unknown: only temporaries are strays.
    unlisted = sorted(on_disk - set(shards))
    if manifest_problems:
        unlisted = [s for s in unlisted if s.startswith(TMP_PREFIX)]
    extra = [f"shards/{s}" for s in unlisted]
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

    names = sorted(set(shards) & on_disk)
    # no mutate: threads or processes, any count: the same results
    found = Parallel(n_jobs=workers, prefer="threads")(  # pragma: no mutate
        delayed(_shard_problem)(layout, shards[s], quick) for s in names
    )
    bad = {s for s, problem in zip(names, found, strict=True) if problem}
    rep.check(
        "shard checksums" + (" (quick: type and size only)" if quick else ""),
        [problem for problem in found if problem],
        f"{len(names)} shards",
    )

    good = set(names) - bad
    present = [entries[i] for i in sorted(entries) if 0 <= i < n and entries[i]["shard"] in good]
    # no mutate: threads or processes, any count: the same results
    results = Parallel(n_jobs=workers, prefer="threads")(  # pragma: no mutate
        delayed(_sample_problems)(layout, e, meta, quick, gt_check) for e in present
    )
    classes, sample_problems, gt_lines = {}, [], []
    for e, (problems, cls, gt) in zip(present, results, strict=True):
        sample_problems += problems
        gt_lines += gt
        if cls is not None:
            classes[int(e["index"])] = cls
    rep.check(
        "samples" + (" (quick: labels only)" if quick else ""),
        sample_problems,
        f"{len(classes)} labels" + ("" if quick else ", videos, checksums and tensor shapes"),
    )
    if gt_check is not None:
        rep.check("ground truth", gt_lines, f"{len(classes)} labels: {GROUND_TRUTH_DETAIL}")
    classes = with_manifest_classes(classes, entries, meta)
    names = meta["classes"]
    counts = Counter(names[c] for c in classes.values())
    rep.check(
        "class balance",
        balance_problems(classes, meta, ends),
        ", ".join(f"{c} {counts.get(c, 0)}" for c in names),
    )
