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
  refuses a prefix without the file written last (not whole), a key that is both a file
  and a folder, and a DIR whose folder stands where a file goes (or the reverse), before
  anything moves. It verifies every object before anything is put in place: every SHA-256
  known for it must hold, its sha256 metadata, S3's SHA-256 checksum of a single-part
  object and the SHA-256 of each of the folder's manifests that lists it (fetched first for
  that reason); an object with none of these by S3's checksum of its parts (recomputed from
  the first part's size). The files the folder's reader checks itself need none; a cache
  it computes again is left out without a hash. Any other object without a hash fails the
  pull. Objects are downloaded into ``.DIR.pull-tmp`` beside DIR (refused if a link or not
  a pull's), and moved into DIR only once every one verified (copied when DIR is another
  filesystem), with the file written last moved last; a failed or interrupted pull leaves
  DIR as it was, and the next run keeps what already verified. DIR must be new, empty, or
  an earlier pull of the same address (recorded in ``.DIR.pulled-from`` beside it).

Both bound a listing (``LISTING_PAGES``) and each object's transfer (``START_TIMEOUTS``), and
wait for a transfer in the main thread, so one Ctrl-C or SIGTERM stops them at once.
Both hold the folder's writer lock (``trajkit.lock``), if the rules name one and it exists,
while they run: a push or pull is refused while a writer writes the folder, and a writer
cannot start meanwhile. Credentials come from boto3's usual chain (environment, ``~/.aws``,
instance role); ``--endpoint-url`` points at any S3-compatible store (MinIO, Ceph, R2).
"""

from __future__ import annotations

import base64
import errno
import filecmp
import hashlib
import json
import os
import re
import shutil
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from trajkit.cli import one_line, short_repr
from trajkit.files import (
    TMP_PREFIX,
    remove_path,
    remove_temporaries,
    sha256_file,
    sync_filesystem,
    write_json_atomic,
)
from trajkit.lock import FolderLock, LockedError, remove_if_unused
from trajkit.s3_multipart import (
    MAX_PARTS,
    SHA_KEY,
    START_TIMEOUTS,
    TIMEOUT_SECONDS,
    FileHashes,
    ResumeRecord,
    S3Error,
    hash_file,
    identity,
    in_background,
    pages,
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
    try:
        from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url
    except ImportError:  # without boto3 the command stops on the missing extra
        return
    if not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        raise bad  # a host botocore refuses ('a_b', '-x-', 'x..y') was a ValueError traceback


def _key(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


MAX_TIMEOUT = 86400  # a day; 1e308 s overflowed the clock inside urllib3
MAX_PART_MB = 5120  # S3's largest part, 5 GiB


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
    """Every object under ``prefix``: key -> its listing entry (Size, ETag), in one paginated LIST.

    An entry without a key under the prefix or without a size is refused here, in one line:
    everything after relies on both."""
    base = f"{prefix}/" if prefix else ""
    where = f"s3://{bucket}/{base}"
    found: dict[str, dict] = {}
    for page in pages(client, "list_objects_v2", where, Bucket=bucket, Prefix=base):
        for entry in page.get("Contents", []):
            key, size = entry.get("Key"), entry.get("Size")
            if not (isinstance(key, str) and key.startswith(base)) or not (
                isinstance(size, int) and size >= 0
            ):
                raise S3Error(
                    f"the listing of {where} has an entry without a key under it or without a "
                    f"size ({short_repr(entry)}); the store does not answer as S3 does"
                )
            found[key] = entry
    return found


def left_out(rel: str, rules: FolderRules) -> bool:
    """Neither pushed nor pulled: the lock (a pull's own in its staging folder) and
    half-written temporaries, which a pull's next run would delete."""
    return rel == (rules.lock or STAGING_LOCK) or rel.rpartition("/")[2].startswith(TMP_PREFIX)


def local_files(root: Path, rules: FolderRules = ANY_FOLDER) -> tuple[list[str], list[str]]:
    """Relative paths to copy, the last file last; and what the push should name: entries
    that are not files (left out), and links to files outside ``root`` (pushed as those
    files)."""
    files, notes = [], []
    inside = root.resolve()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if (path.is_dir() and not path.is_symlink()) or left_out(rel, rules):
            continue
        if not path.is_file():
            kind = (
                "a link to a folder"
                if path.is_dir()
                else "a link to nothing"
                if path.is_symlink()
                else "not a regular file"
            )
            notes.append(f"{rel} left out ({kind})")
        elif path.is_symlink() and not path.resolve().is_relative_to(inside):
            notes.append(f"{rel} is a link out of {root}: the file it points to is pushed")
            files.append(rel)
        else:
            files.append(rel)
    return sorted(sorted(files), key=lambda r: r == rules.last), sorted(notes)


def _check_names(root: Path, prefix: str, rels: list[str], part_size: int) -> None:
    """Refuse up front what a push would fail on midway, or what a pull could not write back."""
    for rel in rels:
        shown = one_line(repr(str(root / rel)))
        try:
            key = _key(prefix, rel).encode()
        except UnicodeEncodeError:
            raise S3Error(
                f"{shown}: a name that is not UTF-8 cannot be an S3 key; rename it"
            ) from None
        if not _safe_rel(rel):
            raise S3Error(f"{shown}: a name with a control character; a pull could not write it")
        if len(key) > MAX_KEY:
            raise S3Error(f"{shown}: its key would be longer than S3's {MAX_KEY} bytes")
        if (root / rel).stat().st_size > MAX_PARTS * part_size:
            raise S3Error(
                f"{shown} needs more than S3's {MAX_PARTS:,} parts of {part_size // MB} MB; "
                "give a larger --part-size-mb"
            )


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
    etag = str(listed.get("ETag", "")).strip('"')
    if etag in h.etags() and "SHA256" in listed.get("ChecksumAlgorithm", []):
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
    stats = {"uploaded": 0, "skipped": 0, "bytes": 0, "parts_reused": 0, "warnings": []}
    rels, notes = local_files(root, rules)
    _check_names(root, prefix, rels, part_size)
    if notes:
        stats["warnings"].append(f"{len(notes)} not pushed as plain files: " + "; ".join(notes))
    remote = listing(client, bucket, prefix)
    others = set(remote) - {_key(prefix, rel) for rel in rels}
    if others := {k for k in others if not k.endswith("/")}:
        stats["warnings"].append(
            f"{len(others)} object(s) under s3://{bucket}/{prefix} are not in {root} (an "
            f"earlier push?), e.g. {min(others)}; they stay there, and a pull gets them too"
        )
    # no mutate: whether a progress bar shows, and its unit, are cosmetic
    hidden = quiet or not sys.stderr.isatty()  # pragma: no mutate
    for rel in tqdm(rels, unit="file", disable=hidden):  # pragma: no mutate
        path, key = root / rel, _key(prefix, rel)
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


# ---------------------------------------------------------------- slow stores


def allowed_seconds(client, size: int) -> float:
    """An object's transfer may take --timeout seconds per MB, after START_TIMEOUTS of them to
    start (boto3 tries a stalled download 5 times): at the default 60 s, 17 KB/s on average.
    Each read waits at most --timeout, but a store that sends a byte now and then is never
    that silent and held a pull for ever."""
    return (client.meta.config.read_timeout or TIMEOUT_SECONDS) * (START_TIMEOUTS + size / MB)


def transferred(client, call: Callable, size: int, what: str):
    """``call()``, the transfer of ``what`` (``size`` bytes), within ``allowed_seconds``."""
    seconds = allowed_seconds(client, size)
    late = (
        f"{what} was not transferred within {seconds:.0f} s ({START_TIMEOUTS} times "
        "--timeout to start, then --timeout a MB): the store is too slow"
    )
    return in_background(call, seconds, late)


# ---------------------------------------------------------------- pull

BY_METADATA = "by their sha256 metadata"
BY_CHECKSUM = "by the SHA-256 checksum S3 holds"
BY_MANIFEST = "by the manifests' SHA-256"
DIFFERS = {
    BY_METADATA: "its sha256 metadata",
    BY_CHECKSUM: "S3's checksum",
    BY_MANIFEST: "its manifest",
}


class Unverified(Exception):
    """Why one object cannot be put in place; the pull goes on and fails at the end."""


class Check:
    """How one object is verified: every SHA-256 known for it must be the file's.

    Its sha256 metadata, S3's checksum of a single-part object and each manifest that lists
    it: hashes that disagree (lying metadata, two datasets pushed to one prefix) fail. An
    object with none of these is verified by S3's checksum of its parts (``composite``).
    """

    def __init__(self) -> None:
        self.sha256: list[tuple[str, str]] = []  # (label, hex digest), the first names the check
        self.composite: Callable[[Path], bool] | None = None
        self.failure = ""

    @property
    def known(self) -> bool:
        return bool(self.sha256) or self.composite is not None

    def passes(self, path: Path) -> str | None:
        """The label the file verified by, or None (``failure`` then says which hash it missed)."""
        if self.sha256:
            digest = sha256_file(path)
            for label, expected in self.sha256:
                if digest != expected:
                    manifests = sum(lab == BY_MANIFEST for lab, _ in self.sha256)
                    self.failure = (
                        "its manifests, which disagree (two datasets under one prefix?)"
                        if label == BY_MANIFEST and manifests > 1
                        else DIFFERS[label]
                    )
                    return None
            return self.sha256[0][0]
        if self.composite is not None and self.composite(path):
            return BY_CHECKSUM
        self.failure = DIFFERS[BY_CHECKSUM]
        return None


def _composite_test(client, bucket: str, key: str, checksum: str, parts: int | None):
    """S3's checksum of a multipart object, recomputed with its first part's size for every part."""

    def test(path: Path) -> bool:
        first = client.head_object(Bucket=bucket, Key=key, PartNumber=1)
        count = parts or first.get("PartsCount")
        h = hash_file(path, max(1, first.get("ContentLength") or 0))
        return len(h.part_sha256) == count and h.composite_sha256() == checksum

    return test


def _check_for(client, bucket: str, key: str, rel: str, manifests: dict[str, set[str]]) -> Check:
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    check = Check()
    if sha := head.get("Metadata", {}).get(SHA_KEY):
        check.sha256.append((BY_METADATA, sha))
    if checksum := head.get("ChecksumSHA256"):
        value, _, suffix = checksum.partition("-")
        etag_parts = head.get("ETag", "").strip('"').partition("-")[2]
        composite = (
            head.get("ChecksumType") == "COMPOSITE" or bool(suffix) or bool(etag_parts)
        ) and head.get("ChecksumType") != "FULL_OBJECT"
        if composite:
            count = int(suffix or etag_parts) if (suffix or etag_parts).isdigit() else None
            check.composite = _composite_test(client, bucket, key, value, count)
        else:
            try:
                digest = base64.b64decode(value, validate=True)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise Unverified(f"S3's checksum {one_line(repr(value))} is not a SHA-256")
            check.sha256.append((BY_CHECKSUM, digest.hex()))
    check.sha256 += [(BY_MANIFEST, sha) for sha in sorted(manifests.get(rel, ()))]
    return check


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return not _has_control(rel) and all(p not in ("", ".", "..") for p in parts)


def _temporary(path: Path) -> Path:
    """A hidden name beside ``path`` that fits however long its name is (up to 255 bytes,
    a name pushed whole could not be pulled: boto3 adds a suffix of its own)."""
    tag = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]
    return path.with_name(f"{TMP_PREFIX}{tag}.{os.getpid()}")


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
    if rules.last is not None and _key(prefix, rules.last) not in objects:
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
    _check_staging(staging, lock_name)
    _check_space(rels, staging, target, source)
    with ExitStack() as stack:
        stack.callback(remove_if_unused, staging, lock_name)  # runs after the locks' release
        if target.is_dir():
            stack.enter_context(_writer_lock(target, rules))
        staging.mkdir(parents=True, exist_ok=True)
        try:
            stack.enter_context(FolderLock(staging / lock_name))
        except LockedError as e:
            raise S3Error(str(e)) from None
        # again, now that no other pull can: one may have finished into DIR since the check
        _check_target(target, marker, origin, source, rules)
        _clear_the_way(rels, staging, target, source)
        remove_temporaries(staging)
        stats = _fetch(rels, staging, target, bucket, client, part_size, quiet, rules)
        if stats["damaged"]:
            return stats  # nothing moved: DIR is as it was, staging keeps what verified
        to_move = stats.pop("to_move")
        _clear_the_way(to_move, staging, target, source)  # what DIR holds now, just before
        write_json_atomic(marker, origin)
        _move_into_place(to_move, staging, target, rules.last if rules.last in rels else None)
    shutil.rmtree(staging, ignore_errors=True)
    return stats


