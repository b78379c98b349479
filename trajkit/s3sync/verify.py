"""How a pull tells that one object's bytes are the ones pushed, before anything is put in
place: every SHA-256 known for it, or S3's checksum of its parts."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from trajkit.cli import one_line
from trajkit.files import sha256_file
from trajkit.s3_multipart import SHA_KEY, hash_file
from trajkit.s3sync.store import head_object

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
        first = head_object(client, bucket, key, PartNumber=1)
        count = parts or first.get("PartsCount")
        h = hash_file(path, max(1, first.get("ContentLength") or 0))
        return len(h.part_sha256) == count and h.composite_sha256() == checksum

    return test


def check_for(client, bucket: str, key: str, rel: str, manifests: dict[str, set[str]]) -> Check:
    head = head_object(client, bucket, key, ChecksumMode="ENABLED")
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
