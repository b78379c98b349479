"""The checks ``validate`` makes of either layout: labels, manifests, coverage and class
balance (``validate_shards`` adds the shard-specific ones)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from pydantic import ValidationError

from generator.dataformat.layout import Layout
from generator.dataformat.sources import (
    DatasetError,
    Label,
    label_context,
    pose_problem,
    read_manifest,
    uncovered,
)
from trajkit.cli import error_message, short_repr

MAX_EXAMPLES = 5

# Problems of one label's per-frame ground truth against the metadata's cameras, [] when it
# holds: the renderer's independent check, handed in by the command line (this package
# does not import the renderer).
GroundTruthCheck = Callable[[dict, dict], list[str]]
GROUND_TRUTH_DETAIL = "uv = K (R X + t), depth and visibility flags"  # the "ok" line


def has_ground_truth(meta: dict) -> bool:
    """Whether the dataset's config asked for per-frame ground truth in every label."""
    section = meta.get("config", {}).get("ground_truth")
    return isinstance(section, dict) and section.get("enabled", True) is not False


def ground_truth_problems(name: str, raw: bytes, meta: dict, check: GroundTruthCheck) -> list[str]:
    """``check``'s problems with a label that passed its schema, each naming the file."""
    return [f"{name}: {p}" for p in check(json.loads(raw), meta)]


class Report:
    def __init__(self) -> None:
        self.failed = 0
        self.lines: list[str] = []

    def check(self, name: str, problems: list[str], ok_detail: str = "", unlisted: int = 0) -> None:
        """One check's line (and its first problems); ``unlisted`` counts problems too many
        to list (files a metadata claims past what the folder holds)."""
        count = len(problems) + unlisted
        if count:
            self.failed += 1
            more = f" (+{count - MAX_EXAMPLES} more)" if count > MAX_EXAMPLES else ""
            self.lines.append(f"FAIL {name}: {count} problem(s){more}")
            self.lines.extend(f"       - {p}" for p in problems[:MAX_EXAMPLES])
        else:
            self.lines.append(f"ok   {name}" + (f": {ok_detail}" if ok_detail else ""))

    def skip(self, name: str, why: str) -> None:
        """A check group that did not run: neither ok nor failed."""
        self.lines.append(f"skip {name}: {why}")


def label_problems(name: str, raw: bytes, index: int, meta: dict) -> tuple[list[str], int | None]:
    """Schema and consistency problems of one label's bytes, and its class if it parses."""
    try:
        label = Label.model_validate_json(raw, context=label_context(meta))
    except ValidationError as e:
        return [f"{name}: {error_message(e.errors()[0])}"], None
    problems = []
    if label.index != index:
        problems.append(f"{name}: index {short_repr(label.index)}, expected {index}")
    if label.class_name != meta["classes"][label.class_label]:
        problems.append(
            f"{name}: class_name {label.class_name!r} does not match class {label.class_label}"
        )
    future = meta.get("future_frame_index")  # positions run to the future frame
    if future is not None and len(label.positions) != future + 1:
        problems.append(f"{name}: positions must be {future + 1} points of 3 coordinates")
    elif future is not None and label.positions[future] != label.future_position:
        problems.append(f"{name}: future_position differs from positions[{future}]")
    if "video_shape" in meta and (problem := pose_problem(label, meta)):
        problems.append(f"{name}: {problem}")
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
            m, _ = read_manifest(path, layout.root)
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
    missing, first = uncovered(n, entries)
    if missing:
        problems.append(f"{missing} samples are in no checkpoint manifest (first: {first})")
    rep.check("checkpoint manifests", problems, f"{manifests} manifests cover all samples")


def with_manifest_classes(
    classes: dict[int, int], entries: dict[int, dict], meta: dict
) -> dict[int, int]:
    """``classes`` plus, for labels that could not be read, the class their manifest records:
    a damaged file is reported once, where it is, not again as an imbalance."""
    out = dict(classes)
    for i, e in entries.items():
        if i not in out and 0 <= e["class_label"] < len(meta["classes"]):
            out[i] = e["class_label"]
    return out


def balance_problems(classes: dict[int, int], meta: dict, prefix_ends: list[int]) -> list[str]:
    """Class balance of the whole set, metadata's counts, and every checkpoint prefix."""
    n = meta["total_samples"]
    names = meta["classes"]
    counts = Counter(names[c] for c in classes.values())
    per_class = {c: counts.get(c, 0) for c in names}  # every class, a missing one as 0
    balance = []
    if counts and max(per_class.values()) - min(per_class.values()) > 1:
        balance.append(f"classes are imbalanced: {per_class}")
    if dict(meta["class_distribution"]) != per_class:
        balance.append(
            f"metadata class_distribution {meta['class_distribution']} != labels {dict(counts)}"
        )
    for end in prefix_ends:  # over the classes found, not up to a manifest's claimed end
        pc = Counter(c for i, c in classes.items() if i < min(end, n))
        if (
            pc
            and max(pc.get(c, 0) for c in range(len(names)))
            - min(pc.get(c, 0) for c in range(len(names)))
            > 1
        ):
            balance.append(f"the first {end} samples are imbalanced: {dict(sorted(pc.items()))}")
    return balance
