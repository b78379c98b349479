"""``python -m generator validate DIR``: can every file of this dataset be trusted?

Checks, each reported on its own line: metadata and fingerprint (strict
schemas, and they must agree; metadata no generator writes, such as counts that do not
add up or a shape past the config's bounds, is refused), file counts and names, class
balance (whole set and every checkpoint prefix), label schema, tensor shape and dtype
(loaded with ``weights_only=True``), SHA-256 against the manifests (each label's
``video_sha256`` too), and no orphan or temporary files. A file is read only if it is a
regular file inside the folder (a FIFO or a link to ``/dev/zero`` would hang), a video
only at the size its manifest records; a damaged file is one line naming it, never a
traceback.
``--quick`` checks videos' type and size but does not read them. A dataset made
with ``ground_truth: {enabled: true}`` also has each label's per-frame ground truth
re-derived from its positions and the metadata's cameras (the check is handed in by
the command line, which knows the renderer; ``validate`` without it says the group was not
checked).
"""

from __future__ import annotations

import io
import itertools
import json
import sys
from collections import Counter
from pathlib import Path

from joblib import Parallel, delayed

from generator.dataformat.checks import (
    GROUND_TRUTH_DETAIL,
    MAX_EXAMPLES,
    GroundTruthCheck,
    Report,
    balance_problems,
    check_manifest_coverage,
    ground_truth_problems,
    has_ground_truth,
    label_problems,
    read_manifests,
    with_manifest_classes,
)
from generator.dataformat.dataset import DatasetError, read_metadata
from generator.dataformat.layout import FINGERPRINT, LOCK, STATS_FILE, Layout
from generator.dataformat.sources import (
    check_fingerprint,
    label_limit,
    load_video,
    read_file,
    regular_size,
    uncovered,
)
from generator.dataformat.validate_shards import check_shards
from trajkit.cli import short_repr
from trajkit.files import TMP_PREFIX, sha256_bytes


def _video_problems(layout: Layout, i: int, e: dict, meta: dict, quick: bool) -> list[str]:
    """At most one line: the file's type, its size against the manifest, then (unless quick)
    its SHA-256 and tensor; the file is read once, never past its recorded size."""
    path = layout.video(i)
    try:
        size = regular_size(path, layout.root)
        if size != e["video_bytes"]:
            recorded = short_repr(e["video_bytes"])
            return [f"videos/{path.name}: {size} bytes, its manifest records {recorded}"]
        if quick:
            return []
        data = read_file(path, layout.root, size)
        if sha256_bytes(data) != e["video_sha256"]:
            return [f"videos/{path.name}: SHA-256 differs from its manifest"]
        load_video(path, tuple(meta["video_shape"]), source=io.BytesIO(data))
    except DatasetError as err:
        return [str(err)]
    return []


def _label_file_problems(
    layout: Layout, i: int, e: dict | None, meta: dict, gt_check: GroundTruthCheck | None
) -> tuple[list[str], int | None, list[str]]:
    """At most one kind of problem: unreadable, its schema, else its SHA-256, else the video
    it vouches for; its class; and (with ``gt_check``) its ground truth's problems."""
    path = layout.label(i)
    try:
        data = read_file(
            path, layout.root, limit=label_limit(meta["video_shape"], meta.get("horizon"))
        )
    except DatasetError as err:
        return [str(err)], None, []
    problems, cls = label_problems(path.name, data, i, meta)
    if not problems and e is not None and sha256_bytes(data) != e["label_sha256"]:
        problems = [f"labels/{path.name}: SHA-256 differs from its manifest"]
    if not problems and e is not None and json.loads(data)["video_sha256"] != e["video_sha256"]:
        problems = [f"labels/{path.name} does not vouch for its video"]
    gt = []
    if cls is not None and gt_check is not None:
        gt = ground_truth_problems(f"labels/{path.name}", data, meta, gt_check)
    return problems, cls, gt


