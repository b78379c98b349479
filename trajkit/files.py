"""Files that are whole or absent: written to a hidden temporary name in their own folder,
flushed and fsynced, then renamed into place (rename is atomic within one filesystem); and
the hashes and durability calls that go with them.

Every part of the project writes its results through here (datasets, checkpoints, run logs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = ".tmp-"


def hidden_name(name: str) -> str:
    """``.tmp-`` and a hash of ``name``: 21 bytes, where ``.tmp-NAME`` was too long for a
    legal name of 251 to 255 bytes; the same ``name`` always gives the same one."""
    return f"{TMP_PREFIX}{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"


def temporary_beside(path: Path) -> Path:
    """This process's hidden temporary for ``path``, in its folder (a rename across folders
    may cross filesystems, and is not atomic then). Short whatever ``path``'s length: boto3
    adds a suffix of its own to the one a pull downloads to."""
    return path.with_name(f"{hidden_name(path.name)}.{os.getpid()}")


def write_atomic(path: str | os.PathLike, data: bytes | memoryview, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    with open_atomic(path, fsync=fsync) as f:
        f.write(data)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write; renamed to ``path`` if the block ends cleanly, else removed."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        tmp.unlink(missing_ok=True)  # a leftover of a process of this pid; a FIFO would block
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):  # no folder to clean (gone, a file): the write's error is told
            tmp.unlink(missing_ok=True)
        failed = _failed_write(e)
        if failed is None:
            raise
        # Named for ``path``: a full disk fails a write or a close with no file name, and
        # torch.save wraps the failure in a RuntimeError of its own.
        raise OSError(failed.errno, failed.strerror, str(path)) from e


def _failed_write(error: BaseException) -> OSError | None:
    """The OSError with an errno behind ``error`` (itself or one it arose from), if any."""
    seen = set()
    while error is not None and id(error) not in seen and not isinstance(error, KeyboardInterrupt):
        if isinstance(error, OSError) and error.errno is not None:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def open_atomic(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to stream into; it appears at ``path`` only if the block ends cleanly."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def sync_filesystem(folder: str | os.PathLike) -> None:
    """Make everything written to ``folder``'s filesystem durable (``syncfs``, else ``sync``).

    ``os.sync`` flushes every filesystem on the machine, other users' writes
    included; ``syncfs(2)`` waits only for the one holding the dataset.
    """
    libc = _libc()
    # no mutate: "or" only differs for a libc without syncfs (not Linux's), which tests cannot load
    if libc is not None and hasattr(libc, "syncfs"):  # pragma: no mutate
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def drop_cached(paths: Iterable[str | os.PathLike]) -> None:
    """Evict files already made durable from the page cache (``POSIX_FADV_DONTNEED``).

    A long run would otherwise fill the machine's memory with its own output; reusing
    the freed pages keeps each write cheap (in a VM, fresh pages cost the most), and
    other programs keep their cache. Best effort: a file that is gone is skipped.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _libc() -> ctypes.CDLL | None:
    try:
        # no mutate: CDLL(None) also finds libc on Linux, and errno is not read
        name = ctypes.util.find_library("c") or "libc.so.6"  # pragma: no mutate
        return ctypes.CDLL(name, use_errno=True)  # pragma: no mutate
    except OSError:
        return None


def json_text(obj: Any, **options: Any) -> str:
    """``json.dumps`` with NaN and the infinities written as null: Python writes them as bare
    ``NaN`` and ``Infinity``, which are not JSON, and a strict reader (JavaScript's, jq,
    Go's) refuses the whole file (a saliency epoch whose validation scores were NaN)."""
    return json.dumps(_finite(obj), allow_nan=False, **options)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any, *, fsync: bool = True) -> None:
    write_atomic(path, (json_text(obj, indent=2, sort_keys=True) + "\n").encode(), fsync=fsync)


def save_torch_atomic(obj: Any, path: str | os.PathLike, *, fsync: bool = True) -> None:
    import torch

    with open_atomic(path, fsync=fsync) as f:
        torch.save(obj, f)


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_path(path: Path, *, ignore_errors: bool = False) -> None:
    """Delete ``path``: a folder with its contents; anything else, a link to a folder
    included, is unlinked, never followed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=ignore_errors)
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:
        if not ignore_errors:
            raise


def remove_temporaries(folder: str | os.PathLike, *, recursive: bool = True) -> int:
    """Delete leftover temporary files (from a crash) below ``folder`` (only in it, unless
    ``recursive``); return how many."""
    removed = 0
    found = Path(folder).rglob if recursive else Path(folder).glob
    for p in found(f"{TMP_PREFIX}*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def loads_json(data: str | bytes) -> Any:
    """``json.loads``, where everything damaged is a ``ValueError``: not UTF-8, not JSON, a
    number past Python's 4,300 digits, and nesting too deep for the parser (a RecursionError,
    which escaped every reader as a traceback)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file; ``ValueError`` names the file when it is missing or damaged."""
    try:
        return loads_json(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path} is damaged ({e})") from None
