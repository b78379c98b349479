"""``python -m generator convert SRC DST --format pt|shards``: change layout, keep every tensor.

The destination keeps the source's checkpoint chunks (one manifest per
source manifest) and settings, so it is a dataset like any other: resumable,
``validate``-able. Each sample is verified as it is written: the SHA-256 of
the tensor's raw bytes read back from the destination must equal the
source's, and the label must be the same apart from ``video_sha256`` (which
names the new file's bytes). What is read from the source is first checked
against the source's manifests (video and label SHA-256), so damage there
stops the conversion rather than passing into the new dataset with a fresh
checksum.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from joblib import delayed
from tqdm import tqdm

from generator.dataformat.layout import (
    CONVERTING,
    FORMATS,
    LOCK,
    FolderError,
    Layout,
    lock_is_new,
    open_folder,
    unfinished_convert,
)
from trajkit.cli import describe_validation_error
from trajkit.files import remove_path, sync_filesystem, write_atomic, write_json_atomic
from trajkit.lock import LockedError, no_writer
from trajkit.workers import process_pool

TASK_SIZE = 16


class ConvertError(Exception):
    """A conversion that cannot start (``exit_code`` 2) or whose check failed (1); one line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _tensor_sha(video) -> str:
    from trajkit.files import sha256_bytes

    return sha256_bytes(video.contiguous().numpy().tobytes())


def _plain(label: dict) -> dict:
    return {k: v for k, v in label.items() if k != "video_sha256"}


def convert_task(
    src: str, dst: str, fmt: str, level: int, start: int, end: int, compression: str = "zstd"
) -> dict:
    """Copy samples ``start..end-1`` into ``dst``'s layout and verify them; returns their entries."""
    import torch

    from generator.dataformat.dataset import read_metadata
    from generator.dataformat.shards import ShardWriter, decode_video, read_sample
    from generator.dataformat.sources import load_video, open_source, read_file
    from generator.dataformat.writer import SampleWriter

    meta = read_metadata(src)
    # Every video hashed against the source's manifest, as the labels are: unchecked, a
    # changed byte in a .pt file was copied and given a new, valid SHA-256 in ``dst``.
    source = open_source(src, meta, verify=True)
    layout = Layout(dst, meta["stem_width"])
    expected: dict[int, tuple[str, dict]] = {}
    shard = layout.shard(start, compression)
    writer = ShardWriter(shard, level) if fmt == "shards" else None
    samples = SampleWriter(layout) if writer is None else None
    try:
        for i in range(start, end):
            video, label = source.read(i)
            expected[i] = (_tensor_sha(video), _plain(label))
            if writer is not None:
                writer.add(i, layout.stem(i), video.numpy(), _plain(label))
            else:
                samples.add(i, video.clone(), _plain(label))
    except BaseException as e:
        if writer is not None:
            writer.abort(e)
        raise
    finally:
        if samples is not None:
            samples.close()
    result = writer.close() if writer is not None else {"samples": samples.entries, "shard": None}
    for e in result["samples"]:
        i = e["index"]
        if fmt == "pt":  # no manifest vouches for these files yet: read them as they are
            video = load_video(layout.video(i), tuple(meta["video_shape"]))
            label = json.loads(read_file(layout.label(i), layout.root))
        else:
            npy, data = read_sample(shard, e["stem"], e["offset"], e["length"])
            video, label = torch.from_numpy(decode_video(npy)), json.loads(data)
        if (_tensor_sha(video), _plain(label)) != expected[i]:
            raise ConvertError(f"sample {i} differs after conversion to {fmt}", exit_code=1)
    return result


