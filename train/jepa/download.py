"""``python -m train.jepa.download NAME --data-path DIR``: fetch, verify and unpack a dataset.

CIFAR-10, CIFAR-100 and STL-10 are fetched from the URLs and MD5s torchvision ships with its
loaders: a disk-space preflight first, then an HTTP download that resumes a partial
``<archive>.part`` with a Range request and takes no more than the archive's size (a redirect
only to http(s)), an MD5 check (a mismatch deletes the file), extraction into a hidden
``DIR/NAME/.tmp-unpack`` renamed into place when whole (a stop leaves nothing half unpacked)
and a final load through torchvision, which checks every file's MD5; the archive is then
deleted, unless ``--keep-archive``. A lock (``DIR/NAME/.download.lock``)
keeps a second download out of the folder. ImageNet cannot be downloaded without an account:
for ``imagenet`` and ``imagenet100`` this prints the manual steps and verifies the folders it
finds.

``--base-url`` (or ``JEPA_DOWNLOAD_BASE_URL``) replaces the server, keeping the file name: for a
mirror, and for the tests, which serve small archives from a loopback server. Without a
network, an archive copied by hand to ``DIR/NAME/`` under its file name is checked (MD5) and
unpacked as a downloaded one is.
Exit status: 0 ready, 1 a check failed (checksum, disk space, a server sending more than the
archive's size or redirecting off http(s), structure, an archive that does not unpack), 2 bad
input (a folder that cannot be created, a URL that is no http(s) URL, another download
running), 130 stopped. ``train.jepa.datasets`` (torch) is imported inside the
functions that read it, so that the command loads torch in ``main`` where a stop is one line
(``load_modules``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from train.jepa.config import DatasetSpec
from trajkit.cli import (
    CONTROL,
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    failed_io,
    load_modules,
    one_line,
    quiet_on_closed_output,
)
from trajkit.files import TMP_PREFIX, remove_path
from trajkit.lock import (
    FolderLock,
    ForeignLockError,
    LockedError,
    missing_folders,
    remove_unused,
)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60  # with nothing arriving for this long, a download stops (resumable)
# ... and with less than this arriving a second over as long (curl's --speed-limit): a server
# that sends a byte now and then is never silent for TIMEOUT_SECONDS and held a run for ever.
MIN_BYTES_PER_SECOND = 1024
BASE_URL_ENV = "JEPA_DOWNLOAD_BASE_URL"
DISK_MARGIN = 1.1  # ask for 10% more than the estimate
LOCK_NAME = ".download.lock"
UNPACK_NAME = f"{TMP_PREFIX}unpack"
RESUME_ADVICE = "run the same command again to resume it"
# "bytes 100-199/1000" (a 206), "bytes */1000" (a 416); "*" for a size the server does not know
CONTENT_RANGE = re.compile(r"bytes (?:(\d{1,20})-\d{1,20}|\*)/(\d{1,20}|\*)")
# The size of each archive torchvision's loaders name, by its MD5 (the Content-Length its
# server sends): a server sending more is not sending that archive, and one streaming without
# end filled the disk.
ARCHIVE_SIZES = {
    "c58f30108f718f92721af3b95e74349a": 170_498_071,  # cifar-10-python.tar.gz
    "eb9058c3a382ffc7106e4002c42a8d85": 169_001_437,  # cifar-100-python.tar.gz
    "91f7769df0f17e558f3565bffb0c7dfb": 2_640_397_119,  # stl10_binary.tar.gz
}


class DownloadError(RuntimeError):
    """A failed check (checksum, space, server, unpacking); exit status 1."""


class HostNotFound(DownloadError):
    """The server's host name did not resolve: offline, or no such host."""


class BadInput(ValueError):
    """Something the user must change before a download can start; exit status 2."""


@dataclass
class StopNote:
    """What a stop (Ctrl-C, SIGTERM) leaves, as things stand, for its one line."""

    text: str = "nothing was changed; run the same command again"


@dataclass(frozen=True)
class Archive:
    url: str
    filename: str
    md5: str
    unpacked_ratio: float  # unpacked size / archive size, for the disk preflight
    size: int | None = None  # bytes (ARCHIVE_SIZES); None: not known here


