"""Multipart uploads that resume part by part: an interrupted push of a big shard resends
only the parts S3 does not hold yet.

boto3's managed transfer aborts an unfinished multipart upload, so its retry starts the
file over. Here the upload is left open on interruption; the next push finds it
(``ListMultipartUploads``), checks every part S3 already holds against the local file
(size and MD5, which is a part's ETag on S3), sends the missing parts and completes it.
An upload is reused only if its parts were sent after the file's last change (by S3's
clock), so the SHA-256 metadata it was created with still describes the file; any other
open upload of the key is aborted, so none is left to cost storage.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path


def _read_part(path: Path, number: int, part_size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek((number - 1) * part_size)
        return f.read(part_size)


def _held_parts(client, bucket: str, key: str, upload_id: str) -> dict[int, dict]:
    parts: dict[int, dict] = {}
    for page in client.get_paginator("list_parts").paginate(
        Bucket=bucket, Key=key, UploadId=upload_id
    ):
        parts.update({p["PartNumber"]: p for p in page.get("Parts", [])})
    return parts


def _matches(path: Path, number: int, part: dict, part_size: int) -> bool:
    data = _read_part(path, number, part_size)
    return part["Size"] == len(data) and part["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def _resumable(
    client, path: Path, bucket: str, key: str, part_size: int
) -> tuple[str | None, dict[int, str]]:
    """An open upload of ``key`` to continue, with the ETags of its good parts; abort the rest."""
    changed = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    uploads = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
        uploads += [u for u in page.get("Uploads", []) if u["Key"] == key]
    chosen, etags = None, {}
    for upload in sorted(uploads, key=lambda u: u["Initiated"], reverse=True):
        if chosen is None:
            held = _held_parts(client, bucket, key, upload["UploadId"])
            # sent after the file's last change (S3's clock), and each part still the file's
            fresh = held and min(p["LastModified"] for p in held.values()) > changed
            if fresh and all(_matches(path, n, p, part_size) for n, p in held.items()):
                chosen, etags = upload["UploadId"], {n: p["ETag"] for n, p in held.items()}
                continue
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
    return chosen, etags


def upload_resumable(
    client, path: Path, bucket: str, key: str, metadata: dict, part_size: int, threads: int = 4
) -> dict:
    """Upload ``path`` to ``key`` in parts, continuing an interrupted upload of the same file.

    Returns ``{"parts": N, "parts_reused": K}``.
    """
    size = path.stat().st_size
    count = max(1, -(-size // part_size))
    upload_id, etags = _resumable(client, path, bucket, key, part_size)
    reused = len(etags)
    if upload_id is None:
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)[
            "UploadId"
        ]

    def send(number: int) -> tuple[int, str]:
        body = _read_part(path, number, part_size)
        r = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return number, r["ETag"]

    todo = [n for n in range(1, count + 1) if n not in etags]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        etags.update(pool.map(send, todo))  # an interruption leaves the upload open to resume
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]},
    )
    return {"parts": count, "parts_reused": reused}
