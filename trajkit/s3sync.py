"""``push DIR s3://bucket/prefix`` and ``pull s3://bucket/prefix DIR``: copy any folder to and from S3.

What a kind of folder adds is told by its ``FolderRules``: the file written last (a
dataset's ``metadata.json``), its writers' lock, the manifests that hold the SHA-256 of
other files, the files its own reader checks, the caches it computes again. The default
rules know none of these; the dataset format's are ``generator.dataformat.remote.DATASET``.

push
  lists the prefix once and skips a file whose object has the same size and the same hash
  (its ETag is the MD5 of the file, or of its parts; only an object whose ETag cannot tell,
  e.g. sent in parts of another size, costs one HEAD for its sha256 metadata), so an
  interrupted push is simply run again. Every object goes up with S3's SHA-256 checksum
  (``ChecksumAlgorithm="SHA256"``, checked by S3 on arrival) and with the file's SHA-256 in
  its user metadata (``x-amz-meta-sha256``). Files larger than one part go up in parts, and
  an interrupted multipart upload is continued part by part (``trajkit.s3_multipart``).
  The file written last goes last, so a prefix looks complete only when it is.

pull
  verifies every object before anything is put in place, by the first of: its sha256
  metadata; S3's SHA-256 checksum of a single-part object (a multipart object's checksum is
  of its parts' checksums: recomputed from the parts' sizes, else the next check); the
  SHA-256 that the folder's manifests record (fetched first for that reason). The files
  the folder's reader checks itself need none; a cache it computes again is left out
  without a hash. Any other object without a hash fails the pull. Objects are downloaded
  into ``.DIR.pull-tmp`` beside DIR, and moved into DIR only once every one verified, with
  the file written last moved last; a failed or interrupted pull leaves DIR as it was, and
  the next run keeps what already verified. DIR must be new, empty, or an earlier pull of
  the same address (recorded in ``.DIR.pulled-from`` beside it).

Both hold the folder's writer lock (``trajkit.lock``), if the rules name one and it exists,
while they run: a push or pull is refused while a writer writes the folder, and a writer
cannot start meanwhile. Credentials come from boto3's usual chain (environment, ``~/.aws``,
instance role); ``--endpoint-url`` points at any S3-compatible store (MinIO, Ceph, R2).
"""

from __future__ import annotations

import base64
import filecmp
import json
import math
import os
import re
import shutil
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from trajkit.files import (
    TMP_PREFIX,
    remove_temporaries,
    sha256_file,
    sync_filesystem,
    write_json_atomic,
)
from trajkit.lock import FolderLock, LockedError
from trajkit.s3_multipart import (
    SHA_KEY,
    FileHashes,
    S3Error,
    hash_file,
    identity,
    upload_resumable,
)

__all__ = ["S3Error", "FolderRules", "parse_url", "check_endpoint", "push", "pull", "main"]

MB = 1 << 20
EXTRA_HINT = "push/pull needs boto3: pip install 'trajectory-suite[s3]'"
# Bucket names as S3 allows them, with upper case and '_' that some S3-compatible stores accept.
BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")
MAX_KEY = 1024  # bytes, S3's limit
STAGING_LOCK = ".lock"  # a pull's own lock in its staging folder when the rules name none


def _no_hashes(path: Path) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class FolderRules:
    """What a kind of folder tells push and pull; the defaults fit any folder.

    ``last``: the file written last, which says the folder is whole: pushed last, moved in
    last. ``lock``: the name of its writers' lock file, held while syncing and never copied.
    ``manifests``: files (relative paths) holding other files' SHA-256, which
    ``hashes_in(path)`` reads as {relative path: SHA-256}; nothing it raises may escape (a
    manifest that does not parse vouches for nothing). ``self_checked``: files that need no
    hash because the folder's reader checks them, reported as ``self_checked_by``.
    ``recomputed``: caches the reader computes again, left out when they have no hash.
    """

    last: str | None = None
    lock: str | None = None
    manifests: re.Pattern[str] | None = None
    hashes_in: Callable[[Path], dict[str, str]] = _no_hashes
    self_checked: re.Pattern[str] | None = None
    self_checked_by: str = "left to the folder's reader"
    recomputed: frozenset[str] = frozenset()

    def is_manifest(self, rel: str) -> bool:
        return self.manifests is not None and self.manifests.fullmatch(rel) is not None

    def is_self_checked(self, rel: str) -> bool:
        return self.self_checked is not None and self.self_checked.fullmatch(rel) is not None


