"""push: a folder up to S3, with what a pull verifies it by; what is already there is skipped,
so an interrupted push is simply run again."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from tqdm import tqdm

from trajkit.cli import one_line
from trajkit.s3_multipart import (
    MAX_PARTS,
    SHA_KEY,
    FileHashes,
    ResumeRecord,
    S3Error,
    hash_file,
    identity,
    upload_resumable,
)
from trajkit.s3sync.rules import ANY_FOLDER, FolderRules, local_files, safe_rel, writer_lock
from trajkit.s3sync.store import (
    MAX_KEY,
    MB,
    check_bucket,
    head_or_none,
    key_for,
    listing,
    parse_url,
    transfer_config,
    transferred,
)


def _check_names(root: Path, prefix: str, rels: list[str], part_size: int) -> None:
    """Refuse up front what a push would fail on midway, or what a pull could not write back."""
    for rel in rels:
        shown = one_line(repr(str(root / rel)))
        try:
            key = key_for(prefix, rel).encode()
        except UnicodeEncodeError:
            raise S3Error(
                f"{shown}: a name that is not UTF-8 cannot be an S3 key; rename it"
            ) from None
        if not safe_rel(rel):
            raise S3Error(f"{shown}: a name with a control character; a pull could not write it")
        if len(key) > MAX_KEY:
            raise S3Error(f"{shown}: its key would be longer than S3's {MAX_KEY} bytes")
        if (root / rel).stat().st_size > MAX_PARTS * part_size:
            raise S3Error(
                f"{shown} needs more than S3's {MAX_PARTS:,} parts of {part_size // MB} MB; "
                "give a larger --part-size-mb"
            )


def push(
    root: Path,
    url: str,
    client,
    part_size: int = 64 * MB,
    quiet: bool = False,
    rules: FolderRules = ANY_FOLDER,
) -> dict:
    """Upload ``root`` under ``url``; returns counts of uploaded and skipped files.

    Refused while a writer holds ``root``'s lock: its half-made files would be copied.
    """
    bucket, prefix = parse_url(url)
    if not root.is_dir():
        raise S3Error(f"{root} is not a folder")
    check_bucket(client, bucket)
    with writer_lock(root, rules):
        return _push(root, bucket, prefix, client, part_size, quiet, rules)


def _already_there(client, bucket: str, key: str, listed: dict | None, h: FileHashes) -> bool:
    """Same size, same bytes and a hash a pull can verify it by.

    The listing tells for what we pushed: ETag (MD5 of the bytes or of their parts) and a
    SHA-256 checksum. Otherwise one HEAD reads the sha256 metadata: an object sent in parts
    of another size, encrypted with KMS, or pushed by an older version without checksum.
    An object of another uploader, with neither, is sent again so that it gets them.
    """
    if listed is None or listed["Size"] != h.size:
        return False
    etag = str(listed.get("ETag", "")).strip('"')
    if etag in h.etags() and "SHA256" in listed.get("ChecksumAlgorithm", []):
        return True
    head = head_or_none(client, bucket, key)
    if head is None:
        return False
    # no mutate: botocore gives every HEAD a Metadata dict, empty when there is none
    stored = head.get("Metadata", {})  # pragma: no mutate
    return stored.get(SHA_KEY) == h.sha256


def _push(
    root: Path, bucket: str, prefix: str, client, part_size: int, quiet: bool, rules: FolderRules
) -> dict:
    config = transfer_config(part_size)
    stats = {"uploaded": 0, "skipped": 0, "bytes": 0, "parts_reused": 0, "warnings": []}
    rels, notes = local_files(root, rules)
    _check_names(root, prefix, rels, part_size)
    if notes:
        stats["warnings"].append(f"{len(notes)} not pushed as plain files: " + "; ".join(notes))
    remote = listing(client, bucket, prefix)
    others = set(remote) - {key_for(prefix, rel) for rel in rels}
    if others := {k for k in others if not k.endswith("/")}:
        stats["warnings"].append(
            f"{len(others)} object(s) under s3://{bucket}/{prefix} are not in {root} (an "
            f"earlier push?), e.g. {min(others)}; they stay there, and a pull gets them too"
        )
    # no mutate: whether a progress bar shows, and its unit, are cosmetic
    hidden = quiet or not sys.stderr.isatty()  # pragma: no mutate
    for rel in tqdm(rels, unit="file", disable=hidden):  # pragma: no mutate
        path, key = root / rel, key_for(prefix, rel)
        h = hash_file(path, part_size)
        if _already_there(client, bucket, key, remote.get(key), h):
            ResumeRecord(client, bucket, key).clear()  # one a stop right after completing left
            stats["skipped"] += 1
            continue
        if h.size > part_size:
            parts = transferred(
                client,
                partial(upload_resumable, client, path, bucket, key, h, config.max_concurrency),
                h.size,
                f"s3://{bucket}/{key}",
            )
            stats["parts_reused"] += parts["parts_reused"]
        else:
            extra = {"Metadata": {SHA_KEY: h.sha256}, "ChecksumAlgorithm": "SHA256"}
            transferred(
                client,
                partial(client.upload_file, str(path), bucket, key, ExtraArgs=extra, Config=config),
                h.size,
                f"s3://{bucket}/{key}",
            )
            if identity(path.stat()) != h.identity:  # its metadata would vouch for other bytes
                client.delete_object(Bucket=bucket, Key=key)
                raise S3Error(f"{path} changed while it was pushed; push again", 1)
        stats["uploaded"] += 1
        stats["bytes"] += h.size
    return stats
