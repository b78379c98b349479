"""Multipart uploads that resume part by part: an interrupted push of a big shard resends
only the parts S3 does not hold yet.

boto3's managed transfer aborts an unfinished multipart upload, so its retry starts the
file over. Here the upload is left open on interruption and the next push continues it.

S3 cannot say which file an open upload was started from (``ListMultipartUploads`` returns
no metadata), yet the upload's ``sha256`` metadata is fixed when it is created. So each
upload we create is recorded locally (the user's cache folder, one small JSON file per
bucket and key) with the file's identity: size, mtime_ns, device, inode and ctime_ns, and
its SHA-256. An open upload is continued only if its record names this very upload, the
file still has that identity, and the SHA-256 this push has just computed again equals the
recorded one: a change whose mtime was put back still moves the ctime and the hash. Any
other open upload of the key is aborted, so none is left to cost storage.

Each part S3 already holds is checked against the file (size, and its SHA-256 checksum or
its MD5 ETag); one that differs is sent again. Parts go up with their SHA-256
(``ChecksumAlgorithm="SHA256"``), which S3 checks on arrival. Once completed, the object
is checked against the file: size, sha256 metadata, multipart ETag (MD5 of the parts'
MD5s) and the checksum of the parts' checksums, and the file must not have changed during
the push; otherwise the object is deleted and the push fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SHA_KEY = "sha256"  # the user metadata key (x-amz-meta-sha256) every pushed object carries
BLOCK = 1 << 20
MAX_PARTS = 10_000  # S3's limit for one multipart upload
LISTING_PAGES = 20_000
"""Pages one listing may take (20 million keys at S3's 1,000 a page): a store that answers
every page with another, each with a new token, was listed for ever."""


TIMEOUT_SECONDS = 60.0
"""How long a connection may take to open, or stay silent, before the request is retried
(botocore's default too); retries follow boto3's settings (``AWS_MAX_ATTEMPTS``)."""
START_TIMEOUTS = 5
"""Times --timeout a request may take to answer whole (a listing's page), or a transfer to
start: a store that sends a byte now and then is never silent for --timeout."""


class S3Error(Exception):
    """A push or pull that cannot proceed; ``exit_code`` 2 for bad input, 1 for failed verification."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def identity(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a file's bytes may have changed; ctime cannot be set back by ``utime``."""
    return (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino, st.st_ctime_ns)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class FileHashes:
    """One read of a file gives every hash a push compares or sends."""

    size: int
    identity: tuple[int, ...]
    sha256: str
    part_size: int
    part_md5: tuple[bytes, ...]
    part_sha256: tuple[bytes, ...]

    def etags(self) -> set[str]:
        """The ETags S3 gives these bytes: MD5 if sent whole, MD5 of the parts' MD5s if in parts."""
        multi = hashlib.md5(b"".join(self.part_md5), usedforsecurity=False).hexdigest()
        found = {f"{multi}-{len(self.part_md5)}"}
        if len(self.part_md5) == 1:
            found.add(self.part_md5[0].hex())
        return found

    def composite_sha256(self) -> str:
        """S3's SHA-256 checksum of a multipart object: of the parts' SHA-256 digests, base64."""
        return b64(hashlib.sha256(b"".join(self.part_sha256)).digest())


def hash_file(path: Path, part_size: int) -> FileHashes:
    """SHA-256 of the file, MD5 and SHA-256 of each ``part_size`` part; the file must not change meanwhile."""
    before = os.stat(path)
    whole = hashlib.sha256()
    md5s, shas = [], []
    with open(path, "rb") as f:
        while True:
            md5, sha, got = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
            while got < part_size and (block := f.read(min(BLOCK, part_size - got))):
                for h in (whole, md5, sha):
                    h.update(block)
                got += len(block)
            if not got and md5s:
                break
            md5s.append(md5.digest())
            shas.append(sha.digest())
            if got < part_size:
                break
    if identity(os.stat(path)) != identity(before):
        raise S3Error(f"{path} changed while it was read; run again once it is written", 1)
    return FileHashes(
        before.st_size, identity(before), whole.hexdigest(), part_size, tuple(md5s), tuple(shas)
    )


def pages(client, operation: str, where: str, **params):
    """The pages of a paginated listing, at most ``LISTING_PAGES``, each within
    ``START_TIMEOUTS`` times --timeout (a store that trickled a page held the command for
    ever); an answer botocore cannot read as a listing (a size that is not a number) is one
    line, not a traceback."""
    seconds = (client.meta.config.read_timeout or TIMEOUT_SECONDS) * START_TIMEOUTS
    late = (
        f"the listing of {where} sent no page within {seconds:.0f} s ({START_TIMEOUTS} times "
        "--timeout): the store is too slow"
    )
    listing = iter(client.get_paginator(operation).paginate(**params))
    try:
        for number in range(1, LISTING_PAGES + 2):
            page = in_background(lambda: next(listing, None), seconds, late)
            if page is None:
                return
            if number > LISTING_PAGES:
                raise S3Error(
                    f"the listing of {where} did not end after {LISTING_PAGES:,} pages; "
                    "the store keeps answering with more"
                )
            yield page
    except ValueError as e:
        raise S3Error(f"the listing of {where} is not one S3 would send ({e})") from None


def in_background(call, seconds: float, late: str):  # noqa: ANN001
    """``call()`` in a thread of its own, waited for here at most ``seconds`` (else ``late``,
    an S3Error). Ctrl-C and SIGTERM arrive in this thread. boto3's transfer manager, stopped,
    waits for its workers, and a worker inside a read from a store that trickles does not
    return: the stop was swallowed. Waiting here, a stop or the deadline leaves the worker
    behind (the command's exit ends it)."""
    done = threading.Event()
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as e:  # given to the waiting thread, KeyboardInterrupt too
            outcome.append((False, e))
        finally:
            done.set()

    threading.Thread(target=run, name="s3 request", daemon=True).start()
    if not done.wait(seconds):
        raise S3Error(late)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _read_part(path: Path, number: int, part_size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek((number - 1) * part_size)
        return f.read(part_size)


def _held_parts(client, bucket: str, key: str, upload_id: str) -> dict[int, dict]:
    parts: dict[int, dict] = {}
    where = f"the parts of s3://{bucket}/{key}"
    for page in pages(client, "list_parts", where, Bucket=bucket, Key=key, UploadId=upload_id):
        parts.update({p["PartNumber"]: p for p in page.get("Parts", [])})
    return parts


class ResumeRecord:
    """The local record of the upload we created for ``bucket/key`` at one endpoint."""

    def __init__(self, client, bucket: str, key: str) -> None:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        where = f"{client.meta.endpoint_url}\n{bucket}\n{key}".encode()
        name = hashlib.sha256(where).hexdigest()[:32] + ".json"
        self.path = Path(cache) / "trajectory-suite" / "s3-uploads" / name

    def load(self) -> dict:
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def save(self, upload_id: str, hashes: FileHashes) -> None:
        """Best effort: without a record the upload is not continued, only started over."""
        from trajkit.files import write_json_atomic

        record = {
            "upload_id": upload_id,
            "identity": list(hashes.identity),
            "sha256": hashes.sha256,
            "part_size": hashes.part_size,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, record)
        except OSError:
            pass

    def describes(self, upload_id: str, hashes: FileHashes) -> bool:
        r = self.load()
        return (
            r.get("upload_id") == upload_id
            and r.get("identity") == list(hashes.identity)
            and r.get("sha256") == hashes.sha256
            and r.get("part_size") == hashes.part_size
        )

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _resumable(client, bucket: str, key: str, hashes: FileHashes, record: ResumeRecord):
    """The open upload of ``key`` that our record says was started from this very file, or None;
    every other open upload of the key is aborted."""
    uploads = []
    where = f"the open uploads of s3://{bucket}/{key}"
    for page in pages(client, "list_multipart_uploads", where, Bucket=bucket, Prefix=key):
        uploads += [u for u in page.get("Uploads", []) if u["Key"] == key]
    chosen = None
    for upload in uploads:
        if (
            chosen is None
            and upload.get("ChecksumAlgorithm", "SHA256") == "SHA256"
            and record.describes(upload["UploadId"], hashes)
        ):
            chosen = upload["UploadId"]
            continue
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
    return chosen


def _good_part(hashes: FileHashes, number: int, part: dict) -> bool:
    """A held part is the file's own: its size, and its SHA-256 checksum (or its MD5 ETag)."""
    if number > len(hashes.part_md5):
        return False
    size = min(hashes.part_size, hashes.size - (number - 1) * hashes.part_size)
    if part["Size"] != size:
        return False
    if part.get("ChecksumSHA256"):
        return part["ChecksumSHA256"] == b64(hashes.part_sha256[number - 1])
    return part["ETag"].strip('"') == hashes.part_md5[number - 1].hex()


def upload_resumable(
    client, path: Path, bucket: str, key: str, hashes: FileHashes, threads: int = 4
) -> dict:
    """Upload ``path`` to ``key`` in parts, continuing an interrupted upload of the same file.

    Returns ``{"parts": N, "parts_reused": K}``.
    """
    part_size, count = hashes.part_size, len(hashes.part_md5)
    record = ResumeRecord(client, bucket, key)
    upload_id = _resumable(client, bucket, key, hashes, record)
    held: dict[int, dict] = {}
    if upload_id is None:
        upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, Metadata={SHA_KEY: hashes.sha256}, ChecksumAlgorithm="SHA256"
        )["UploadId"]
        record.save(upload_id, hashes)
    else:
        held = _held_parts(client, bucket, key, upload_id)
    reused = {n for n, part in held.items() if _good_part(hashes, n, part)}

    def send(number: int) -> None:
        client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=_read_part(path, number, part_size),
            ChecksumSHA256=b64(hashes.part_sha256[number - 1]),  # S3 refuses other bytes
        )

    todo = [n for n in range(1, count + 1) if n not in reused]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(send, todo))  # an interruption leaves the upload open to resume
    parts = [
        {
            "PartNumber": n,
            "ETag": f'"{hashes.part_md5[n - 1].hex()}"',
            "ChecksumSHA256": b64(hashes.part_sha256[n - 1]),
        }
        for n in range(1, count + 1)
    ]
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    record.clear()
    check_uploaded(client, path, bucket, key, hashes)
    return {"parts": count, "parts_reused": len(reused)}


def check_uploaded(client, path: Path, bucket: str, key: str, hashes: FileHashes) -> None:
    """The object now under ``key`` is the file as hashed, and the file did not change meanwhile;
    if not, the object is deleted (its metadata would vouch for other bytes)."""
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    problems = []
    if identity(os.stat(path)) != hashes.identity:
        problems.append("the file changed while it was pushed")
    if head["ContentLength"] != hashes.size:
        problems.append(f"S3 holds {head['ContentLength']} bytes, the file has {hashes.size}")
    if head.get("Metadata", {}).get(SHA_KEY) != hashes.sha256:
        problems.append("its sha256 metadata is not the file's")
    # With SSE-KMS an ETag is no MD5; otherwise it must be the parts' MD5s.
    etag = head["ETag"].strip('"')
    if "aws:kms" not in head.get("ServerSideEncryption", "") and etag not in hashes.etags():
        problems.append("its ETag is not the MD5 of the file's parts")
    checksum = head.get("ChecksumSHA256")
    if checksum and checksum.split("-")[0] not in (
        hashes.composite_sha256(),
        b64(bytes.fromhex(hashes.sha256)),
    ):
        problems.append("its SHA-256 checksum is not the file's")
    if problems:
        client.delete_object(Bucket=bucket, Key=key)
        raise S3Error(f"{key}: {'; '.join(problems)}; it was removed, push again", 1)