ANY_FOLDER = FolderRules()
LEFT_OUT = "left out: a cache without a hash, computed again by the reader"


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix"); one trailing slash is allowed.

    Refused: control characters, '.' or '..' segments, empty segments: S3 would store such a
    key as it is, and a pull would make something else of it on disk.
    """
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise S3Error(f"expected an address like s3://bucket/prefix, got {url!r}")
    if _has_control(url):
        raise S3Error(f"the address {url!r} contains a control character")
    bucket, _, prefix = url[5:].partition("/")
    if not BUCKET.fullmatch(bucket):
        raise S3Error(f"{bucket!r} is not a bucket name (3-63 letters, digits, '.', '-', '_')")
    prefix = prefix.removesuffix("/")
    segments = prefix.split("/") if prefix else []
    if "" in segments:
        raise S3Error(f"the address {url!r} has an empty path segment ('//')")
    if "." in segments or ".." in segments:
        raise S3Error(f"the address {url!r} has a '.' or '..' path segment")
    if len(prefix.encode()) > MAX_KEY // 2:
        raise S3Error(f"the prefix of {url!r} is too long for S3 keys under it")
    return bucket, prefix


def check_endpoint(url: str | None) -> None:
    """``--endpoint-url`` is ``http(s)://host[:port][/path]``, nothing else."""
    if url is None:
        return
    bad = S3Error(f"--endpoint-url must look like http(s)://host[:port], got {url!r}")
    if _has_control(url) or any(c.isspace() for c in url):
        raise bad
    try:  # an unclosed IPv6 bracket raises in urlsplit, a port that is not a number in .port
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        raise bad from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
    ):
        raise bad


def _key(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


TIMEOUT_SECONDS = 60.0
"""How long a connection may take to open, or stay silent, before the request is retried
(botocore's default too); retries follow boto3's settings (``AWS_MAX_ATTEMPTS``)."""


def make_client(endpoint_url: str | None, timeout: float = TIMEOUT_SECONDS):
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout, read_timeout=timeout)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def transfer_config(part_size: int = 64 * MB):
    """Parts of ``part_size`` (S3's minimum is 5 MiB); a file of at most one part goes whole."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=part_size + 1, multipart_chunksize=part_size)


def _head(client, bucket: str, key: str, **kw) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return client.head_object(Bucket=bucket, Key=key, **kw)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def check_bucket(client, bucket: str) -> None:
    """One clear line if the bucket is missing or forbidden, before any transfer starts."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        what = "does not exist" if code in ("404", "NoSuchBucket") else f"cannot be used ({code})"
        raise S3Error(f"bucket {bucket!r} {what}") from None


def listing(client, bucket: str, prefix: str) -> dict[str, dict]:
    """Every object under ``prefix``: key -> its listing entry (Size, ETag), in one paginated LIST."""
    base = f"{prefix}/" if prefix else ""
    found: dict[str, dict] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        found.update((o["Key"], o) for o in page.get("Contents", []))
    return found


def local_files(root: Path, rules: FolderRules = ANY_FOLDER) -> list[str]:
    """Relative paths to copy: everything but the lock and temporaries, the last file last."""
    rels = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != rules.lock and not p.name.startswith(TMP_PREFIX)
    )
    return sorted(rels, key=lambda r: r == rules.last)


@contextmanager
def _writer_lock(root: Path, rules: FolderRules):
    """Hold the folder's writer lock, if it has one, so no writer writes it meanwhile.

    A folder without one (a training run, a new folder) gets none: we leave no file behind.
    """
    if rules.lock is None or not (root / rules.lock).exists():
        yield
        return
    try:
        with FolderLock(root / rules.lock):
            yield
    except LockedError as e:
        raise S3Error(str(e)) from None


# ---------------------------------------------------------------- push


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
    with _writer_lock(root, rules):
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
    if listed["ETag"].strip('"') in h.etags() and "SHA256" in listed.get("ChecksumAlgorithm", []):
        return True
    head = _head(client, bucket, key)
    if head is None:
        return False
    # no mutate: botocore gives every HEAD a Metadata dict, empty when there is none
    stored = head.get("Metadata", {})  # pragma: no mutate
    return stored.get(SHA_KEY) == h.sha256