def convert(
    src: Path,
    dst: Path,
    fmt: str,
    shard_size: int,
    level: int,
    workers: int,
    quiet: bool = False,
    compression: str = "zstd",
) -> dict:
    """Convert ``src`` into a new dataset ``dst``; returns the new metadata. No writer may
    hold ``src`` meanwhile (``source_unwritten``): a generator extending it was read past
    what it had written."""
    from pydantic import ValidationError

    from generator.config import stored_config
    from generator.dataformat.dataset import DatasetError, read_metadata
    from generator.dataformat.metadata import Progress, fingerprint, renderer_of, write_metadata
    from generator.dataformat.shard_options import layout_settings

    with source_unwritten(src):
        meta = read_metadata(src)
        if fmt not in FORMATS:
            raise ConvertError(f"--format must be one of {', '.join(FORMATS)}")
        try:
            cfg = stored_config(meta["config"])
        except ValidationError as e:  # the config of no generator: the source is damaged
            where = src / "metadata.json"
            raise DatasetError(
                f"{where} is damaged: config: {describe_validation_error(e)}"
            ) from None
        settings = layout_settings(fmt, shard_size, level, compression)
        manifests = _vouched_manifests(src, meta)
        layout = Layout(dst, meta["stem_width"])
        if dst.resolve().is_relative_to(src.resolve()):  # it would become part of the source
            raise ConvertError(f"{dst} is inside {src}; choose a folder outside the source dataset")
        new_lock = lock_is_new(dst)
        try:
            lock, created = open_folder(dst, "the destination")
        except FolderError as e:
            raise ConvertError(str(e)) from None
        # Only the lock's holder looks at the folder or cleans it up: a second convert into the
        # same folder fails on the lock, and removes nothing of the first one's work.
        if unfinished_convert(dst):  # a convert killed outright (-9): its files, all of them
            _remove_ours(dst, layout, created=False)
        if any(p.name != layout.lock.name for p in dst.iterdir()):
            if new_lock:  # refused: the folder is left as it was
                layout.lock.unlink(missing_ok=True)
            lock.release()
            raise ConvertError(f"{dst} is not empty; choose a new folder for the converted dataset")
        ok = False
        try:
            write_atomic(dst / CONVERTING, b"")
            layout.make_dirs(fmt)
            write_json_atomic(
                layout.fingerprint,
                fingerprint(
                    cfg,
                    meta["seed"],
                    layout.width,
                    settings,
                    renderer_of(meta),
                ),
            )
            done = Progress()
            bar = tqdm(
                total=meta["total_samples"], unit="sample", disable=quiet or not sys.stderr.isatty()
            )
            with bar, process_pool(workers) as parallel:
                for m in manifests:
                    step = shard_size if fmt == "shards" else TASK_SIZE
                    ranges = [
                        (s, min(s + step, m["end"])) for s in range(m["start"], m["end"], step)
                    ]
                    results = []
                    for r in parallel(
                        delayed(convert_task)(str(src), str(dst), fmt, level, s, e, compression)
                        for s, e in ranges
                    ):
                        results.append(r)
                        bar.update(len(r["samples"]))
                    results.sort(key=lambda r: r["samples"][0]["index"])
                    entries = [e for r in results for e in r["samples"]]
                    sync_filesystem(dst)
                    manifest = {k: v for k, v in m.items() if k not in ("samples", "shards")}
                    manifest["samples"] = entries
                    if fmt == "shards":
                        manifest["shards"] = [r["shard"] for r in results]
                    write_json_atomic(layout.manifest(m["end"]), manifest)
                    done.add(entries)
            # The marker goes first: a kill between the two leaves a dataset that generator
            # --resume finishes, never a whole one that the next convert would take for its own.
            (dst / CONVERTING).unlink()
            out = write_metadata(layout, cfg, fmt, meta["seed"], done, meta["cameras"], settings)
            ok = True
            return out
        finally:
            if not ok:  # still under the lock, so nobody else's files can be in the way
                _remove_ours(dst, layout, created)
            lock.release()


@contextmanager
def source_unwritten(src: Path) -> Iterator[None]:
    """``src`` held against writers (``no_writer``): one writing it is refused, exit 1."""
    try:
        with no_writer(src / LOCK):
            yield
    except LockedError as e:
        raise ConvertError(str(e), exit_code=1) from None


def _vouched_manifests(src: Path, meta: dict) -> list[dict]:
    """The source's manifests of the samples its metadata.json counts. An extension stopped
    (or still running) leaves manifests past them, which no metadata vouches for yet."""
    from generator.dataformat.sources import DatasetError, read_manifest

    total = meta["total_samples"]
    manifests = [read_manifest(p, src)[1] for p in Layout(src).manifests()]
    vouched = [m for m in manifests if m["end"] <= total]
    if (vouched[-1]["end"] if vouched else 0) != total:
        raise DatasetError(
            f"{src}: no checkpoint manifest ends at sample {total}, where metadata.json does"
        )
    if len(vouched) < len(manifests):
        print(
            f"warning: {src} holds checkpoints past the {total} samples of its metadata.json "
            f"(an extension that did not finish); converting those {total}",
            file=sys.stderr,
        )
    return vouched


def _remove_ours(dst: Path, layout: Layout, created: bool) -> None:
    """Undo a failed conversion: the folder if this run made it, else what it put inside."""
    if created:
        shutil.rmtree(dst, ignore_errors=True)
        return
    for p in dst.iterdir():
        if p.name != layout.lock.name:
            remove_path(p, ignore_errors=True)


def main(argv: list[str]) -> int:
    from generator.dataformat.dataset import DatasetError
    from generator.dataformat.shard_options import add_shard_options, shard_settings
    from trajkit.cli import MAX_WORKERS, OneLineParser, default_workers, whole_number

    p = OneLineParser(prog="python -m generator convert", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--format", choices=FORMATS, required=True)
    add_shard_options(p)
    p.add_argument("--workers", type=whole_number(1, MAX_WORKERS), default=default_workers())
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    shard_size, compression, level = shard_settings(p, args)
    try:
        meta = convert(
            args.src,
            args.dst,
            args.format,
            shard_size,
            level,
            args.workers,
            args.quiet,
            compression,
        )
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except DatasetError as e:  # the source is damaged: bad data, as validate reports it
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(
            f"error: conversion failed ({e.strerror or e}); what it wrote in {args.dst} was removed",
            file=sys.stderr,
        )
        return 1
    print(
        f"converted {meta['total_samples']} samples to {args.format} in {args.dst}: "
        "every tensor's SHA-256 and every label verified"
    )
    return 0
