"""pull: every object under a prefix checked and verified into the staging folder, and moved
into DIR only when all did."""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
from collections import Counter
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from trajkit.cli import one_line
from trajkit.files import loads_json, remove_temporaries, temporary_beside, write_json_atomic
from trajkit.lock import FolderLock, LockedError, remove_if_unused
from trajkit.s3_multipart import S3Error
from trajkit.s3sync.rules import (
    ANY_FOLDER,
    STAGING_LOCK,
    FolderRules,
    left_out,
    safe_rel,
    writer_lock,
)
from trajkit.s3sync.staging import (
    check_space,
    check_staging,
    clear_the_way,
    move_into_place,
)
from trajkit.s3sync.store import (
    MB,
    check_bucket,
    key_for,
    listing,
    parse_url,
    transfer_config,
    transferred,
)
from trajkit.s3sync.verify import Check, Unverified, check_for

LEFT_OUT = "left out: a cache without a hash, computed again by the reader"


def pull(
    url: str,
    root: Path,
    client,
    part_size: int = 64 * MB,
    quiet: bool = False,
    rules: FolderRules = ANY_FOLDER,
) -> dict:
    """Download every object under ``url`` into ``root``, each verified before any is put in place."""
    bucket, prefix = parse_url(url)
    source = f"s3://{bucket}/{prefix}".rstrip("/")
    target = Path(os.path.abspath(root))
    if not target.name:
        raise S3Error(f"cannot pull into {root}: name a folder")
    check_bucket(client, bucket)
    objects = listing(client, bucket, prefix)
    if not objects:
        raise S3Error(f"nothing under {url}")
    if rules.last is not None and key_for(prefix, rules.last) not in objects:
        raise S3Error(
            f"{source} has no {rules.last}, the file its writer writes last: it is not whole "
            f"(a push not finished, or still running); nothing was pulled into {target}",
            exit_code=1,
        )
    rels, unsafe = _wanted(objects, f"{prefix}/" if prefix else "", rules)
    if unsafe:
        return {"downloaded": 0, "kept": 0, "skipped": 0, "damaged": unsafe, "by": Counter()}
    _refuse_clashes(rels, source, target)
    staging = target.parent / f".{target.name}.pull-tmp"
    marker = target.parent / f".{target.name}.pulled-from"
    lock_name = rules.lock or STAGING_LOCK
    origin = {"source": source, "endpoint": _endpoint(client.meta.endpoint_url)}
    _check_target(target, marker, origin, source, rules)
    check_staging(staging, lock_name)
    check_space(rels, staging, target, source)
    with ExitStack() as stack:
        stack.callback(remove_if_unused, staging, lock_name)  # runs after the locks' release
        if target.is_dir():
            stack.enter_context(writer_lock(target, rules))
        staging.mkdir(parents=True, exist_ok=True)
        try:
            stack.enter_context(FolderLock(staging / lock_name))
        except LockedError as e:
            raise S3Error(str(e)) from None
        # again, now that no other pull can: one may have finished into DIR since the check
        _check_target(target, marker, origin, source, rules)
        clear_the_way(rels, staging, target, source)
        remove_temporaries(staging)
        stats = _fetch(rels, staging, target, bucket, client, part_size, quiet, rules)
        if stats["damaged"]:
            return stats  # nothing moved: DIR is as it was, staging keeps what verified
        to_move = stats.pop("to_move")
        clear_the_way(to_move, staging, target, source)  # what DIR holds now, just before
        write_json_atomic(marker, origin)
        move_into_place(to_move, staging, target, rules.last if rules.last in rels else None)
    shutil.rmtree(staging, ignore_errors=True)
    return stats


def _wanted(objects: dict[str, dict], base: str, rules: FolderRules):
    """{relative path: (key, listing entry)} of the objects to pull, and the names refused."""
    rels, unsafe = {}, []
    for key, obj in objects.items():
        rel = key[len(base) :]
        if not rel or (rel.endswith("/") and obj["Size"] == 0) or left_out(rel, rules):
            continue  # folder markers; our own lock is held for this pull
        if not safe_rel(rel):
            unsafe.append(f"{one_line(repr(rel))}: a name that cannot be a file inside the folder")
            continue
        rels[rel] = (key, obj)
    return rels, unsafe


def _refuse_clashes(rels: dict[str, tuple], source: str, target: Path) -> None:
    """A key that is both a file and a folder (``x`` and ``x/y``) cannot be pulled at all."""
    for rel in rels:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if (folder := "/".join(parts[:depth])) in rels:
                raise S3Error(
                    f"{source}/{folder} is both a file and a folder (it holds {rel}), which a "
                    f"folder cannot be; nothing was pulled into {target}",
                    exit_code=1,
                )