def _push(
    root: Path, bucket: str, prefix: str, client, part_size: int, quiet: bool, rules: FolderRules
) -> dict:
    config = transfer_config(part_size)
    stats = {"uploaded": 0, "skipped": 0, "bytes": 0, "parts_reused": 0}
    remote = listing(client, bucket, prefix)
    # no mutate: whether a progress bar shows, and its unit, are cosmetic
    hidden = quiet or not sys.stderr.isatty()  # pragma: no mutate
    for rel in tqdm(local_files(root, rules), unit="file", disable=hidden):  # pragma: no mutate
        path, key = root / rel, _key(prefix, rel)
        h = hash_file(path, part_size)
        if _already_there(client, bucket, key, remote.get(key), h):
            stats["skipped"] += 1
            continue
        if h.size > part_size:
            parts = upload_resumable(client, path, bucket, key, h, config.max_concurrency)
            stats["parts_reused"] += parts["parts_reused"]
        else:
            extra = {"Metadata": {SHA_KEY: h.sha256}, "ChecksumAlgorithm": "SHA256"}
            client.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=config)
            if identity(path.stat()) != h.identity:  # its metadata would vouch for other bytes
                client.delete_object(Bucket=bucket, Key=key)
                raise S3Error(f"{path} changed while it was pushed; push again", 1)
        stats["uploaded"] += 1
        stats["bytes"] += h.size
    return stats


# ---------------------------------------------------------------- pull

BY_METADATA = "by their sha256 metadata"
BY_CHECKSUM = "by the SHA-256 checksum S3 holds"
BY_MANIFEST = "by the manifests' SHA-256"
DIFFERS = {
    BY_METADATA: "its sha256 metadata",
    BY_CHECKSUM: "S3's checksum",
    BY_MANIFEST: "its manifest",
}


class Check:
    """How one object is verified: a list of (label, test of a local file), tried in order.

    A file passes on the first test that holds; a composite checksum that does not hold may
    only mean parts of uneven size, so the next test is tried, and the last one decides.
    """

    def __init__(self) -> None:
        self.tests: list[tuple[str, object]] = []

    def passes(self, path: Path) -> str | None:
        """The label the file verified by, or None."""
        for label, test in self.tests:
            if test(path):
                return label
        return None

    @property
    def failure(self) -> str:
        return DIFFERS[self.tests[-1][0]]


def _sha_test(hexdigest: str):
    return lambda path: sha256_file(path) == hexdigest


def _composite_test(client, bucket: str, key: str, checksum: str, parts: int | None):
    """S3's checksum of a multipart object, recomputed with its first part's size for every part."""

    def test(path: Path) -> bool:
        first = client.head_object(Bucket=bucket, Key=key, PartNumber=1)
        count = parts or first.get("PartsCount")
        h = hash_file(path, max(1, first["ContentLength"]))
        return len(h.part_sha256) == count and h.composite_sha256() == checksum

    return test


def _check_for(client, bucket: str, key: str, rel: str, manifests: dict[str, str]) -> Check:
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    check = Check()
    if sha := head.get("Metadata", {}).get(SHA_KEY):
        check.tests.append((BY_METADATA, _sha_test(sha)))
    if checksum := head.get("ChecksumSHA256"):
        value, _, suffix = checksum.partition("-")
        etag_parts = head.get("ETag", "").strip('"').partition("-")[2]
        composite = (
            head.get("ChecksumType") == "COMPOSITE" or bool(suffix) or bool(etag_parts)
        ) and head.get("ChecksumType") != "FULL_OBJECT"
        if composite:
            count = int(suffix or etag_parts) if (suffix or etag_parts).isdigit() else None
            check.tests.append((BY_CHECKSUM, _composite_test(client, bucket, key, value, count)))
        else:
            check.tests.append((BY_CHECKSUM, _sha_test(base64.b64decode(value).hex())))
    if rel in manifests:
        check.tests.append((BY_MANIFEST, _sha_test(manifests[rel])))
    return check


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return not _has_control(rel) and all(p not in ("", ".", "..") for p in parts)


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
    staging = target.parent / f".{target.name}.pull-tmp"
    marker = target.parent / f".{target.name}.pulled-from"
    origin = {"source": source, "endpoint": client.meta.endpoint_url}
    _check_target(target, marker, origin, source, rules)
    base = f"{prefix}/" if prefix else ""
    _check_space(objects, base, staging, target, source)
    with ExitStack() as stack:
        if target.is_dir():
            stack.enter_context(_writer_lock(target, rules))
        staging.mkdir(parents=True, exist_ok=True)
        try:
            stack.enter_context(FolderLock(staging / (rules.lock or STAGING_LOCK)))
        except LockedError as e:
            raise S3Error(str(e)) from None
        remove_temporaries(staging)
        stats = _fetch(objects, base, staging, target, bucket, client, part_size, quiet, rules)
        if stats["damaged"]:
            return stats  # nothing moved: DIR is as it was, staging keeps what verified
        write_json_atomic(marker, origin)
        last = rules.last if any(k == _key(prefix, rules.last) for k in objects) else None
        _move_into_place(stats.pop("to_move"), staging, target, last)
    shutil.rmtree(staging, ignore_errors=True)
    return stats


