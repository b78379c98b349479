"""``python -m train.jepa.download NAME --data-path DIR``: fetch, verify and unpack a dataset.

CIFAR-10, CIFAR-100 and STL-10 are fetched from the URLs and MD5s torchvision ships with its
loaders: a disk-space preflight first, then an HTTP download that resumes a partial
``<archive>.part`` with a Range request, an MD5 check (a mismatch deletes the file), extraction
into ``DIR/NAME`` and a final load through torchvision, which checks every file's MD5.
ImageNet cannot be downloaded without an account: for ``imagenet`` and ``imagenet100`` this
prints the manual steps and verifies the folder structure it finds.

``--base-url`` (or ``JEPA_DOWNLOAD_BASE_URL``) replaces the server, keeping the file name: for a
mirror, and for the tests, which serve small archives from a loopback server.
Exit status: 0 ready, 1 a check failed (checksum, disk space, structure), 2 bad input,
130 stopped. ``train.jepa.datasets`` (torch) is imported inside the functions that read it, so
that the command loads torch in ``main`` where a stop is one line (``load_modules``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from train.jepa.config import DatasetSpec
from trajkit.cli import (
    OneLineParser,
    entry_point,
    exit_on_interrupt,
    load_modules,
    one_line,
    quiet_on_closed_output,
)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60  # with nothing arriving for this long, a download stops (resumable)
BASE_URL_ENV = "JEPA_DOWNLOAD_BASE_URL"
DISK_MARGIN = 1.1  # ask for 10% more than the estimate


class DownloadError(RuntimeError):
    """A failed check (checksum, space, server); exit status 1."""


@dataclass(frozen=True)
class Archive:
    url: str
    filename: str
    md5: str
    unpacked_ratio: float  # unpacked size / archive size, for the disk preflight


def archive_for(name: str, base_url: str | None = None) -> Archive:
    """The archive torchvision's loader for ``name`` expects (read at call time)."""
    from train.jepa.datasets import IMAGE_SETS

    cls = IMAGE_SETS[name].archive
    url = cls.url if not base_url else f"{base_url.rstrip('/')}/{cls.filename}"
    return Archive(url, cls.filename, cls.tgz_md5, IMAGE_SETS[name].unpacked_ratio)


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


# What a server that hangs up (RemoteDisconnected), answers no HTTP (BadStatusLine, a header
# line over 64 KiB) or is silent (TimeoutError) raises; URLError, an OSError, wraps the rest.
SERVER_FAILURES = (OSError, http.client.HTTPException)


def server_failure(url: str, err: BaseException) -> DownloadError:
    """``err`` (one of SERVER_FAILURES) as one line naming ``url``."""
    why = err.reason if isinstance(err, urllib.error.URLError) else f"{type(err).__name__}: {err}"
    return DownloadError(
        one_line(f"download of {url} failed ({why}); run the same command again to resume it")
    )


