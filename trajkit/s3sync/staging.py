"""A pull's staging folder beside DIR and the moves out of it: what keeps a failed or cut pull
from leaving DIR a mix of old and new files."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from trajkit.files import remove_path, sync_filesystem, temporary_beside
from trajkit.s3_multipart import S3Error


def _in_the_way(root: Path, rel: str) -> Path | None:
    """What keeps a file from going to ``root/rel``: a folder there, or above it anything
    but a folder (a file, a link to nothing)."""
    place = root
    for part in rel.split("/")[:-1]:
        place = place / part
        if os.path.lexists(place) and not place.is_dir():
            return place
    return root / rel if (root / rel).is_dir() else None


def clear_the_way(rels, staging: Path, target: Path, source: str) -> None:
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


def check_staging(staging: Path, lock_name: str) -> None:
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


def check_space(rels: dict[str, tuple], staging: Path, target: Path, source: str) -> None:
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


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; across filesystems (DIR a mount point: the staging folder
    beside it is on its parent's), copy to a temporary beside ``dst`` and rename that. The
    caller syncs DIR's filesystem before the last file goes in."""
    try:
        os.replace(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = temporary_beside(dst)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        src.unlink()


def move_into_place(rels: list[str], staging: Path, target: Path, last: str | None) -> None:
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