def _check_space(
    objects: dict[str, dict], base: str, staging: Path, target: Path, source: str
) -> None:
    """Refuse up front a pull the disk cannot hold (it would fill it and fail midway):
    the listed sizes of the objects not already in ``staging`` or ``target`` whole."""
    need = 0
    for key, obj in objects.items():
        rel, size = key[len(base) :], int(obj.get("Size") or 0)
        here = [staging / rel, target / rel] if rel and _safe_rel(rel) else []
        if not any(p.is_file() and p.stat().st_size == size for p in here):
            need += size
    existing = staging
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if need > free:
        raise S3Error(
            f"not enough disk space for {source} in {target.parent}: {need / 1e6:.1f} MB to "
            f"download, {free / 1e6:.1f} MB free",
            exit_code=1,
        )


def _check_target(
    target: Path, marker: Path, origin: dict, source: str, rules: FolderRules
) -> None:
    """DIR is new, empty (but for a lock), or an earlier pull of the same address."""
    if target.exists() and not target.is_dir():
        raise S3Error(f"{target} is not a folder")
    if not target.exists() or all(p.name == rules.lock for p in target.iterdir()):
        return
    try:
        earlier = json.loads(marker.read_text())
    except (OSError, ValueError):
        earlier = None
    if earlier != origin:
        raise S3Error(
            f"{target} is not empty and is not a pull of {source}; pull into a new or empty folder"
        )


def _fetch(
    objects: dict[str, dict],
    base: str,
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
    rels = {}
    for key, obj in objects.items():
        rel = key[len(base) :]
        if not rel or rel.endswith("/") or rel == (rules.lock or STAGING_LOCK):
            continue  # folder markers; our own lock is held for this pull
        if not _safe_rel(rel):
            stats["damaged"].append(f"{rel!r}: a name that cannot be a file inside the folder")
            continue
        rels[rel] = (key, obj)
    # manifests first (they hold hashes of the rest), the last file last
    order = sorted(rels, key=lambda r: (not rules.is_manifest(r), r == rules.last, r))
    manifests: dict[str, str] = {}
    # no mutate: whether a progress bar shows, and its unit, are cosmetic
    hidden = quiet or not sys.stderr.isatty()  # pragma: no mutate
    for rel in tqdm(order, unit="file", disable=hidden):  # pragma: no mutate
        key, obj = rels[rel]
        check = _check_for(client, bucket, key, rel, manifests)
        unhashed = not check.tests
        if unhashed and rel in rules.recomputed:
            by[LEFT_OUT] += 1
            continue
        if unhashed and not rules.is_self_checked(rel):
            stats["damaged"].append(
                f"{rel}: nothing to verify it by (no sha256 metadata, no SHA-256 checksum, "
                "in no manifest)"
            )
            continue
        here, staged = target / rel, staging / rel
        if not unhashed and here.is_file() and (label := check.passes(here)):
            stats["skipped"] += 1
            by[label] += 1
            if staged.is_file():
                staged.unlink()  # an older copy from a failed run: never to be moved in
            if rules.is_manifest(rel):
                manifests.update(rules.hashes_in(here))
            continue
        if not unhashed and staged.is_file() and (label := check.passes(staged)):
            stats["kept"] += 1
        else:
            label = _download(client, bucket, key, obj, staged, check, config, rules)
            if label is None:
                stats["damaged"].append(
                    f"{rel}: SHA-256 of the downloaded bytes differs from {check.failure}"
                    if check.tests
                    else f"{rel}: the download has not the listed size"
                )
                continue
            stats["downloaded"] += 1
        by[label] += 1
        if rules.is_manifest(rel):
            manifests.update(rules.hashes_in(staged))
        if unhashed and here.is_file() and filecmp.cmp(here, staged, shallow=False):
            continue  # the same file is already in place
        stats["to_move"].append(rel)
    stats["by"] = by
    return stats


def _download(
    client, bucket, key, obj, staged: Path, check: Check, config, rules: FolderRules
) -> str | None:
    """Download ``key`` to ``staged`` through a temporary name; the label it verified by, or None."""
    staged.parent.mkdir(parents=True, exist_ok=True)
    tmp = staged.with_name(f"{TMP_PREFIX}{staged.name}.{os.getpid()}")
    try:
        client.download_file(bucket, key, str(tmp), Config=config)
        if tmp.stat().st_size != obj["Size"]:
            return None
        label = check.passes(tmp) if check.tests else rules.self_checked_by
        if label is not None:
            os.replace(tmp, staged)
        return label
    finally:
        tmp.unlink(missing_ok=True)


def _move_into_place(rels: list[str], staging: Path, target: Path, last: str | None) -> None:
    """Rename verified files into ``target``. The ``last`` file (a dataset's ``metadata.json``)
    is taken out first (set aside in ``staging`` if it stays the same) and put back last: a
    move cut short leaves a folder that says it is incomplete, never a mix, and the next run
    finds it staged. A source without it (a training run) has no such marker: its files
    just move."""
    target.mkdir(parents=True, exist_ok=True)
    others = [rel for rel in rels if rel != last]
    if last is None:
        for rel in others:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target / rel)
        return
    if others and (target / last).is_file():
        if (staging / last).is_file():
            (target / last).unlink()
        else:
            os.replace(target / last, staging / last)
    for rel in others:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target / rel)
    if others:
        sync_filesystem(target)
    if (staging / last).is_file():
        os.replace(staging / last, target / last)
        sync_filesystem(target)


