"""``push DIR s3://bucket/prefix`` and ``pull s3://bucket/prefix DIR``: copy any folder to and from S3.

Works for a dataset or a training run folder alike. Every object carries the
SHA-256 of its bytes in its user metadata (``x-amz-meta-sha256``), which is
what makes the copy checkable and resumable:

- push skips a file whose object already holds the same SHA-256, so a push
  that was interrupted is simply run again;
- files larger than one part go up in parts, and an interrupted multipart upload
  is continued part by part (``generator.s3_multipart``), not started over;
- ``metadata.json`` goes last, so a dataset's prefix looks complete only when it is;
- both hold a dataset folder's ``.lock`` (``trajkit.lock``) while they run: a push or
  pull is refused while a generator writes the folder, and a generator cannot start meanwhile;
- pull writes each file to a temporary name, checks its SHA-256 against the
  object's metadata, and renames it into place; a mismatch (a damaged object)
  fails the pull with exit 1 and leaves nothing half-written.

Credentials come from boto3's usual chain (environment, ``~/.aws``, instance
role); ``--endpoint-url`` points at any S3-compatible store (MinIO, Ceph, R2).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from generator.dataformat.layout import LOCK, METADATA
from generator.s3_multipart import upload_resumable
from trajkit.files import TMP_PREFIX, sha256_file
from trajkit.lock import FolderLock, LockedError

SHA_KEY = "sha256"
MB = 1 << 20


class S3Error(Exception):
    """A push or pull that cannot proceed; ``exit_code`` 2 for bad input, 1 for failed verification."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix") (no trailing slash)."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise S3Error(f"expected an address like s3://bucket/prefix, got {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def _key(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def make_client(endpoint_url: str | None):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


def transfer_config(part_size: int = 64 * MB):
    """Multipart above one part; parts of ``part_size`` (S3's minimum is 5 MiB)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)


def _remote_sha(client, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("Metadata", {}).get(SHA_KEY)


def check_bucket(client, bucket: str) -> None:
    """One clear line if the bucket is missing or forbidden, before any transfer starts."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        what = "does not exist" if code in ("404", "NoSuchBucket") else f"cannot be used ({code})"
        raise S3Error(f"bucket {bucket!r} {what}") from None


def local_files(root: Path) -> list[str]:
    """Relative paths to copy: everything but the lock and temporaries, ``metadata.json`` last."""
    rels = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != LOCK and not p.name.startswith(TMP_PREFIX)
    )
    return sorted(rels, key=lambda r: r == METADATA)


@contextmanager
def _writer_lock(root: Path):
    """Hold the folder's generator lock, if it has one, so no generator writes it meanwhile.

    A folder without ``.lock`` (a training run, a new folder) gets none: we leave no file behind.
    """
    if not (root / LOCK).exists():
        yield
        return
    try:
        with FolderLock(root / LOCK):
            yield
    except LockedError as e:
        raise S3Error(str(e)) from None


def push(root: Path, url: str, client, part_size: int = 64 * MB, quiet: bool = False) -> dict:
    """Upload ``root`` under ``url``; returns counts of uploaded and skipped files.

    Refused while a generator writes ``root``: its half-made files would be copied.
    """
    bucket, prefix = parse_url(url)
    if not root.is_dir():
        raise S3Error(f"{root} is not a folder")
    check_bucket(client, bucket)
    with _writer_lock(root):
        return _push(root, bucket, prefix, client, part_size, quiet)


def _push(root: Path, bucket: str, prefix: str, client, part_size: int, quiet: bool) -> dict:
    config = transfer_config(part_size)
    stats = {"uploaded": 0, "skipped": 0, "bytes": 0, "parts_reused": 0}
    files = local_files(root)
    for rel in tqdm(files, unit="file", disable=quiet or not sys.stderr.isatty()):
        path, key = root / rel, _key(prefix, rel)
        sha = sha256_file(path)
        if _remote_sha(client, bucket, key) == sha:
            stats["skipped"] += 1
            continue
        if path.stat().st_size > part_size:
            parts = upload_resumable(
                client, path, bucket, key, {SHA_KEY: sha}, part_size, config.max_concurrency
            )
            stats["parts_reused"] += parts["parts_reused"]
        else:
            client.upload_file(
                str(path), bucket, key, ExtraArgs={"Metadata": {SHA_KEY: sha}}, Config=config
            )
        stats["uploaded"] += 1
        stats["bytes"] += path.stat().st_size
    return stats