def archive_for(name: str, base_url: str | None = None) -> Archive:
    """The archive torchvision's loader for ``name`` expects (read at call time)."""
    from train.jepa.datasets import IMAGE_SETS

    cls = IMAGE_SETS[name].archive
    url = cls.url if not base_url else f"{base_url.rstrip('/')}/{cls.filename}"
    ratio = IMAGE_SETS[name].unpacked_ratio
    return Archive(url, cls.filename, cls.tgz_md5, ratio, ARCHIVE_SIZES.get(cls.tgz_md5))


def is_http_url(text: str) -> bool:
    """Whether ``text`` can be a server to fetch from: urllib's error for anything else (no
    scheme, a port that is no number) was a traceback or advice to run the command again."""
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (a port that is no number raises here)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not CONTROL.search(text)


def part_of(dest: Path) -> Path:
    """Where the bytes of ``dest`` gather until the whole file has arrived."""
    return dest.with_name(dest.name + ".part")


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an http(s) URL: urllib follows one to ftp:// too, whose
    failure read as a server to try again, and refuses others as a bare "HTTP 302"."""

    def http_error_302(
        self,
        req: urllib.request.Request,
        fp: http.client.HTTPResponse,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
    ) -> http.client.HTTPResponse | None:
        target = headers.get("Location") or headers.get("URI")
        if target is not None:
            with suppress(ValueError):  # an unparsable target is refused as it stands
                target = urllib.parse.urljoin(req.full_url, target)
            if not is_http_url(target):
                fp.close()
                raise DownloadError(
                    one_line(
                        f"download of {req.full_url} failed: the server redirects to "
                        f"{target}, which is no http(s) URL; check the URL"
                    )
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


OPENER = urllib.request.build_opener(HttpRedirectsOnly)


# What a server that hangs up (RemoteDisconnected), answers no HTTP (BadStatusLine, a header
# line over 64 KiB) or is silent (TimeoutError) raises; URLError, an OSError, wraps the rest.
SERVER_FAILURES = (OSError, http.client.HTTPException)


def server_failure(url: str, err: BaseException) -> DownloadError:
    """``err`` (one of SERVER_FAILURES) as one line naming ``url``; the advice to run again
    only where that can help (not for a certificate that does not match). A host name that
    does not resolve is a HostNotFound: offline, every name fails so ("check the URL" sent
    users hunting for a typo)."""
    if isinstance(err, urllib.error.URLError):
        reason = why = err.reason
    else:
        reason, why = err, f"{type(err).__name__}: {err}"
    if isinstance(reason, socket.gaierror):
        host = urllib.parse.urlsplit(url).hostname
        return HostNotFound(
            one_line(
                f"download of {url} failed: the host {host} could not be resolved "
                f"({reason.strerror or reason}): there is no network here, or no such host, "
                "so nothing can be downloaded"
            )
        )
    advice = "check the URL" if isinstance(reason, ssl.SSLCertVerificationError) else RESUME_ADVICE
    return DownloadError(one_line(f"download of {url} failed ({why}); {advice}"))


def remote_size(url: str) -> int | None:
    """The size the server gives for ``url`` (None: none, or HEAD refused). A server that
    hangs up, is silent or does not speak HTTP is a DownloadError here, not a traceback."""
    try:
        with OPENER.open(urllib.request.Request(url, method="HEAD"), timeout=TIMEOUT_SECONDS) as r:
            return content_length(r, url)
    except urllib.error.HTTPError:
        return None
    except SERVER_FAILURES as err:
        raise server_failure(url, err) from None


def content_length(response: http.client.HTTPResponse, url: str) -> int | None:
    """The response's Content-Length (None if absent); a value that is no byte count is the
    server's fault, refused before anything is written."""
    length = response.headers.get("Content-Length")
    if not length:
        return None
    try:
        if (size := int(length)) >= 0:
            return size
    except ValueError:
        pass
    raise DownloadError(
        one_line(f"download of {url} failed: the server sent Content-Length {length!r}")
    )


def content_range(headers: http.client.HTTPMessage) -> tuple[int | None, int | None]:
    """The first byte and the whole size a Content-Range header gives (None: not given)."""
    found = CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
    if not found:
        return None, None
    start, total = found.groups()
    return int(start) if start else None, int(total) if total != "*" else None


