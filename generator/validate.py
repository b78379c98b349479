"""``python -m generator validate DIR``: can every file of this dataset be trusted?

Checks, each reported on its own line: metadata and fingerprint (strict
schemas, and they must agree), file counts and names, class balance (whole set
and every checkpoint prefix), label schema, tensor shape and dtype (loaded with
``weights_only=True``), SHA-256 against the manifests, and no orphan or
temporary files. A file is read only if it is a regular file inside the folder
(a FIFO or a link to ``/dev/zero`` would hang), a video only at the size its
manifest records; a damaged file is one line naming it, never a traceback.
``--quick`` checks videos' type and size but does not read them.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from pathlib import Path

from joblib import Parallel, delayed
from pydantic import ValidationError

from generator.config import CLASS_NAMES
from generator.dataset import STATS_FILE, DatasetError, load_video, read_metadata
from generator.sources import (
    Label,
    Manifest,
    check_fingerprint,
    read_file,
    read_model,
    regular_size,
)
from generator.store import FINGERPRINT, LOCK, TMP_PREFIX, Layout, sha256_bytes

MAX_EXAMPLES = 5


class Report:
    def __init__(self) -> None:
        self.failed = 0
        self.lines: list[str] = []

    def check(self, name: str, problems: list[str], ok_detail: str = "") -> None:
        if problems:
            self.failed += 1
            more = (
                f" (+{len(problems) - MAX_EXAMPLES} more)" if len(problems) > MAX_EXAMPLES else ""
            )
            self.lines.append(f"FAIL {name}: {len(problems)} problem(s){more}")
            self.lines.extend(f"       - {p}" for p in problems[:MAX_EXAMPLES])
        else:
            self.lines.append(f"ok   {name}" + (f": {ok_detail}" if ok_detail else ""))


def label_problems(name: str, raw: bytes, index: int, meta: dict) -> tuple[list[str], int | None]:
    """Schema and consistency problems of one label's bytes, and its class if it parses."""
    try:
        label = Label.model_validate_json(raw)
    except ValidationError as e:
        return [f"{name}: {e.errors()[0]['msg']}"], None
    problems = []
    if label.index != index:
        problems.append(f"{name}: index {label.index}, expected {index}")
    if label.class_name != CLASS_NAMES[label.class_label]:
        problems.append(
            f"{name}: class_name {label.class_name!r} does not match class {label.class_label}"
        )
    future = meta.get("future_frame_index")  # positions run to the future frame
    if future is not None and len(label.positions) != future + 1:
        problems.append(f"{name}: positions must be {future + 1} points of 3 coordinates")
    elif future is not None and label.positions[future] != label.future_position:
        problems.append(f"{name}: future_position differs from positions[{future}]")
    return problems, label.class_label


def read_manifests(
    layout: Layout, meta: dict
) -> tuple[dict[int, dict], dict[str, dict], list[int], list[str]]:
    """Entries by index, shard lines by name, checkpoint ends, and one problem per bad manifest."""
    entries: dict[int, dict] = {}
    shards: dict[str, dict] = {}
    ends, problems = [], []
    paths = layout.manifests()
    on_disk = {p.name for p in paths}
    problems += [
        f"checkpoints/{name} is missing (metadata.json lists it)"
        for name in meta.get("checkpoints") or []
        if name not in on_disk
    ]
    for path in paths:
        try:
            m, _ = read_model(path, layout.root, Manifest)
        except DatasetError as e:
            problems.append(str(e))
            continue
        entries.update((e.index, e.model_dump()) for e in m.samples)
        shards.update((s.name, s.model_dump()) for s in m.shards or [])
        ends.append(m.end)
    return entries, shards, ends, problems


def check_manifest_coverage(
    rep: Report, n: int, entries: dict, problems: list[str], manifests: int
) -> None:
    """The "checkpoint manifests" check: ``problems`` reading them, plus samples none lists."""
    uncovered = [i for i in range(n) if i not in entries]
    if uncovered:
        problems.append(
            f"{len(uncovered)} samples are in no checkpoint manifest (first: {uncovered[0]})"
        )
    rep.check("checkpoint manifests", problems, f"{manifests} manifests cover all samples")


def with_manifest_classes(classes: dict[int, int], entries: dict[int, dict]) -> dict[int, int]:
    """``classes`` plus, for labels that could not be read, the class their manifest records:
    a damaged file is reported once, where it is, not again as an imbalance."""
    out = dict(classes)
    for i, e in entries.items():
        if i not in out and 0 <= e["class_label"] < len(CLASS_NAMES):
            out[i] = e["class_label"]
    return out


def balance_problems(classes: dict[int, int], meta: dict, prefix_ends: list[int]) -> list[str]:
    """Class balance of the whole set, metadata's counts, and every checkpoint prefix."""
    n = meta["total_samples"]
    counts = Counter(CLASS_NAMES[c] for c in classes.values())
    balance = []
    if (
        counts
        and max(counts.get(c, 0) for c in CLASS_NAMES) - min(counts.get(c, 0) for c in CLASS_NAMES)
        > 1
    ):
        balance.append(f"classes are imbalanced: {dict(counts)}")
    if dict(meta["class_distribution"]) != {c: counts.get(c, 0) for c in CLASS_NAMES}:
        balance.append(
            f"metadata class_distribution {meta['class_distribution']} != labels {dict(counts)}"
        )
    for end in prefix_ends:
        pc = Counter(classes[i] for i in range(min(end, n)) if i in classes)
        if (
            pc
            and max(pc.get(c, 0) for c in range(len(CLASS_NAMES)))
            - min(pc.get(c, 0) for c in range(len(CLASS_NAMES)))
            > 1
        ):
            balance.append(f"the first {end} samples are imbalanced: {dict(sorted(pc.items()))}")
    return balance