def pull(url: str, root: Path, client, part_size: int = 64 * MB, quiet: bool = False) -> dict:
    """Download every object under ``url`` into ``root``, each verified by its SHA-256."""
    bucket, prefix = parse_url(url)
    check_bucket(client, bucket)
    config = transfer_config(part_size)
    base = f"{prefix}/" if prefix else ""
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        keys += [o["Key"] for o in page.get("Contents", [])]
    if not keys:
        raise S3Error(f"nothing under {url}")
    root.mkdir(parents=True, exist_ok=True)
    with _writer_lock(root):
        return _pull(keys, root, bucket, prefix, client, config, quiet)


def _pull(
    keys: list[str], root: Path, bucket: str, prefix: str, client, config, quiet: bool
) -> dict:
    base = f"{prefix}/" if prefix else ""
    keys.sort(key=lambda k: k == _key(prefix, METADATA))  # the completion marker last
    stats = {"downloaded": 0, "skipped": 0, "damaged": []}
    for key in tqdm(keys, unit="file", disable=quiet or not sys.stderr.isatty()):
        rel = key[len(base) :]
        if not rel or rel.endswith("/") or ".." in Path(rel).parts or Path(rel).is_absolute():
            continue  # folder markers, and keys that would land outside DIR
        if rel == LOCK:
            continue  # ours is held for this pull
        want = _remote_sha(client, bucket, key)
        if want is None:
            stats["damaged"].append(f"{rel}: the object has no sha256 metadata to verify it by")
            continue
        path = root / rel
        if path.is_file() and sha256_file(path) == want:
            stats["skipped"] += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
        try:
            client.download_file(bucket, key, str(tmp), Config=config)
            if sha256_file(tmp) != want:
                stats["damaged"].append(f"{rel}: SHA-256 of the downloaded bytes differs")
                continue
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        stats["downloaded"] += 1
    return stats


def main(command: str, argv: list[str]) -> int:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    from trajkit.cli import OneLineParser

    p = OneLineParser(prog=f"python -m generator {command}", description=__doc__.splitlines()[0])
    if command == "push":
        p.add_argument("dir", type=Path)
        p.add_argument("url", help="s3://bucket/prefix")
    else:
        p.add_argument("url", help="s3://bucket/prefix")
        p.add_argument("dir", type=Path)
    p.add_argument("--endpoint-url", help="any S3-compatible endpoint (default: AWS)")
    p.add_argument("--part-size-mb", type=int, default=64, help="multipart part size (>= 5)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.part_size_mb < 5:
        print("error: --part-size-mb must be at least 5 (S3's smallest part)", file=sys.stderr)
        return 2
    try:
        client = make_client(args.endpoint_url)
        if command == "push":
            s = push(args.dir, args.url, client, args.part_size_mb * MB, args.quiet)
            print(
                f"pushed {args.dir} to {args.url}: {s['uploaded']} files uploaded "
                f"({s['bytes'] / 1e6:.1f} MB), {s['skipped']} already there with the same SHA-256"
                + (
                    f"; {s['parts_reused']} parts of interrupted uploads kept"
                    if s["parts_reused"]
                    else ""
                )
            )
            return 0
        s = pull(args.url, args.dir, client, args.part_size_mb * MB, args.quiet)
    except S3Error as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except (Boto3Error, BotoCoreError, ClientError) as e:
        print(f"error: {command} failed: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {command} failed: {e.strerror or e}", file=sys.stderr)
        return 2
    if s["damaged"]:
        print(
            f"error: {len(s['damaged'])} object(s) failed verification and were not written: "
            + "; ".join(s["damaged"][:3]),
            file=sys.stderr,
        )
        return 1
    print(
        f"pulled {args.url} to {args.dir}: {s['downloaded']} files downloaded and verified, "
        f"{s['skipped']} already present with the same SHA-256"
    )
    return 0