def validate(
    root: Path,
    quick: bool = False,
    workers: int = 4,
    ground_truth_check: GroundTruthCheck | None = None,
) -> Report:
    """Every check group in turn, each one line in the report; a folder whose metadata
    cannot be read gets that one line only, a sharded set the shard checks.
    ``ground_truth_check`` runs on every readable label of a dataset with ground truth."""
    rep = Report()
    try:
        meta = read_metadata(root)
    except DatasetError as e:
        rep.check("metadata", [str(e)])
        return rep
    rep.check("metadata", [], f"format v{meta['format_version']}")
    layout = Layout(root, meta["stem_width"])
    _check_fingerprint(rep, layout, meta)
    gt_check = ground_truth_check if has_ground_truth(meta) else None
    if has_ground_truth(meta) and gt_check is None:  # said, so a skipped check is not an ok
        rep.skip("ground truth", "not checked (validate(..., ground_truth_check=...))")
    # no mutate: a dataset from before formats has no "format", and any default but "shards" reads it as pt
    if meta.get("format", "pt") == "shards":  # pragma: no mutate
        check_shards(root, meta, rep, quick, workers, gt_check)
        return rep
    n = meta["total_samples"]
    manifests = layout.manifests()
    videos, labels = _check_files(rep, root, layout, n, manifests)
    entries, _, prefix_ends, manifest_problems = read_manifests(layout, meta)
    check_manifest_coverage(rep, n, entries, manifest_problems, len(manifests))
    classes = _check_labels(rep, layout, meta, entries, labels, workers, gt_check)
    _check_balance(rep, meta, classes, prefix_ends)
    _check_videos(rep, layout, meta, entries, videos, quick, workers)
    return rep


def _check_fingerprint(rep: Report, layout: Layout, meta: dict) -> None:
    """The fingerprint must agree with metadata.json, or the set was mixed from two configs."""
    try:
        check_fingerprint(layout, meta)
        fingerprint = []
    except DatasetError as e:
        fingerprint = [str(e)]
    rep.check("fingerprint", fingerprint, "agrees with metadata.json")


def _samples_present(
    layout: Layout, folder: Path, suffix: str, n: int
) -> tuple[set[int], list[str]]:
    """The samples of ``0..n-1`` that have a file in ``folder``, and the names there that are
    none of theirs; read from the folder, so the cost is what it holds, not what is claimed."""
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    present, strays = set(), []
    for name in names:
        i = layout.index_of(name.removesuffix(suffix)) if name.endswith(suffix) else None
        if i is not None and i < n:
            present.add(i)
        else:
            strays.append(f"{folder.name}/{name}")
    return present, strays


def _missing(kind: str, path_of, n: int, present: set[int]) -> tuple[list[str], int]:
    """The first of ``0..n-1`` with no file of ``kind``, as many as a report shows, and how
    many more are missing."""
    count, first = uncovered(n, present)
    absent = (i for i in itertools.count(first or 0) if i not in present)
    shown = [
        f"{kind}/{path_of(i).name} is missing"
        for i in itertools.islice(absent, min(count, MAX_EXAMPLES))
    ]
    return shown, count - len(shown)


def _check_files(
    rep: Report, root: Path, layout: Layout, n: int, manifests: list[Path]
) -> tuple[set[int], set[int]]:
    """Exactly the expected names, nothing else, no temporaries; returns the samples whose
    video and whose label are present, so the later checks read only files that exist."""
    videos, extra = _samples_present(layout, layout.videos, ".pt", n)
    labels, stray_labels = _samples_present(layout, layout.labels, ".json", n)
    missing_videos, unlisted_videos = _missing("videos", layout.video, n, videos)
    missing_labels, unlisted_labels = _missing("labels", layout.label, n, labels)
    rep.check(
        "counts",
        missing_videos + missing_labels,
        f"{n} videos, {n} labels",
        unlisted=unlisted_videos + unlisted_labels,
    )
    allowed_top = {"videos", "labels", "checkpoints", "metadata.json", LOCK, STATS_FILE}
    extra += stray_labels
    extra += [p.name for p in root.iterdir() if p.name not in allowed_top]
    extra += (
        [
            f"checkpoints/{p.name}"
            for p in layout.checkpoints.iterdir()
            if p.name != FINGERPRINT and p not in manifests
        ]
        if layout.checkpoints.is_dir()
        else []
    )
    temps = [e for e in extra if Path(e).name.startswith(TMP_PREFIX)]
    rep.check(
        "no orphan or temporary files",
        [f"{e} (temporary)" if e in temps else f"{e} is not part of the dataset" for e in extra],
    )
    return videos, labels