# ---------------------------------------------------------------- command line


def main(command: str, argv: list[str], prog: str, rules: FolderRules = ANY_FOLDER) -> int:
    """``push`` or ``pull`` (``command``) from the command line ``argv``; ``prog`` names it in help."""
    from trajkit.cli import OneLineParser, failed_io

    p = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    if command == "push":
        p.add_argument("dir", type=Path)
        p.add_argument("url", help="s3://bucket/prefix")
    else:
        p.add_argument("url", help="s3://bucket/prefix")
        p.add_argument("dir", type=Path)
    p.add_argument("--endpoint-url", help="any S3-compatible endpoint (default: AWS)")
    p.add_argument("--part-size-mb", type=int, default=64, help="multipart part size (>= 5)")
    p.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_SECONDS,
        help="seconds a connection may take to open or stay silent (default: %(default)g)",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.part_size_mb < 5:
        print("error: --part-size-mb must be at least 5 (S3's smallest part)", file=sys.stderr)
        return 2
    if not 0 < args.timeout < math.inf:
        print(
            f"error: --timeout must be a positive number of seconds, got {args.timeout:g}",
            file=sys.stderr,
        )
        return 2
    try:
        parse_url(args.url)
        check_endpoint(args.endpoint_url)
    except S3Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        import boto3  # noqa: F401 - the optional extra, named if missing
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )
    except ImportError:
        print(f"error: {EXTRA_HINT}", file=sys.stderr)
        return 2
    try:
        client = make_client(args.endpoint_url, args.timeout)
        if command == "push":
            s = push(args.dir, args.url, client, args.part_size_mb * MB, args.quiet, rules)
            print(
                f"pushed {args.dir} to {args.url}: {s['uploaded']} files uploaded "
                f"({s['bytes'] / 1e6:.1f} MB), {s['skipped']} already there with the same bytes"
                + (
                    f"; {s['parts_reused']} parts of interrupted uploads kept"
                    if s["parts_reused"]
                    else ""
                )
            )
            return 0
        s = pull(args.url, args.dir, client, args.part_size_mb * MB, args.quiet, rules)
    except S3Error as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except (Boto3Error, BotoCoreError, ClientError) as e:
        waited = (
            f" (no answer within {args.timeout:g} s on each try; --timeout sets the wait)"
            if isinstance(e, (ConnectTimeoutError, ReadTimeoutError))
            else ""
        )
        print(f"error: {command} failed: {str(e).splitlines()[0]}{waited}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder gone read-only: exit 1, as the generator's
        kept = "; what arrived whole is kept, run it again" if command == "pull" else ""
        print(f"error: {command} failed: {failed_io(e)}{kept}", file=sys.stderr)
        return 1
    if s["damaged"]:
        print(
            f"error: {len(s['damaged'])} object(s) failed verification; nothing was put in "
            f"{args.dir} (what verified is kept for the next run): " + "; ".join(s["damaged"][:3]),
            file=sys.stderr,
        )
        return 1
    verified = ", ".join(f"{n} {label}" for label, n in s["by"].most_common())
    print(
        f"pulled {args.url} to {args.dir}: {s['downloaded']} files downloaded, "
        f"{s['kept']} kept from an interrupted pull, {s['skipped']} already present; "
        f"verified: {verified}"
    )
    return 0