def _wanted(objects: dict[str, dict], base: str, rules: FolderRules):
    """{relative path: (key, listing entry)} of the objects to pull, and the names refused."""
    rels, unsafe = {}, []
    for key, obj in objects.items():
        rel = key[len(base) :]
        if not rel or (rel.endswith("/") and obj["Size"] == 0) or left_out(rel, rules):
            continue  # folder markers; our own lock is held for this pull
        if not _safe_rel(rel):
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


def _in_the_way(root: Path, rel: str) -> Path | None:
    """What keeps a file from going to ``root/rel``: a folder there, or above it anything
    but a folder (a file, a link to nothing)."""
    place = root
    for part in rel.split("/")[:-1]:
        place = place / part
        if os.path.lexists(place) and not place.is_dir():
            return place
    return root / rel if (root / rel).is_dir() else None


def _clear_the_way(rels, staging: Path, target: Path, source: str) -> None:
    """Refuse, before anything moves, a file DIR holds where a folder goes or the reverse
    (the move failed halfway, with the last file already out of DIR); what an earlier run
    left in the staging folder in the way is ours, and goes."""
    for rel in rels:
        if (obstacle := _in_the_way(target, rel)) is not None:
            what = "a folder" if obstacle.is_dir() else "not a folder"
            raise S3Error(
                f"cannot put {source}/{rel} in {target}: {obstacle} is {what}; move it away "
                f"and pull again ({target} was left as it was)"
            )
        if (leftover := _in_the_way(staging, rel)) is not None:
            remove_path(leftover)