def _endpoint(url: str | None) -> str | None:
    """An endpoint as its earlier pull's marker records it: however scheme, host and a
    trailing slash were spelt, the same place."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _check_target(
    target: Path, marker: Path, origin: dict, source: str, rules: FolderRules
) -> None:
    """DIR is new, empty (but for a lock), or an earlier pull of the same address."""
    if os.path.lexists(target) and not target.exists():
        raise S3Error(f"{target} is a link to nothing; give a folder")
    if target.exists() and not target.is_dir():
        raise S3Error(f"{target} is not a folder")
    if not target.exists() or all(p.name == rules.lock for p in target.iterdir()):
        return
    try:
        earlier = loads_json(marker.read_text())
    except (OSError, ValueError):
        earlier = None
    if not isinstance(earlier, dict) or earlier.get("source") != source:
        raise S3Error(
            f"{target} is not empty and is not a pull of {source}; pull into a new or empty folder"
        )
    if _endpoint(earlier.get("endpoint")) != origin["endpoint"]:
        raise S3Error(
            f"{target} is a pull of {source} from {earlier.get('endpoint') or 'AWS'}, not from "
            f"{origin['endpoint'] or 'AWS'}; pull into a new or empty folder"
        )


def _fetch(
    rels: dict[str, tuple],
    staging: Path,
    target: Path,
    bucket: str,
    client,
    part_size: int,
    quiet: bool,
    rules: FolderRules,
) -> dict:
    """Verify every object into ``staging`` (or find it already in ``target``)."""
    config = transfer_config(part_size)
    stats = {"downloaded": 0, "kept": 0, "skipped": 0, "damaged": [], "to_move": []}
    by: Counter[str] = Counter()
    # manifests first (they hold hashes of the rest), the last file last
    order = sorted(rels, key=lambda r: (not rules.is_manifest(r), r == rules.last, r))
    manifests: dict[str, set[str]] = {}  # a file listed by two manifests must match both

    def read_manifest(path: Path) -> None:
        for rel, sha in rules.hashes_in(path).items():
            manifests.setdefault(rel, set()).add(sha)

    # no mutate: whether a progress bar shows, and its unit, are cosmetic
    hidden = quiet or not sys.stderr.isatty()  # pragma: no mutate
    for rel in tqdm(order, unit="file", disable=hidden):  # pragma: no mutate
        key, obj = rels[rel]
        try:
            check = check_for(client, bucket, key, rel, manifests)
        except Unverified as e:
            stats["damaged"].append(f"{rel}: {e}")
            continue
        if not check.known and rel in rules.recomputed:
            by[LEFT_OUT] += 1
            continue
        if not check.known and not rules.is_self_checked(rel):
            stats["damaged"].append(
                f"{rel}: nothing to verify it by (no sha256 metadata, no SHA-256 checksum, "
                "in no manifest)"
            )
            continue
        here, staged = target / rel, staging / rel
        if check.known and here.is_file() and (label := check.passes(here)):
            stats["skipped"] += 1
            by[label] += 1
            if staged.is_file():
                staged.unlink()  # an older copy from a failed run: never to be moved in
            if rules.is_manifest(rel):
                read_manifest(here)
            continue
        if check.known and staged.is_file() and (label := check.passes(staged)):
            stats["kept"] += 1
        else:
            try:
                label = _download(client, bucket, key, obj["Size"], staged, check, config, rules)
            except Unverified as e:
                stats["damaged"].append(f"{rel}: {e}")
                continue
            stats["downloaded"] += 1
        by[label] += 1
        if rules.is_manifest(rel):
            read_manifest(staged)
        if not check.known and here.is_file() and filecmp.cmp(here, staged, shallow=False):
            continue  # the same file is already in place
        stats["to_move"].append(rel)
    stats["by"] = by
    return stats


def _download(
    client, bucket, key, size: int, staged: Path, check: Check, config, rules: FolderRules
) -> str:
    """Download ``key`` to ``staged`` through a temporary name; the label it verified by."""
    staged.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(staged)
    try:
        transferred(
            client,
            partial(client.download_file, bucket, key, str(tmp), Config=config),
            size,
            f"s3://{bucket}/{key}",
        )
        if (got := tmp.stat().st_size) != size:
            raise Unverified(f"{got:,} bytes arrived, the listing says {size:,}")
        label = check.passes(tmp) if check.known else rules.self_checked_by
        if label is None:
            raise Unverified(f"SHA-256 of the downloaded bytes differs from {check.failure}")
        os.replace(tmp, staged)
        return label
    finally:
        tmp.unlink(missing_ok=True)
