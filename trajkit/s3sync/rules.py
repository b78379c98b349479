"""What a kind of folder tells push and pull, and what they copy of any folder: apart from the
transfers, so that a kind of folder (a dataset) names its rules and nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from trajkit.files import TMP_PREFIX
from trajkit.lock import FolderLock, LockedError
from trajkit.s3_multipart import S3Error
from trajkit.s3sync.store import has_control

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


@contextmanager
def writer_lock(root: Path, rules: FolderRules):
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


def safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return not has_control(rel) and all(p not in ("", ".", "..") for p in parts)