def _check_staging(staging: Path, lock_name: str) -> None:
    """The staging folder is new, or one a pull made: a link there would lead the pull's
    writes and deletions elsewhere, and a folder without a pull's lock is someone else's."""
    if not os.path.lexists(staging):
        return
    lock = staging / lock_name
    ours = (
        staging.is_dir()
        and not staging.is_symlink()
        and (not any(staging.iterdir()) or (lock.is_file() and not lock.is_symlink()))
    )
    if not ours or any(p.is_symlink() for p in staging.rglob("*")):
        raise S3Error(f"{staging} is in the way and is not a pull's staging folder; move it away")


def _check_space(rels: dict[str, tuple], staging: Path, target: Path, source: str) -> None:
    """Refuse up front a pull the disk cannot hold (it would fill it and fail midway): the
    listed sizes of the objects not already in ``staging`` or ``target`` whole. Both places
    are measured: DIR may be a mount point, another filesystem than the staging folder's."""
    need = 0
    for rel, (_, obj) in rels.items():
        here = [staging / rel, target / rel]
        if not any(p.is_file() and p.stat().st_size == obj["Size"] for p in here):
            need += obj["Size"]
    for place in (staging, target):
        while not place.exists():
            place = place.parent
        free = shutil.disk_usage(place).free
        if need > free:
            raise S3Error(
                f"not enough disk space for {source} in {place}: {need / 1e6:.1f} MB to "
                f"download, {free / 1e6:.1f} MB free",
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
        earlier = json.loads(marker.read_text())
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
            check = _check_for(client, bucket, key, rel, manifests)
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
    tmp = _temporary(staged)
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


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; across filesystems (DIR a mount point: the staging folder
    beside it is on its parent's), copy to a temporary beside ``dst`` and rename that. The
    caller syncs DIR's filesystem before the last file goes in."""
    try:
        os.replace(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = _temporary(dst)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        src.unlink()


def _move_into_place(rels: list[str], staging: Path, target: Path, last: str | None) -> None:
    """Move verified files into ``target``. The ``last`` file (a dataset's ``metadata.json``)
    is taken out first (set aside in ``staging`` if it stays the same) and put back last: a
    move cut short leaves a folder that says it is incomplete, never a mix, and the next run
    finds it staged. A source without it (a training run) has no such marker: its files
    just move."""
    target.mkdir(parents=True, exist_ok=True)
    others = [rel for rel in rels if rel != last]
    if last is None:
        for rel in others:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            _move(staging / rel, target / rel)
        return
    if others and (target / last).is_file():
        if (staging / last).is_file():
            (target / last).unlink()
        else:
            _move(target / last, staging / last)
    for rel in others:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        _move(staging / rel, target / rel)
    if others:
        sync_filesystem(target)
    if (staging / last).is_file():
        _move(staging / last, target / last)
        sync_filesystem(target)


# ---------------------------------------------------------------- command line


def main(command: str, argv: list[str], prog: str, rules: FolderRules = ANY_FOLDER) -> int:
    """``push`` or ``pull`` (``command``) from the command line ``argv``; ``prog`` names it in help."""
    from trajkit.cli import OneLineParser, failed_io, first_line

    p = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    if command == "push":
        p.add_argument("dir", type=Path)
        p.add_argument("url", help="s3://bucket/prefix")
    else:
        p.add_argument("url", help="s3://bucket/prefix")
        p.add_argument("dir", type=Path)
    p.add_argument("--endpoint-url", help="any S3-compatible endpoint (default: AWS)")
    p.add_argument("--part-size-mb", type=int, default=64, help="multipart part size (5..5120)")
    p.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_SECONDS,
        help="seconds a connection may take to open or stay silent (default: %(default)g); "
        f"an object may take {START_TIMEOUTS} of them to start, then one a MB",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if not 5 <= args.part_size_mb <= MAX_PART_MB:
        print(
            f"error: --part-size-mb must be 5..{MAX_PART_MB} (S3's smallest and largest part)",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.timeout <= MAX_TIMEOUT:
        print(
            f"error: --timeout must be a positive number of seconds up to {MAX_TIMEOUT}, "
            f"got {args.timeout:g}",
            file=sys.stderr,
        )
        return 2
    try:
        parse_url(args.url)
        check_endpoint(args.endpoint_url)
    except S3Error as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
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
            for warning in s.get("warnings", []):
                print(f"warning: {one_line(warning)}", file=sys.stderr)
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
        print(f"error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except (Boto3Error, BotoCoreError, ClientError) as e:
        # s3transfer gives up on a body that stalls with its own error, the timeout behind it
        timed_out = (ConnectTimeoutError, ReadTimeoutError)
        waited = (
            f" (no answer within {args.timeout:g} s on each try; --timeout sets the wait)"
            if isinstance(e, timed_out) or isinstance(getattr(e, "last_exception", None), timed_out)
            else ""
        )
        print(f"error: {command} failed: {first_line(e)}{waited}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder gone read-only: exit 1, as the generator's
        kept = "; what arrived whole is kept for the next run" if command == "pull" else ""
        print(f"error: {command} failed: {failed_io(e)}{kept}", file=sys.stderr)
        return 1
    if s["damaged"]:
        print(
            f"error: {len(s['damaged'])} object(s) failed verification; nothing was put in "
            f"{args.dir} (what verified is kept for the next run): "
            + one_line("; ".join(s["damaged"][:3])),
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
