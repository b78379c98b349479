"""The sharded layout: WebDataset-convention tar files, plain or compressed with zstd one sample per frame.

A shard ``shards/shard_<start>.tar`` (``--compression none``) or
``shard_<start>.tar.zst`` (zstd, the default) holds consecutive samples; each
sample key ``sample_0000`` has two tar members, ``sample_0000.npy`` (the
uint8 video, numpy's own format: no pickle, readable without torch) and
``sample_0000.json`` (its label), which is WebDataset's convention
(https://github.com/webdataset/webdataset#the-webdataset-format).

A plain shard is an ordinary tar: ``webdataset.WebDataset(urls)``, Hugging Face
``datasets.load_dataset("webdataset", ...)`` and ``tar x`` read it as it is.
With zstd, each sample's tar bytes are compressed as their own zstd frame, and
the tar's end-of-archive blocks as a last frame. Concatenated frames are one
valid zstd stream, so ``zstd -dc shard.tar.zst | tar x`` and WebDataset's
``pipe:zstd -dc ...`` URLs see a plain tar. Either way each sample is one byte
range at a known offset (recorded in the checkpoint manifest): one sample is
read with a seek (and, for zstd, one small decompression), never the whole
shard (the idea of zstd's "seekable format").
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from generator.dataformat.layout import SHARD_SUFFIXES, label_bytes
from trajkit.files import open_atomic, sha256_bytes

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


def dataset_compression(meta: dict) -> str:
    """The compression ``metadata.json`` records: "none", or "zstd" (described in words, or absent)."""
    return "none" if (meta.get("shards") or {}).get("compression") == "none" else "zstd"


def compression_of(name: str) -> str:
    """A shard's compression, from its file name: the manifests name every shard."""
    for compression, suffix in SHARD_SUFFIXES.items():
        if name.endswith(suffix):
            return compression
    raise ValueError(f"{name} is not a shard ({' or '.join(SHARD_SUFFIXES.values())})")


def tar_header(name: str, size: int) -> bytes:
    """A tar member's header with fixed owner and time, so shards are reproducible."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tar_member(name: str, data: bytes | memoryview) -> bytes:
    """One tar member: header, data, padding to the 512-byte block."""
    return tar_header(name, len(data)) + bytes(data) + b"\0" * (-len(data) % BLOCK)


def npy_header(video: np.ndarray) -> bytes:
    """The ``.npy`` header ``np.save`` writes for ``video`` (format 1.0)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(video))
    return buf.getvalue()


def sample_record(stem: str, video: np.ndarray, label: dict) -> tuple[bytes, dict, str, str, int]:
    """Tar bytes of one sample; also its label (with the video's SHA-256) and both checksums.

    The video is copied once, into the record: building the ``.npy`` file and the tar
    member as separate byte strings copied it four times (6.6 -> ~2 ms a sample).
    """
    video = np.ascontiguousarray(video)
    header = npy_header(video)
    size = len(header) + video.nbytes
    sha = hashlib.sha256(header)
    sha.update(video.data)
    video_sha = sha.hexdigest()
    label = {**label, "video_sha256": video_sha}
    data = label_bytes(label)
    record = b"".join(
        [
            tar_header(f"{stem}.npy", size),
            header,
            video.data,
            b"\0" * (-size % BLOCK),
            tar_member(f"{stem}.json", data),
        ]
    )
    return record, label, video_sha, sha256_bytes(data), size


