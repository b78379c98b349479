"""One writer per folder: an advisory ``flock`` on ``<root>/.lock`` (``no_writer`` for a reader
that needs it unwritten meanwhile); and ``new_folder``, a folder written whole or not at all.

The kernel drops a flock when its holder dies, however it dies, so a lock
left by a dead process is simply taken over; the file's text (pid, host,
start time) is there to name the holder in the error a second writer gets.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import takewhile
from pathlib import Path

from trajkit.files import hidden_name, remove_path


class LockedError(RuntimeError):
    """Another live process holds the folder."""


class ForeignLockError(LockedError):
    """The lock file holds something other than a holder's note: someone else's file."""


class NewFolderError(ValueError):
    """A folder ``new_folder`` cannot start: not empty, being written, or not creatable.
    ``exit_code`` is 2 for what the user gave, 1 for a disk that failed the write."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_HELD: set[int] = set()  # descriptors of the locks this process holds


def _drop_inherited_locks() -> None:
    """In a forked child (a DataLoader worker): close its copies of the parent's lock
    descriptors. Closing a copy does not release a flock the parent still holds, but a copy
    left open kept the lock after a ``kill -9`` of the parent until the workers noticed (about
    5 s), and a ``--resume`` in that window was refused naming the dead process."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def _held(fd: int, path: Path) -> LockedError:
    """The refusal of a folder whose lock file (``fd``, at ``path``) another process holds,
    naming that holder; ``fd`` is closed."""
    holder = _describe(os.pread(fd, 4096, 0))
    os.close(fd)
    return LockedError(
        f"{path.parent} is being written by {holder}; wait for it to finish or stop it"
    )


class FolderLock:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        fd = self._locked_descriptor()
        try:  # the note below replaces the file's text: never someone else's file
            held = os.pread(fd, 4096, 0)
        except OSError:
            _unlock(fd)
            raise
        if held and _holder(held) is None:
            _unlock(fd)
            raise ForeignLockError(
                f"{self.path} is not a lock file of this project; move it away or choose another folder"
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:  # a full disk fails the note: the lock and its descriptor must not outlive it
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:
            _unlock(fd)
            raise
        self._fd = fd
        _HELD.add(fd)
        return self

    def _locked_descriptor(self) -> int:
        """A descriptor of the file at ``path``, flocked. A holder that unlinks the file as it
        releases (a download, a folder removed when unused) can leave the flock of a file no
        longer there to a process that opened it just before: such a lock guards nothing,
        so it is dropped and the file now at ``path`` is tried."""
        while True:
            fd = self._open_regular_file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _held(fd, self.path) from None
            try:
                here = os.stat(self.path)
            except FileNotFoundError:
                here = None
            held = os.fstat(fd)
            if here is not None and (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                return fd
            _unlock(fd)

    def _open_regular_file(self) -> int:
        """The lock file, opened or made: never through a link (its target, wherever it
        pointed, became the lock, or was made), and never a FIFO, a folder or a device,
        which failed later as "Illegal seek" or "Is a directory"."""
        not_a_file = ForeignLockError(
            f"{self.path} is not a regular file; move it away or choose another folder"
        )
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:  # a link, a folder, a socket
            if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise not_a_file from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise not_a_file
        return fd

    def release(self) -> None:
        if self._fd not in _HELD:  # never taken, or a forked child's copy (closed at the fork)
            self._fd = None
            return
        # The file stays (a holder that unlinks it first may: ``_locked_descriptor``).
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            _HELD.discard(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _holder(raw: bytes) -> dict | None:
    """The note a holder wrote (pid, host, start time), or None for any other text."""
    try:
        info = json.loads(raw.decode())
        return info if isinstance(info, dict) and {"pid", "host", "since"} <= info.keys() else None
    except (ValueError, UnicodeDecodeError):
        return None


def _describe(raw: bytes) -> str:
    info = _holder(raw)
    if info is None:
        return "another process"
    return f"process {info['pid']} on {info['host']} (since {info['since']})"


@contextmanager
def no_writer(path: str | os.PathLike) -> Iterator[None]:
    """The block runs while no writer holds the lock at ``path``, and none can start: for a
    reader of a whole folder, whom a writer's half-made files would mislead. A shared
    ``flock``, so it needs no write access (a dataset on a read-only mount), and a folder
    without a lock file gets none. Raises ``LockedError`` naming the holder."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # none there, or a link: no writer of ours holds it
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _held(fd, Path(path)) from None
    _HELD.add(fd)  # a forked worker must not keep it past us
    try:
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)  # and with it the shared lock