def _check_labels(
    rep: Report,
    layout: Layout,
    meta: dict,
    entries: dict,
    labels: set[int],
    workers: int,
    gt_check: GroundTruthCheck | None,
) -> dict[int, int]:
    """Schema, consistency and checksum of every present label (a missing one is already
    counted), and their ground truth with ``gt_check``; returns each sample's class, the
    manifests' filling the gaps, for the balance."""
    present = sorted(labels)
    # no mutate: threads or processes, any count: the same results
    results = Parallel(n_jobs=workers, prefer="threads")(  # pragma: no mutate
        delayed(_label_file_problems)(layout, i, entries.get(i), meta, gt_check) for i in present
    )
    classes = {}
    label_problem_lines, gt_lines = [], []
    # no mutate: one result per label, so strict never fires
    for i, (problems, cls, gt) in zip(present, results, strict=True):  # pragma: no mutate
        label_problem_lines += problems
        gt_lines += gt
        if cls is not None:
            classes[i] = cls
    rep.check("label schema", label_problem_lines, f"{len(classes)} labels")
    if gt_check is not None:
        rep.check("ground truth", gt_lines, f"{len(classes)} labels: {GROUND_TRUTH_DETAIL}")
    return with_manifest_classes(classes, entries, meta)


def _check_balance(
    rep: Report, meta: dict, classes: dict[int, int], prefix_ends: list[int]
) -> None:
    """Whole set, metadata's counts, and every checkpoint prefix: a stopped run must still
    leave a balanced set behind."""
    names = meta["classes"]
    counts = Counter(names[c] for c in classes.values())
    balance = balance_problems(classes, meta, prefix_ends)
    rep.check("class balance", balance, ", ".join(f"{c} {counts.get(c, 0)}" for c in names))


def _check_videos(
    rep: Report,
    layout: Layout,
    meta: dict,
    entries: dict,
    videos: set[int],
    quick: bool,
    workers: int,
) -> None:
    """Type and size always (a truncated video is caught even --quick), bytes unless --quick."""
    checked = sorted(i for i in videos if i in entries)
    # no mutate: threads or processes, any count: the same results
    found = Parallel(n_jobs=workers, prefer="threads")(  # pragma: no mutate
        delayed(_video_problems)(layout, i, entries[i], meta, quick) for i in checked
    )
    rep.check(
        "videos" + (" (quick: type and size only)" if quick else ""),
        [p for ps in found for p in ps],
        "type and size" + ("" if quick else ", checksums and tensor shapes"),
    )


def main(argv: list[str], ground_truth_check: GroundTruthCheck | None = None) -> int:
    """The command; ``ground_truth_check`` is the renderer's check, which the command line
    hands in (``python -m generator validate`` always does)."""
    from trajkit.cli import OneLineParser

    p = OneLineParser(prog="python -m generator validate", description=__doc__.splitlines()[0])
    p.add_argument("dir", type=Path)
    p.add_argument(
        "--quick", action="store_true", help="skip reading videos (labels, counts, balance only)"
    )
    args = p.parse_args(argv)
    try:
        is_dir = args.dir.is_dir()
    except OSError as e:  # a name over the filesystem's limit
        print(f"error: cannot read {args.dir}: {e.strerror or e}", file=sys.stderr)
        return 2
    if not is_dir:
        print(f"error: {args.dir} is not a folder", file=sys.stderr)
        return 2
    rep = validate(args.dir, quick=args.quick, ground_truth_check=ground_truth_check)
    print("\n".join(rep.lines))
    print(
        f"{args.dir}: " + ("all checks hold" if not rep.failed else f"{rep.failed} check(s) FAILED")
    )
    return 0 if not rep.failed else 1