class ShardWriter:
    """Streams samples into ``path`` (atomically: the shard appears whole or not at all).

    ``path``'s suffix says how: ``.tar.zst`` one zstd frame per sample at ``level``, ``.tar`` plain.
    """

    def __init__(self, path: Path, level: int) -> None:
        self.path = path
        self.compressor = (
            zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=True)
            if compression_of(path.name) == "zstd"
            else None
        )
        self._ctx = open_atomic(path, fsync=False)
        self._file = self._ctx.__enter__()
        self.offset = 0
        self.entries: list[dict] = []
        self.sha = hashlib.sha256()

    def _write(self, frame: bytes) -> None:
        self._file.write(frame)
        self.sha.update(frame)
        self.offset += len(frame)

    def add(self, index: int, stem: str, video: np.ndarray, label: dict) -> None:
        record, label, video_sha, label_sha, video_bytes = sample_record(stem, video, label)
        frame = record if self.compressor is None else self.compressor.compress(record)
        self.entries.append(
            {
                "index": index,
                "stem": stem,
                "class_label": label["class_label"],
                "video_sha256": video_sha,
                "label_sha256": label_sha,
                "video_bytes": video_bytes,
                "shard": self.path.name,
                "offset": self.offset,
                "length": len(frame),
            }
        )
        self._write(frame)

    def close(self) -> dict:
        """Finish the shard; returns its manifest entries and its own summary."""
        tail = (
            END_OF_ARCHIVE if self.compressor is None else self.compressor.compress(END_OF_ARCHIVE)
        )
        self._write(tail)
        self._ctx.__exit__(None, None, None)
        return {"samples": self.entries, "shard": self.summary()}

    def summary(self) -> dict:
        return shard_info(self.path.name, self.entries, self.sha.hexdigest(), self.offset)

    def abort(self, exc: BaseException) -> None:
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)


def parse_record(raw: bytes) -> dict[str, memoryview]:
    """Members of one decompressed sample frame, by name (views into ``raw``, not copies)."""
    out: dict[str, memoryview] = {}
    view = memoryview(raw)
    pos = 0
    while pos + BLOCK <= len(raw):
        block = raw[pos : pos + BLOCK]
        if block == b"\0" * BLOCK:
            break
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        start = pos + BLOCK
        out[info.name] = view[start : start + info.size]
        pos = start + info.size + (-info.size % BLOCK)
    return out


def read_frame(path: Path, offset: int, length: int) -> bytes:
    """The tar bytes of the one sample at ``offset``: reads ``length`` bytes, not the shard
    (and decompresses them as one zstd frame if the shard is ``.tar.zst``)."""
    compression = compression_of(path.name)
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise ValueError(f"{path.name} ends before byte {offset + length}")
    return data if compression == "none" else zstandard.ZstdDecompressor().decompress(data)


_HEADER_LOCK = threading.Lock()
"""numpy parses a ``.npy`` header with ``ast.literal_eval``, and CPython 3.11 can fail that
from concurrent threads ("SystemError: AST constructor recursion depth mismatch",
python/cpython#106905), which ``validate``'s reading threads hit. The parse is a few
microseconds, so one lock costs nothing."""


def decode_video(member: bytes | memoryview) -> np.ndarray:
    """A ``.npy`` member as a writable array: its header parsed, its data copied once."""
    head = io.BytesIO(member[:4096])
    version = np.lib.format.read_magic(head)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        raise ValueError(f"unsupported .npy version {version}")
    with _HEADER_LOCK:
        shape, fortran, dtype = read_header(head)
    if dtype.hasobject:
        raise ValueError("object arrays are refused (they would need pickle)")
    count = int(np.prod(shape))
    data = np.frombuffer(member, dtype=dtype, count=count, offset=head.tell())
    return data.reshape(shape, order="F" if fortran else "C").copy()


def read_sample(path: Path, stem: str, offset: int, length: int) -> tuple[memoryview, bytes]:
    """The ``.npy`` and ``.json`` member bytes of sample ``stem``."""
    members = parse_record(read_frame(path, offset, length))
    try:
        return members[f"{stem}.npy"], bytes(members[f"{stem}.json"])
    except KeyError:
        raise ValueError(
            f"{path.name} at byte {offset} does not hold {stem} (found {sorted(members)})"
        ) from None