def _video_problems(layout: Layout, i: int, e: dict, meta: dict, quick: bool) -> list[str]:
    """At most one line: the file's type, its size against the manifest, then (unless quick)
    its SHA-256 and tensor; the file is read once, never past its recorded size."""
    path = layout.video(i)
    try:
        size = regular_size(path, layout.root)
        if size != e["video_bytes"]:
            return [f"videos/{path.name}: {size} bytes, its manifest records {e['video_bytes']}"]
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
    layout: Layout, i: int, e: dict | None, meta: dict
) -> tuple[list[str], int | None]:
    """At most one kind of problem: unreadable, its schema, else its SHA-256; and its class."""
    path = layout.label(i)
    try:
        data = read_file(path, layout.root)
    except DatasetError as err:
        return [str(err)], None
    problems, cls = label_problems(path.name, data, i, meta)
    if not problems and e is not None and sha256_bytes(data) != e["label_sha256"]:
        problems = [f"labels/{path.name}: SHA-256 differs from its manifest"]
    return problems, cls


def validate(root: Path, quick: bool = False, workers: int = 4) -> Report:
    rep = Report()
    try:
        meta = read_metadata(root)
    except DatasetError as e:
        rep.check("metadata", [str(e)])
        return rep
    rep.check("metadata", [], f"format v{meta['format_version']}")
    layout = Layout(root, meta["stem_width"])
    try:
        check_fingerprint(layout, meta)
        fingerprint = []
    except DatasetError as e:
        fingerprint = [str(e)]
    rep.check("fingerprint", fingerprint, "agrees with metadata.json")
    if meta.get("format", "pt") == "shards":
        from generator.validate_shards import check_shards

        check_shards(root, meta, rep, quick, workers)
        return rep
    n = meta["total_samples"]

    # Files: exactly the expected names, nothing else, no temporaries.
    expected_videos = {layout.video(i).name for i in range(n)}
    expected_labels = {layout.label(i).name for i in range(n)}
    videos = {p.name for p in layout.videos.iterdir()} if layout.videos.is_dir() else set()
    labels = {p.name for p in layout.labels.iterdir()} if layout.labels.is_dir() else set()
    rep.check(
        "counts",
        [f"videos/{s} is missing" for s in sorted(expected_videos - videos)]
        + [f"labels/{s} is missing" for s in sorted(expected_labels - labels)],
        f"{n} videos, {n} labels",
    )
    manifests = layout.manifests()
    allowed_top = {"videos", "labels", "checkpoints", "metadata.json", LOCK, STATS_FILE}
    extra = [f"videos/{s}" for s in sorted(videos - expected_videos)]
    extra += [f"labels/{s}" for s in sorted(labels - expected_labels)]
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

    # Manifests: cover 0..n-1.
    entries, _, prefix_ends, manifest_problems = read_manifests(layout, meta)
    check_manifest_coverage(rep, n, entries, manifest_problems, len(manifests))

    # Labels: schema, consistency and checksum (a missing file is already counted above).
    present = [i for i in range(n) if layout.label(i).name in labels]
    results = Parallel(n_jobs=workers, prefer="threads")(
        delayed(_label_file_problems)(layout, i, entries.get(i), meta) for i in present
    )
    classes = {}
    label_problem_lines = []
    for i, (problems, cls) in zip(present, results, strict=True):
        label_problem_lines += problems
        if cls is not None:
            classes[i] = cls
    rep.check("label schema", label_problem_lines, f"{len(classes)} labels")
    classes = with_manifest_classes(classes, entries)

    # Balance: whole set, metadata's counts, and every checkpoint prefix.
    counts = Counter(CLASS_NAMES[c] for c in classes.values())
    balance = balance_problems(classes, meta, prefix_ends)
    rep.check("class balance", balance, ", ".join(f"{c} {counts.get(c, 0)}" for c in CLASS_NAMES))

    # Videos: type and size always (a truncated video is caught even --quick), bytes unless --quick.
    checked = [i for i in range(n) if i in entries and layout.video(i).name in videos]
    found = Parallel(n_jobs=workers, prefer="threads")(
        delayed(_video_problems)(layout, i, entries[i], meta, quick) for i in checked
    )
    rep.check(
        "videos" + (" (quick: type and size only)" if quick else ""),
        [p for ps in found for p in ps],
        "type and size" + ("" if quick else ", checksums and tensor shapes"),
    )
    return rep


def main(argv: list[str]) -> int:
    from generator.cli import OneLineParser

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
    rep = validate(args.dir, quick=args.quick)
    print("\n".join(rep.lines))
    print(
        f"{args.dir}: " + ("all checks hold" if not rep.failed else f"{rep.failed} check(s) FAILED")
    )
    return 0 if not rep.failed else 1