def remote_size(url: str) -> int | None:
    """The size the server gives for ``url`` (None: none, or HEAD refused). A server that
    hangs up, is silent or does not speak HTTP is a DownloadError here, not a traceback."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method="HEAD"), timeout=TIMEOUT_SECONDS
        ) as r:
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


def preflight(folder: Path, archive: Archive, have: int, quiet: bool) -> None:
    """Refuse to start when the free space cannot hold the rest of the archive plus its contents."""
    total = remote_size(archive.url)
    if total is None:
        if not quiet:
            print("note: server gave no size; skipping the disk-space estimate", file=sys.stderr)
        return
    need = int(((total - have) + total * archive.unpacked_ratio) * DISK_MARGIN)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DownloadError(
            f"not enough disk space in {folder}: need about {need / 1e9:.2f} GB, "
            f"free {free / 1e9:.2f} GB"
        )


def fetch(url: str, dest: Path, quiet: bool = True) -> None:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # nothing left to send: the partial file is complete
            os.replace(part, dest)
            return
        raise DownloadError(f"download of {url} failed: HTTP {err.code}") from None
    except SERVER_FAILURES as err:
        raise server_failure(url, err) from None
    with response:
        resumed = have and response.status == 206
        mode, start = ("ab", have) if resumed else ("wb", 0)
        length = content_length(response, url)
        total = start + length if length is not None else None
        bar = tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            desc=dest.name,
            disable=quiet or not sys.stderr.isatty(),
        )
        # Unbuffered, so what was written is in the part whatever stops the loop, and a full
        # disk cannot fail a second time when the file closes.
        with open(part, mode, buffering=0) as f, bar:
            try:
                # read1: what has arrived, so a stall keeps the bytes before it in the part
                while block := response.read1(CHUNK):
                    view = memoryview(block)
                    while view:
                        view = view[f.write(view) :]
                    bar.update(len(block))
                os.fsync(f.fileno())
            except (OSError, http.client.HTTPException) as err:  # a stall, a reset, a full disk
                raise DownloadError(
                    f"download of {url} stopped after {f.tell()} bytes "
                    f"({err or type(err).__name__}); run the same command again to resume it"
                ) from None
            if total is not None and f.tell() != total:
                raise DownloadError(
                    f"download of {url} ended after {f.tell()} of {total} bytes (the connection "
                    "closed); run the same command again to resume it"
                )
    os.replace(part, dest)


def verify_loadable(name: str, data_path: Path) -> None:
    """Open both splits with torchvision's loaders, which check every file's MD5."""
    from train.jepa.datasets import build_dataset

    spec = DatasetSpec(kind=name)
    for split in ("pretrain", "test"):
        build_dataset(spec, data_path, split)


def download_archive(
    name: str, data_path: Path, base_url: str | None, quiet: bool, keep_archive: bool = False
) -> Path:
    from train.jepa.datasets import IMAGE_SETS, DatasetMissing

    folder = data_path / (IMAGE_SETS[name].folder or name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        verify_loadable(name, data_path)
        if not quiet:
            print(f"{name} already present and verified in {folder}", file=sys.stderr)
        return folder
    except DatasetMissing:
        pass
    archive = archive_for(name, base_url)
    dest = folder / archive.filename
    if not (dest.exists() and md5_file(dest) == archive.md5):
        part = dest.with_name(dest.name + ".part")
        preflight(folder, archive, part.stat().st_size if part.exists() else 0, quiet)
        fetch(archive.url, dest, quiet)
        digest = md5_file(dest)
        if digest != archive.md5:
            dest.unlink()
            raise DownloadError(
                f"checksum mismatch for {archive.filename}: MD5 {digest}, expected "
                f"{archive.md5}; the file was removed, run the command again"
            )
    with tarfile.open(dest, "r:gz") as tar:
        tar.extractall(folder, filter="data")
    try:
        verify_loadable(name, data_path)
    except DatasetMissing as err:
        raise DownloadError(f"{name} unpacked but does not load: {err}") from None
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
        empty = sorted(c for c in classes if not any((folder / c).iterdir()))
        if empty:
            problems.append(f"{folder} has {len(empty)} empty class folders, e.g. {empty[0]}")
    return problems


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    load_modules("train.jepa.datasets")  # torch, and the names of the datasets
    from train.jepa.datasets import IMAGE_SETS

    parser = OneLineParser(prog="python -m train.jepa.download", description=__doc__.split("\n")[0])
    downloadable = [n for n, s in IMAGE_SETS.items() if s.archive or s.manual]
    parser.add_argument("name", choices=downloadable)
    parser.add_argument("--data-path", default="data", help="datasets go to DATA_PATH/NAME")
    parser.add_argument("--base-url", default=os.environ.get(BASE_URL_ENV), help="mirror server")
    parser.add_argument("--keep-archive", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    return exit_on_interrupt(
        lambda: _download(args),
        "what arrived is kept in the .part file; run the same command again to resume it",
    )


def _download(args: argparse.Namespace) -> int:
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
            args.name, data_path, args.base_url, args.quiet, args.keep_archive
        )
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name} ready in {folder}")
    return 0


run = entry_point(main)  # python -m train.jepa.download and its console script

if __name__ == "__main__":
    run()