def iter_frames(path: Path, sha: Any = None) -> Iterator[tuple[int, int, bytes]]:
    """(offset, length, tar bytes) of every sample, then of the end-of-archive, one at a time.

    ``sha``, a hashlib object, is fed the shard's bytes as stored on the way.
    """
    if compression_of(path.name) == "none":
        yield from _iter_tar_samples(path, sha)
        return
    size = os.path.getsize(path)
    dctx = zstandard.ZstdDecompressor()
    with open(path, "rb") as f:
        offset = 0
        while offset < size:
            f.seek(offset)
            head = f.read(18)  # the largest zstd frame header
            params = zstandard.get_frame_parameters(head)
            if params.content_size <= 0:
                raise ValueError(f"{path.name}: frame at byte {offset} lacks its size")
            f.seek(offset)
            # A frame is at most its content plus small block overheads; read generously, then trim.
            chunk = f.read(params.content_size + params.content_size // 64 + 1024)
            dobj = dctx.decompressobj()
            raw = dobj.decompress(chunk)
            length = len(chunk) - len(dobj.unused_data)
            if not dobj.eof:
                raise ValueError(f"{path.name}: frame at byte {offset} is truncated")
            if sha is not None:
                sha.update(chunk[:length])
            yield offset, length, raw
            offset += length


def _iter_tar_samples(path: Path, sha: Any = None) -> Iterator[tuple[int, int, bytes]]:
    """``iter_frames`` for a plain tar: consecutive members sharing a key are one sample.

    Members are read one at a time; a header or size that runs past the file is a
    ``ValueError``. Bytes after the end-of-archive come last, as one more (empty) item.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = pos = 0
        key, parts = None, []
        while True:
            block = f.read(BLOCK)
            if len(block) < BLOCK:
                raise ValueError(f"{path.name} is truncated at byte {pos}")
            if block == b"\0" * BLOCK:
                break
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.TarError as e:
                raise ValueError(f"{path.name}: bad tar header at byte {pos} ({e})") from None
            padded = info.size + (-info.size % BLOCK)
            if pos + BLOCK + padded > size:
                raise ValueError(f"{path.name} is truncated at byte {pos}")
            member_key = info.name.split(".", 1)[
                0
            ]  # WebDataset's key: the name up to its first dot
            if parts and member_key != key:
                yield _sample_bytes(start, parts, sha)
                start, parts = pos, []
            key = member_key
            parts += [block, f.read(padded)]
            pos += BLOCK + padded
        if parts:
            yield _sample_bytes(start, parts, sha)
        tail = block + f.read(BLOCK)
        yield _sample_bytes(pos, [tail], sha)
        if pos + len(tail) < size:
            yield pos + len(tail), size - pos - len(tail), b""


def _sample_bytes(start: int, parts: list[bytes], sha: Any) -> tuple[int, int, bytes]:
    raw = b"".join(parts)
    if sha is not None:
        sha.update(raw)
    return start, len(raw), raw


def shard_info(name: str, entries: list[dict], sha: str, size: int) -> dict:
    """A shard's line in its checkpoint manifest."""
    return {
        "name": name,
        "start": entries[0]["index"],
        "end": entries[-1]["index"] + 1,
        "sha256": sha,
        "bytes": size,
    }


def check_shard(path: Path, indices: list[int], stem_of: Callable[[int], str]) -> dict | None:
    """What ``ShardWriter.close`` returned, for a shard on disk that holds exactly ``indices``
    with each label vouching for its video; None if it does not."""
    entries = []
    sha = hashlib.sha256()
    try:
        frames = iter_frames(path, sha)
        for index in indices:
            offset, length, raw = next(frames)
            stem = stem_of(index)
            members = parse_record(raw)
            video_file, data = members[f"{stem}.npy"], bytes(members[f"{stem}.json"])
            label = json.loads(data)
            video_sha = sha256_bytes(video_file)
            vouches = isinstance(label, dict) and label.get("video_sha256") == video_sha
            if not vouches or label.get("index") != index:
                return None
            entries.append(
                {
                    "index": index,
                    "stem": stem,
                    "class_label": label["class_label"],
                    "video_sha256": video_sha,
                    "label_sha256": sha256_bytes(data),
                    "video_bytes": len(video_file),
                    "shard": path.name,
                    "offset": offset,
                    "length": length,
                }
            )
        _, _, tail = next(frames)
        if tail != END_OF_ARCHIVE or next(frames, None) is not None:
            return None
    # damaged bytes: RecursionError for JSON nested too deeply
    except (OSError, ValueError, KeyError, StopIteration, RecursionError, zstandard.ZstdError):
        return None
    return {
        "samples": entries,
        "shard": shard_info(path.name, entries, sha.hexdigest(), path.stat().st_size),
    }