def remove_if_unused(root: Path, lock_name: str = ".lock") -> None:
    """Remove ``root`` if it holds nothing but its lock file: for a folder made to be
    written that nothing was written into (a refused run, a lock a full disk failed)."""
    try:
        if {p.name for p in root.iterdir()} <= {lock_name}:
            (root / lock_name).unlink(missing_ok=True)
            root.rmdir()
    except OSError:
        pass


@contextmanager
def locked_folder(root: Path, lock_name: str = ".lock") -> Iterator[None]:
    """``root`` (made if missing, its parents too) with ``root/lock_name`` held for the block.
    A folder made here is removed again if it holds nothing but the lock when the block
    ends, or when the lock could not be written (a full disk); not when another process
    holds it: that folder, made meanwhile, is the holder's. Raises ``LockedError`` or the
    ``OSError`` of the folder or the lock. The parents made with it go too, if left empty:
    a refused ``runs/jepa/cifar10`` left ``runs/jepa`` behind."""
    made = missing_folders(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(root / lock_name).acquire()
    except LockedError:
        raise
    except OSError:
        remove_unused(made, lock_name)
        raise
    try:
        yield
    finally:
        lock.release()
        remove_unused(made, lock_name)  # nothing but the lock in it: the block wrote nothing


def missing_folders(root: Path) -> list[Path]:
    """``root`` and those of its parents that do not exist yet, deepest first: what a
    ``mkdir(parents=True)`` of it makes, and ``remove_unused`` may take back."""
    return list(takewhile(lambda p: not os.path.lexists(p), (root, *root.parents)))


def remove_unused(made: list[Path], lock_name: str = ".lock") -> None:
    """The folders of ``missing_folders``, deepest first, each if it holds nothing (but the
    lock): one holding anything, someone's since, stops the climb."""
    if made:
        remove_if_unused(made[0], lock_name)
    for parent in made[1:]:
        try:
            parent.rmdir()
        except OSError:
            return


@contextmanager
def new_folder(root: Path, lock_name: str = ".lock") -> Iterator[Path]:
    """A locked temporary folder for the block to write, that becomes ``root`` (new, or an
    empty folder) by one rename when the block ends: a half-written folder at ``root`` would
    pass for a whole one and block the next run. The temporary, ``.tmp-`` and a hash of the
    name (``hidden_name``), is hidden beside ``root``; an empty ``root`` is replaced by it (a
    shell whose working folder was ``root`` then sits in the old, deleted one). A block that
    fails or is stopped (Ctrl-C, SIGTERM) leaves nothing; the next run for ``root`` removes
    what a killed one left. What is not ours is never removed: anything written into ``root``
    meanwhile makes the rename fail, and a temporary that is a link, a file or a folder
    without our lock is refused.
    """
    root = Path(os.path.abspath(root))  # "." has no name to put the temporary beside
    work = root.with_name(hidden_name(root.name))
    try:
        _refuse_if_full(root)
        if work.is_symlink() or (os.path.lexists(work) and not work.is_dir()):
            raise NewFolderError(f"{work} is in the way and not a temporary of ours; move it away")
        if work.is_dir() and any(work.iterdir()) and not (work / lock_name).is_file():
            raise NewFolderError(f"{work} is in the way and not a temporary of ours; move it away")
        work.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(work / lock_name).acquire()
    except LockedError as e:
        raise NewFolderError(str(e)) from None
    except OSError as e:  # a full disk fails the lock's note of its holder
        remove_if_unused(work, lock_name)
        failed = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)
        raise NewFolderError(
            f"cannot write {work}: {e.strerror or e}", 1 if failed else 2
        ) from None
    published = False
    try:
        _clear(work, lock_name)  # what a killed run left: its lock is ours now
        _refuse_if_full(root)  # a run that published while this one started
        try:
            yield work
            try:
                os.rename(work, root)  # over an empty folder only: nothing in it is lost
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise NewFolderError(
                        f"{root} is not empty any more (written to during the run); nothing "
                        "there was changed, give a new folder"
                    ) from None
                raise
            published = True
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    finally:
        lock.release()
        if published:
            (root / lock_name).unlink(missing_ok=True)  # a finished folder needs no lock
        else:
            remove_if_unused(work, lock_name)


def _refuse_if_full(root: Path) -> None:
    if root.is_dir() and any(root.iterdir()):
        raise NewFolderError(f"{root} exists and is not empty; give a new folder")


def _clear(folder: Path, keep: str) -> None:
    """Remove everything in ``folder`` but ``keep`` (symlinks removed, not followed)."""
    for p in folder.iterdir():
        if p.name != keep:
            remove_path(p, ignore_errors=True)
