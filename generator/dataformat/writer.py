"""The sample writer of the "pt" layout; every file goes through ``trajkit.files``, so a crash
leaves whole files or none.

A generated video skips the page cache (direct I/O) where the filesystem allows,
and its fsync is left to the checkpoint's sync of the whole filesystem.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from generator.dataformat.layout import Layout, label_bytes
from generator.dataformat.sources import DatasetError, parse_json, read_file
from trajkit.files import replacing, sha256_bytes, write_atomic

BLOCK = 4096  # direct I/O wants block-aligned lengths and addresses: 4 KiB suits 512 B and 4 KiB sectors
_direct_io = hasattr(os, "O_DIRECT")  # cleared for this process once a filesystem refuses it


class MemoryFile:
    """A growable, page-aligned in-memory file that hashes what is written to it.

    ``torch.save`` streams a video into it; being aligned, it can then go to disk
    with direct I/O (``write_memory_file``), and being reused, its pages stay warm.
    """

    def __init__(self, capacity: int = 1 << 21) -> None:
        self._map = mmap.mmap(-1, capacity)
        self.size = 0
        self.sha = hashlib.sha256()

    def reset(self) -> None:
        self.size = 0
        self.sha = hashlib.sha256()

    def _reserve(self, end: int) -> None:
        # no mutate: ">=" only grows the map one write earlier
        if end > len(self._map):  # pragma: no mutate
            grown = mmap.mmap(-1, max(2 * len(self._map), -(-end // BLOCK) * BLOCK))
            grown[: self.size] = self._map[: self.size]
            self._map.close()
            self._map = grown

    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        self._reserve(self.size + n)
        self._map[self.size : self.size + n] = data
        self.size += n
        self.sha.update(data)
        return n

    def flush(self) -> None:
        pass

    def view(self) -> memoryview:
        return memoryview(self._map)[: self.size]

    def padded(self) -> memoryview:
        """The contents zero-filled to a whole number of blocks (for direct I/O)."""
        end = -(-self.size // BLOCK) * BLOCK
        self._reserve(end)
        self._map[self.size : end] = bytes(end - self.size)
        return memoryview(self._map)[:end]


def write_memory_file(path: str | os.PathLike, buf: MemoryFile) -> None:
    """Write ``buf``'s bytes to ``path`` atomically, bypassing the page cache where the filesystem allows.

    Through the page cache each byte is copied into pages the kernel must find first; in a
    VM those are often pages handed back to the host, the slowest memory to touch. Direct
    I/O sends the buffer's own pages to the disk (kernel time per 1.5 MB sample 1.6-2.1 ->
    0.2-0.4 ms). Where the filesystem refuses it (EINVAL) the file is written normally.
    """
    with replacing(path) as tmp:
        if not _write_direct(tmp, buf):
            with open(tmp, "wb") as f:
                f.write(buf.view())


def _write_direct(path: Path, buf: MemoryFile) -> bool:
    """Write ``buf`` to ``path`` with ``O_DIRECT``; False if direct I/O is refused here."""
    global _direct_io
    if not _direct_io:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o666)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        _direct_io = False
        return False
    try:
        data = buf.padded()
        done = 0
        while done < len(data):  # a short write leaves an unaligned rest: EINVAL, then the fallback
            done += os.write(fd, data[done:])
        os.ftruncate(fd, buf.size)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        _direct_io = False
        return False
    finally:
        os.close(fd)
    return True


_BUFFERS: queue.SimpleQueue[MemoryFile] = queue.SimpleQueue()  # reused across a process's tasks


class SampleWriter:
    """Writes samples' files on a background thread while the caller renders the next.

    Each video is serialised (``torch.save``) and hashed into one of two reusable
    buffers on the caller's thread; the thread writes it (``write_memory_file``),
    then its label with the video's SHA-256. The label goes second, so a label on
    disk vouches for a whole video: resume re-checks unmanifested samples against
    it. A direct write waits for the disk (about 2 ms for a 1.5 MB clip); here
    that wait overlaps the next sample's rendering. Use it as a context manager:
    leaving waits for every write, and ``entries`` then holds the manifest entries.
    """

    DEPTH = 2  # samples in flight: one being written, one being serialised

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.entries: list[dict] = []
        self._pending: deque[Future] = deque()
        # no mutate: more threads would write the same files (the entries keep their order)
        self._thread = ThreadPoolExecutor(1, "sample-writer")  # pragma: no mutate

    def add(self, index: int, video: Any, label: dict) -> None:
        import torch

        if len(self._pending) >= self.DEPTH:
            self.entries.append(self._pending.popleft().result())
        try:
            buf = _BUFFERS.get_nowait()
        except queue.Empty:
            buf = MemoryFile()
        buf.reset()
        torch.save(video, buf)
        self._pending.append(self._thread.submit(self._write, index, buf, label))

    def _write(self, index: int, buf: MemoryFile, label: dict) -> dict:
        try:
            write_memory_file(self.layout.video(index), buf)
            video_sha = buf.sha.hexdigest()
            data = label_bytes({**label, "video_sha256": video_sha})
            write_atomic(self.layout.label(index), data, fsync=False)
            return {
                "index": index,
                "stem": self.layout.stem(index),
                "class_label": label["class_label"],
                "video_sha256": video_sha,
                "label_sha256": sha256_bytes(data),
                "video_bytes": buf.size,
            }
        finally:
            _BUFFERS.put(buf)

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the writes in flight; the first failure is raised, and later writes dropped."""
        try:
            while self._pending:
                self.entries.append(self._pending.popleft().result())
        finally:
            for f in self._pending:
                f.cancel()
            self._thread.shutdown(wait=True)


def check_written_sample(
    layout: Layout, index: int, video_limit: int, label_limit: int
) -> dict | None:
    """The manifest entry of a sample already on disk if its label vouches for its video, else None.

    Only regular files are read (``read_file``): a FIFO would hang, a link to a device never end;
    and a video or label only up to ``video_limit`` or ``label_limit`` bytes (what a sample's
    can hold): a larger one is damaged, not read whole.
    """
    try:
        data = read_file(layout.label(index), layout.root, limit=label_limit)
        label = parse_json(layout.label(index), data)
        video_file = read_file(layout.video(index), layout.root, limit=video_limit)
    except DatasetError:  # not a regular file, unreadable, too large, or bad JSON
        return None
    if not isinstance(label, dict) or label.get("index") != index:
        return None
    video_sha = sha256_bytes(video_file)
    if label.get("video_sha256") != video_sha:
        return None
    return {
        "index": index,
        "stem": layout.stem(index),
        "class_label": label.get("class_label"),
        "video_sha256": video_sha,
        "label_sha256": sha256_bytes(data),
        "video_bytes": len(video_file),
    }
