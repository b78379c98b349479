"""``python -m generator validate DIR``: can every file of this dataset be trusted?

Checks, each reported on its own line: metadata, file counts and names, class
balance (whole set and every checkpoint prefix), label schema, tensor shape
and dtype (loaded with ``weights_only=True``), SHA-256 against the manifests,
and no orphan or temporary files. ``--quick`` skips reading the videos.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from joblib import Parallel, delayed
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from generator.config import CLASS_NAMES
from generator.dataset import STATS_FILE, DatasetError, load_video, read_metadata
from generator.store import FINGERPRINT, LOCK, TMP_PREFIX, Layout, read_json, sha256_file

MAX_EXAMPLES = 5
REQUIRED_METADATA = (
    "format_version", "total_samples", "class_distribution", "generation_time_seconds", "timestamp",
    "video_shape", "dtype", "classes", "seed", "config", "cameras", "stem_width",
)  # fmt: skip


class Label(BaseModel):
    """The schema every label file must satisfy (extra keys are allowed)."""

    model_config = ConfigDict(extra="allow")
    index: int
    class_label: int
    class_name: str
    future_position: list[float]
    positions: list[list[float]]
    trajectory_params: dict
    seed: list[int]
    video_sha256: str

    @field_validator("class_label")
    @classmethod
    def _known_class(cls, v: int) -> int:
        if not 0 <= v < len(CLASS_NAMES):
            raise ValueError(f"class_label {v} is not one of 0..{len(CLASS_NAMES) - 1}")
        return v

    @field_validator("future_position")
    @classmethod
    def _xyz(cls, v: list[float]) -> list[float]:
        if len(v) != 3:
            raise ValueError("future_position must have 3 coordinates")
        return v


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


def _label_problems(path: Path, index: int, meta: dict) -> tuple[list[str], int | None]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        return [f"{path.name}: cannot be read ({e.strerror})"], None
    return label_problems(path.name, raw, index, meta)


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
    expected_len = meta["config"]["frames"] + meta["config"]["horizon"]
    if len(label.positions) != expected_len or any(len(p) != 3 for p in label.positions):
        problems.append(f"{name}: positions must be {expected_len} points of 3 coordinates")
    elif label.positions[meta["future_frame_index"]] != label.future_position:
        problems.append(
            f"{name}: future_position differs from positions[{meta['future_frame_index']}]"
        )
    return problems, label.class_label


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


def validate(root: Path, quick: bool = False, workers: int = 4) -> Report:
    rep = Report()
    try:
        meta = read_metadata(root)
    except DatasetError as e:
        rep.check("metadata", [str(e)])
        return rep
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    rep.check(
        "metadata",
        [f"metadata.json lacks {k!r}" for k in missing],
        f"format v{meta['format_version']}",
    )
    if missing:
        return rep
    if meta.get("format", "pt") == "shards":
        from generator.validate_shards import check_shards

        check_shards(root, meta, rep, quick, workers)
        return rep
    n = meta["total_samples"]
    layout = Layout(root, meta["stem_width"])

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

    # Manifests: cover 0..n-1 in order.
    entries: dict[int, dict] = {}
    manifest_problems = []
    prefix_ends = []
    for path in manifests:
        try:
            m = read_json(path)
            for e in m["samples"]:
                entries[int(e["index"])] = e
            prefix_ends.append(int(m["end"]))
        except (ValueError, KeyError, TypeError) as e:
            manifest_problems.append(f"{path.name}: {e}")
    check_manifest_coverage(rep, n, entries, manifest_problems, len(manifests))

    # Labels: schema, consistency; and their checksums.
    results = Parallel(n_jobs=workers, prefer="threads")(
        delayed(_label_problems)(layout.label(i), i, meta)
        for i in range(n)
        if layout.label(i).name in labels
    )
    classes = {}
    label_problems = []
    for i, (problems, cls) in zip(
        [i for i in range(n) if layout.label(i).name in labels], results, strict=True
    ):
        label_problems += problems
        if cls is not None:
            classes[i] = cls
    rep.check("label schema", label_problems, f"{len(classes)} labels")

    # Balance: whole set, metadata's counts, and every checkpoint prefix.
    counts = Counter(CLASS_NAMES[c] for c in classes.values())
    balance = balance_problems(classes, meta, prefix_ends)
    rep.check("class balance", balance, ", ".join(f"{c} {counts.get(c, 0)}" for c in CLASS_NAMES))

    # Checksums: labels always, videos unless --quick.
    def file_checks(i: int) -> list[str]:
        e = entries.get(i)
        if e is None:
            return []
        out = []
        lp, vp = layout.label(i), layout.video(i)
        if lp.exists() and sha256_file(lp) != e["label_sha256"]:
            out.append(f"labels/{lp.name}: SHA-256 differs from its manifest")
        if not quick and vp.exists():
            if sha256_file(vp) != e["video_sha256"]:
                out.append(f"videos/{vp.name}: SHA-256 differs from its manifest")
            try:
                load_video(vp, tuple(meta["video_shape"]))
            except DatasetError as err:
                out.append(str(err))
        return out

    checked = Parallel(n_jobs=workers, prefer="threads")(delayed(file_checks)(i) for i in range(n))
    detail = "labels" + ("" if quick else ", videos and tensor shapes")
    rep.check(
        "checksums" + (" (quick: labels only)" if quick else ""),
        [p for ps in checked for p in ps],
        detail,
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
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a folder", file=sys.stderr)
        return 2
    rep = validate(args.dir, quick=args.quick)
    print("\n".join(rep.lines))
    print(
        f"{args.dir}: " + ("all checks hold" if not rep.failed else f"{rep.failed} check(s) FAILED")
    )
    return 0 if not rep.failed else 1