def preflight(folder: Path, archive: Archive, have: int, quiet: bool) -> int | None:
    """Refuse to start when the free space cannot hold the rest of the archive plus its
    contents; return the archive's size (known here, else the server's; None: neither)."""
    total = archive.size or remote_size(archive.url)
    if total is None:
        if not quiet:
            print(
                "note: the server gave no size before the download; the disk space is checked "
                "when the download gives one",
                file=sys.stderr,
            )
        return None
    check_room(folder, archive, total, have)
    return total


def check_room(folder: Path, archive: Archive, total: int, have: int) -> None:
    """Refuse a download of ``total`` bytes (``have`` of them already in the part) that the
    free space cannot hold, with what it unpacks to."""
    need = int(((total - have) + total * archive.unpacked_ratio) * DISK_MARGIN)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DownloadError(
            f"not enough disk space in {folder}: need about {need / 1e9:.2f} GB, "
            f"free {free / 1e9:.2f} GB"
        )


def fetch(
    url: str,
    dest: Path,
    quiet: bool = True,
    room: Callable[[int, int], None] | None = None,
    size: int | None = None,
) -> None:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request. The
    part is taken as whole, or thrown away, only once its size was compared with the
    server's: a server that resumes elsewhere, refuses the range or answers with something
    shorter (an error page) must not make it an archive or wipe what arrived. ``size``: the
    file's size in bytes, the most accepted; with None, only a body of stated length is."""
    part = part_of(dest)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        why = f"{part.name} holds {have:,} bytes, more than the {size:,} of the file"
        restart(url, dest, why, quiet, room, size)
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = OPENER.open(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:
            raise DownloadError(f"download of {url} failed: HTTP {err.code}") from None
        total = content_range(err.headers)[1] or remote_size(url)  # "nothing after byte have"
        if total == have:  # the part is complete
            os.replace(part, dest)
            return
        if total is None:
            raise DownloadError(
                f"download of {url} failed: the server refused to resume {part} ({have} bytes) "
                f"and gives no size; delete {part.name} to download it from the start"
            ) from None
        why = f"the server refused to resume {part.name} ({have} of {total} bytes)"
        restart(url, dest, why, quiet, room, size)
        return
    except SERVER_FAILURES as err:
        raise server_failure(url, err) from None
    with response:
        length = content_length(response, url)
        resumed = bool(have) and response.status == 206
        moved = resumed and content_range(response.headers)[0] != have
        if have and not resumed and length is not None and length < have:
            raise DownloadError(
                f"download of {url} failed: asked for the bytes after the {have} in "
                f"{part.name}, the server sent {length} bytes from the start instead; the part "
                "is kept: run the same command again later, or delete it to start over"
            )
        if not moved:
            start = have if resumed else 0
            total = start + length if length is not None else size
            if total is None:
                raise DownloadError(
                    f"download of {url} failed: the server gives no size for it, and its size "
                    "is not known here; download it from a server that gives one (--base-url)"
                )
            if size is not None and total > size:
                raise DownloadError(
                    f"download of {url} failed: the server offers {total:,} bytes, more than "
                    f"the {size:,} of the file; check the server"
                )
            if room is not None and length is not None:  # a server that refused HEAD tells now
                room(total, start)
            receive(url, response, part, start, total, quiet)
    if moved:
        where = response.headers.get("Content-Range")
        restart(
            url,
            dest,
            one_line(f"the server resumed {part.name} not at byte {have} ({where})"),
            quiet,
            room,
            size,
        )
        return
    os.replace(part, dest)


def restart(
    url: str,
    dest: Path,
    why: str,
    quiet: bool,
    room: Callable[[int, int], None] | None,
    size: int | None,
) -> None:
    """Download ``url`` again from its first byte: the part cannot be resumed."""
    if not quiet:
        print(f"note: {why}; downloading it from the start", file=sys.stderr)
    part_of(dest).unlink()
    fetch(url, dest, quiet, room, size)


def receive(
    url: str,
    response: http.client.HTTPResponse,
    part: Path,
    start: int,
    total: int,
    quiet: bool,
) -> None:
    """Write the body to ``part`` from byte ``start`` (0: the whole file, anew) up to byte
    ``total``; a body going past it is not the file, and nothing of it is kept."""
    bar = tqdm(
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        desc=part.name.removesuffix(".part"),
        disable=quiet or not sys.stderr.isatty(),
    )
    # Unbuffered, so what was written is in the part whatever stops the loop, and a full
    # disk cannot fail a second time when the file closes.
    with open(part, "ab" if start else "wb", buffering=0) as f, bar:
        window_start, window_bytes = time.monotonic(), 0
        try:
            # read1: what has arrived, so a stall keeps the bytes before it in the part
            while block := response.read1(CHUNK):
                if f.tell() + len(block) > total:  # only a body of no stated length gets here
                    f.truncate(start)
                    if not start:
                        part.unlink()
                    raise DownloadError(
                        f"download of {url} stopped: the server sent more than the {total:,} "
                        f"bytes of the file; what it sent is not kept: check the server"
                    )
                view = memoryview(block)
                while view:
                    view = view[f.write(view) :]
                bar.update(len(block))
                window_bytes += len(block)
                if (elapsed := time.monotonic() - window_start) >= TIMEOUT_SECONDS:
                    if window_bytes < MIN_BYTES_PER_SECOND * elapsed:
                        raise TimeoutError(
                            f"{window_bytes} bytes in the last {elapsed:.0f} s, under "
                            f"{MIN_BYTES_PER_SECOND} a second"
                        )
                    window_start, window_bytes = time.monotonic(), 0
            os.fsync(f.fileno())
        except (OSError, http.client.HTTPException) as err:  # a stall, a reset, a full disk
            raise DownloadError(
                f"download of {url} stopped after {f.tell()} bytes "
                f"({err or type(err).__name__}); {RESUME_ADVICE}"
            ) from None
        if f.tell() != total:
            raise DownloadError(
                f"download of {url} ended after {f.tell()} of {total} bytes (the connection "
                f"closed); {RESUME_ADVICE}"
            )


def load_problem(name: str, data_path: Path) -> str | None:
    """Why torchvision's loaders cannot open both splits (they check every file's MD5 they
    know); None: they can."""
    from train.jepa.datasets import DatasetMissing, build_dataset

    spec = DatasetSpec(kind=name)
    try:
        for split in ("pretrain", "test"):
            build_dataset(spec, data_path, split)
    except DatasetMissing as err:
        return err.problem
    return None


@contextmanager
def download_lock(folder: Path) -> Iterator[None]:
    """One download per folder: two wrote into one ``.part`` and the later one crashed."""
    path = folder / LOCK_NAME
    try:
        lock = FolderLock(path).acquire()
    except ForeignLockError as err:
        raise BadInput(str(err)) from None
    except LockedError as err:
        raise BadInput(f"another download is running: {err}") from None
    except OSError as err:
        raise DownloadError(f"cannot lock {folder}: {failed_io(err)}") from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # a finished download leaves no lock file (as new_folder)
        lock.release()


def unpack(archive: Path, folder: Path) -> None:
    """Unpack ``archive`` into a hidden temporary in ``folder``, then rename what it holds
    into place, replacing the copy that did not load: a stop or an error leaves nothing half
    unpacked that a later run could take for the data."""
    work = folder / UNPACK_NAME
    work.mkdir()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(work, filter="data")
        for entry in work.iterdir():
            remove_path(folder / entry.name)
            entry.rename(folder / entry.name)
        work.rmdir()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def unpack_failure(archive: Path, err: BaseException) -> str:
    """Why ``archive`` did not unpack, and what to do: a disk error passes, a damaged archive
    or one holding what the tar filter refuses does not."""
    if isinstance(err, OSError) and err.errno is not None:  # a full disk, a file too large
        return (
            f"cannot unpack {archive}: {failed_io(err)}; nothing was put in place and the "
            "archive is kept: fix that and run the same command again"
        )
    return one_line(
        f"cannot unpack {archive}: {err or type(err).__name__}; the archive is damaged or holds "
        "what is not unpacked here (links, devices, paths outside the folder): delete it and "
        "run the same command again to download it anew"
    )


def download_archive(
    name: str,
    data_path: Path,
    base_url: str | None,
    quiet: bool,
    keep_archive: bool = False,
    stop: StopNote | None = None,
) -> Path:
    """Fetch, check and unpack ``name`` into its folder under ``data_path``, unless it loads
    already; ``stop`` is kept saying what a stop at each step leaves."""
    from train.jepa.datasets import IMAGE_SETS

    stop = stop or StopNote()
    folder = data_path / (IMAGE_SETS[name].folder or name)
    made = missing_folders(folder)  # taken back if the run leaves them empty
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise BadInput(f"cannot create {folder}: {err.strerror or err}") from None
        return _fetch_and_unpack(name, data_path, folder, base_url, quiet, keep_archive, stop)
    finally:
        remove_unused(made, LOCK_NAME)


def _fetch_and_unpack(
    name: str,
    data_path: Path,
    folder: Path,
    base_url: str | None,
    quiet: bool,
    keep_archive: bool,
    stop: StopNote,
) -> Path:
    archive = archive_for(name, base_url)
    dest = folder / archive.filename
    part = part_of(dest)
    with download_lock(folder):
        try:  # what a run killed while unpacking left: the lock says no run is using it
            remove_path(folder / UNPACK_NAME)
        except OSError as err:
            raise DownloadError(
                f"cannot remove what an earlier run left: {failed_io(err)}"
            ) from None
        if load_problem(name, data_path) is None:
            if not quiet:
                print(f"{name} already present and verified in {folder}", file=sys.stderr)
            for leftover in [part] + ([] if keep_archive else [dest]):
                if leftover.exists():  # said even with --quiet: it may hold gigabytes
                    print(
                        f"note: {leftover} is left from an earlier run and not needed; delete it",
                        file=sys.stderr,
                    )
            return folder
        if not (dest.exists() and md5_file(dest) == archive.md5):
            stop.text = f"what arrived is kept in the .part file; {RESUME_ADVICE}"
            arrived = part.stat().st_size if part.exists() else 0
            try:
                size = preflight(folder, archive, arrived, quiet)
                fetch(
                    archive.url,
                    dest,
                    quiet,
                    lambda total, have: check_room(folder, archive, total, have),
                    size,
                )
            except HostNotFound as err:
                raise HostNotFound(
                    one_line(
                        f"{err}; to place it by hand, copy {archive.filename} (MD5 "
                        f"{archive.md5}) to {dest} and run the same command again, or give "
                        "--base-url a mirror this machine can reach"
                    )
                ) from None
            stop.text = f"{dest} is kept; run the same command again to check and unpack it"
            digest = md5_file(dest)
            if digest != archive.md5:
                dest.unlink()
                raise DownloadError(
                    f"checksum mismatch for {archive.filename}: MD5 {digest}, expected "
                    f"{archive.md5}; the file was removed, run the command again"
                )
        stop.text = (
            f"while unpacking {dest}: nothing half unpacked is left and the archive is kept; "
            "run the same command again to unpack it"
        )
        try:
            unpack(dest, folder)
        except (OSError, EOFError, zlib.error, tarfile.TarError) as err:
            raise DownloadError(unpack_failure(dest, err)) from None
        stop.text = f"{name} is unpacked in {folder}; run the same command again to check it"
        if (why := load_problem(name, data_path)) is not None:
            raise DownloadError(
                f"{name} unpacked from {dest} but does not load ({why}); the archive is kept, "
                "and unpacked again by each run: delete it and run the same command again to "
                "download it anew"
            )
        if not keep_archive:
            dest.unlink()
    return folder


IMAGENET_STEPS = """\
ImageNet cannot be downloaded without an account. To prepare {root}:
  1. Register at https://image-net.org and download ILSVRC2012_img_train.tar (138 GB) and
     ILSVRC2012_img_val.tar (6.3 GB) for the ILSVRC 2012 challenge.
  2. mkdir -p {root}/train {root}/val
     tar -xf ILSVRC2012_img_train.tar -C {root}/train
     cd {root}/train && for f in *.tar; do d="${{f%.tar}}"; mkdir -p "$d"; tar -xf "$f" -C "$d"; rm "$f"; done
  3. tar -xf ILSVRC2012_img_val.tar -C {root}/val, then move each validation image into the
     folder of its WordNet id (e.g. with the valprep.sh script of the PyTorch ImageNet example).
  4. Run this command again to verify: train/ and val/ must each hold {n} class folders
     named by WordNet id (n01440764, ...), each with images.
ImageNet-100 reads the same folders and keeps the 100 CMC classes (train/jepa/imagenet100.txt)."""


def verify_imagenet(root: Path, subset: list[str] | None) -> list[str]:
    """Problems with an ImageFolder ImageNet at ``root`` (empty list: ready)."""
    problems = []
    for split in ("train", "val"):
        folder = root / split
        if not folder.is_dir():
            problems.append(f"missing folder {folder}")
            continue
        classes = {p.name for p in folder.iterdir() if p.is_dir()}
        wanted = set(subset) if subset else None
        if wanted is not None:
            missing = sorted(wanted - classes)
            if missing:
                problems.append(
                    f"{folder} lacks {len(missing)} of the 100 classes, e.g. {missing[0]}"
                )
            classes &= wanted
        elif len(classes) != 1000:
            problems.append(f"{folder} has {len(classes)} class folders, expected 1000")
        counts = {c: images_in(folder / c) for c in sorted(classes)}
        empty = [c for c, (good, _) in counts.items() if not good]
        if empty:
            names = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
            problems.append(
                f"{folder} has {len(empty)} class folders holding no image file (a regular, "
                f"non-empty .JPEG, .png, ...): {names}"
            )
        unusable = [path for _, bad in counts.values() for path in bad]
        if unusable:
            problems.append(
                f"{folder} has {len(unusable)} image names that are no regular non-empty file "
                f"(0 bytes, a FIFO, a dangling link), e.g. {unusable[0]}"
            )
    return problems


def images_in(folder: Path) -> tuple[int, list[str]]:
    """How many image files (by torchvision's extensions) directly in ``folder`` are regular
    and non-empty, and the paths of those that are not: a class folder holding only a
    README, a sub-folder or 0-byte files was "ready", and training then found no image."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    good, bad = 0, []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(IMG_EXTENSIONS) or entry.is_dir():
                continue
            try:
                usable = entry.is_file() and entry.stat().st_size > 0
            except OSError:  # gone, or a link loop
                usable = False
            if usable:
                good += 1
            else:
                bad.append(one_line(entry.path))
    return good, bad


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    load_modules("train.jepa.datasets")  # torch, and the names of the datasets
    from train.jepa.datasets import IMAGE_SETS

    parser = OneLineParser(prog="python -m train.jepa.download", description=__doc__.split("\n")[0])
    downloadable = [n for n, s in IMAGE_SETS.items() if s.archive or s.manual]
    parser.add_argument("name", choices=downloadable)
    parser.add_argument("--data-path", default="data", help="datasets go to DATA_PATH/NAME")
    parser.add_argument(
        "--base-url", help=f"mirror server (default: the {BASE_URL_ENV} environment variable)"
    )
    parser.add_argument("--keep-archive", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.base_url is None:
        args.base_url = os.environ.get(BASE_URL_ENV)
        given = f"the environment's {BASE_URL_ENV}"
    else:
        given = "--base-url"
    if args.base_url and not is_http_url(args.base_url):
        parser.error(
            f"{given} must be an http(s) URL such as https://host/path, got {args.base_url!r}"
        )
    stop = StopNote()
    return exit_on_interrupt(lambda: _download(args, stop), lambda: stop.text)


def _download(args: argparse.Namespace, stop: StopNote) -> int:
    from train.jepa.datasets import IMAGE_SETS

    data_path = Path(args.data_path)
    image_set = IMAGE_SETS[args.name]
    if image_set.manual:
        root = data_path / (image_set.folder or args.name)
        subset = image_set.manual_classes() if image_set.manual_classes else None
        problems = verify_imagenet(root, subset)
        if problems:
            print(IMAGENET_STEPS.format(root=root, n=100 if subset else 1000), file=sys.stderr)
            print("not ready: " + "; ".join(problems), file=sys.stderr)
            return 1
        print(f"{args.name} ready in {root}")
        return 0
    try:
        folder = download_archive(
            args.name, data_path, args.base_url, args.quiet, args.keep_archive, stop
        )
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name} ready in {folder}")
    return 0


run = entry_point(main)  # python -m train.jepa.download and its console script

if __name__ == "__main__":
    run()
