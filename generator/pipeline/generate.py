"""Chunked, resumable, parallel generation of a format-v1 dataset.

Resume is a listing, not a guess (as img2dataset does it): a chunk is done when
its manifest exists; samples after the last manifest are kept only if their
label vouches for their video's SHA-256, and rendered again otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from joblib import Parallel, delayed
from tqdm import tqdm

from generator.config import GeneratorConfig
from generator.dataformat.layout import (
    FORMAT_VERSION,
    FolderError,
    Layout,
    check_folder,
    lock_is_new,
    open_folder,
    stem_width,
    unfinished_convert,
)
from generator.dataformat.metadata import Progress, fingerprint, renderer_of, write_metadata
from generator.dataformat.sources import (
    DatasetError,
    Fingerprint,
    label_limit,
    read_manifest,
    read_model,
)
from generator.dataformat.writer import check_written_sample
from generator.pipeline.backends import BackendError, open_backend
from generator.pipeline.heal import make_room
from generator.pipeline.metadata import rig_metadata
from generator.pipeline.preflight import estimate, video_file_bytes
from generator.pipeline.request import Request, compression_of
from generator.pipeline.tasks import render_shard_task, render_task
from generator.render.sample import RENDER_VERSION
from trajkit.files import (
    drop_cached,
    remove_path,
    remove_temporaries,
    sync_filesystem,
    write_json_atomic,
)

TASK_SIZE = 16  # samples per joblib task (format "pt"): amortises dispatch, keeps the bar moving
FLUSH_EVERY = 256  # samples between syncs that evict them from the page cache (_flush)
MAX_FINGERPRINT = 1 << 20  # bytes: a config dump is a few kB; more is not a fingerprint


class GenerationError(Exception):
    """A problem the user must fix; ``exit_code`` 2 for bad input, 1 for a failed check."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _differences(old: object, new: object, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


# ------------------------------------------------------------------ planning


def _completed(layout: Layout) -> tuple[Progress, list[Path], str]:
    """Samples covered by manifests, in order; then the first damaged manifest and those
    after it, which only ``--resume`` may drop, and what is wrong with the first. Each
    manifest is read only as a regular file and checked against its schema."""
    done = Progress()
    manifests = layout.manifests()
    for k, path in enumerate(manifests):
        try:
            _, manifest = read_manifest(path, layout.root)
            chunk = manifest["samples"]
            if manifest["start"] != done.samples or [e["index"] for e in chunk] != list(
                range(manifest["start"], manifest["end"])
            ):
                raise DatasetError(f"{path} does not continue the chunks before it")
        except DatasetError as e:
            return done, manifests[k:], str(e)
        done.add(chunk)
    return done, [], ""


def _drop_manifests(damaged: list[Path], why: str) -> None:
    """``--resume``: forget a damaged manifest and those after it; their samples are re-checked."""
    print(
        f"warning: ignoring checkpoint manifest ({why}); its samples will be re-checked",
        file=sys.stderr,
    )
    for path in damaged:
        remove_path(path)


def _holds_data(root: Path) -> bool:
    """Whether the folder ``root`` holds more than its lock; refused if that is not a dataset
    of this generator. A fingerprint that is a link (a loop, say) is the dataset's, and
    reading it says what is wrong with it."""
    probe = Layout(root)
    has_data = any(p.name != probe.lock.name for p in root.iterdir())
    if unfinished_convert(root):  # its samples are the source's: only convert finishes it
        raise GenerationError(
            f"{root} is an unfinished convert; run the same python -m generator convert again "
            "to finish it, or remove the folder"
        )
    if has_data and not os.path.lexists(probe.fingerprint):
        raise GenerationError(
            f"{root} holds files that are not a dataset of this generator; choose an empty or new --out"
        )
    return has_data


def check_out(root: Path) -> None:
    """Refuse the ``--out`` that ``generate`` would refuse (``check_folder``, and a folder of
    other files), writing nothing: ``preflight``'s verdict on it."""
    try:
        exists = check_folder(root)
    except FolderError as e:
        raise GenerationError(str(e)) from None
    if exists:
        _holds_data(root)


def prepare_folder(req: Request, cfg: GeneratorConfig) -> tuple[Layout, Progress]:
    """Check the (locked) output folder against the request; return its layout and completed entries."""
    root = req.out
    probe = Layout(root)
    has_data = _holds_data(root)
    if not has_data:
        layout = Layout(root, stem_width(req.n))
        layout.make_dirs(req.format)
        return layout, Progress()
    try:
        _, old = read_model(probe.fingerprint, root, Fingerprint, limit=MAX_FINGERPRINT)
    except DatasetError as e:
        raise GenerationError(f"cannot resume: {e}") from None
    layout = Layout(root, old["stem_width"])
    done, damaged, why = _completed(layout)
    if not req.resume:
        raise GenerationError(
            f"{root} already holds a dataset ({done.samples} samples checkpointed); "
            "pass --resume to continue or extend it, or choose another --out"
        )
    old_format = (old.get("layout") or {}).get("format", "pt")
    if old_format != req.format:
        raise GenerationError(
            f"{root} holds format {old_format!r}; resume it with --format {old_format}, "
            f"or convert it with python -m generator convert"
        )
    old_compression = compression_of(old.get("layout"))
    if req.format == "shards" and old_compression != req.compression:
        raise GenerationError(
            f"{root} holds shards with compression {old_compression!r}; resume it with "
            f"--compression {old_compression}, or convert it with python -m generator convert"
        )
    drawn_by = renderer_of(old)
    if drawn_by != RENDER_VERSION:
        raise GenerationError(
            f"cannot resume {root}: its samples were drawn by renderer version {drawn_by} and this "
            f"generator draws version {RENDER_VERSION}, whose bytes differ; finish it with the "
            "release that started it, or generate into another --out"
        )
    new = fingerprint(cfg, req.seed, layout.width, req.layout_settings(), RENDER_VERSION)
    diff = [d for d in _differences(old, new) if d != "stem_width"]
    if diff:
        raise GenerationError(
            f"cannot resume {root}: it was made with different settings ({', '.join(diff)}); "
            "use the original seed and config, or another --out"
        )
    if req.n < done.samples:
        raise GenerationError(
            f"{root} already holds {done.samples} samples; --n must be at least that"
        )
    if stem_width(req.n) > layout.width:
        raise GenerationError(
            f"{root} uses {layout.width}-digit file names, which hold at most {10**layout.width} "
            f"samples; generate {req.n} samples into a new --out"
        )
    if damaged:  # the folder is accepted: repairs may start
        _drop_manifests(damaged, why)
    return layout, done


# ------------------------------------------------------------------ the run


def _pending(
    layout: Layout, start: int, end: int, workers: int, video_limit: int, label_bytes: int
) -> tuple[list[dict], list[int]]:
    """Samples in [start, end) already whole on disk (entries) and those still to render; a
    video over ``video_limit`` bytes or a label over ``label_bytes`` is not read (a huge
    sparse file would be, whole) but rendered again."""
    with Parallel(n_jobs=workers, prefer="threads") as parallel:
        checked = parallel(
            delayed(check_written_sample)(layout, i, video_limit, label_bytes)
            for i in range(start, end)
        )
    kept = [e for e in checked if e is not None]
    todo = [i for i, e in zip(range(start, end), checked, strict=True) if e is None]
    return kept, todo


def _labels_as_drawn(
    layout: Layout, kept: list[dict], todo: list[int], cfg_json: str, seed: int
) -> tuple[list[dict], list[int]]:
    """Keep an unsealed sample only if its label says what its ``(seed, index)`` draws.

    Its label vouches for its video, but nothing vouches for the label until the chunk is
    sealed: an edited label would otherwise go into the manifest as if generated.
    """
    from generator.pipeline.tasks import maker_for

    maker = maker_for(cfg_json)
    good = []
    for e in kept:
        i = e["index"]
        stored = json.loads(layout.label(i).read_bytes())  # whole: ``check_written_sample`` read it
        drawn = json.loads(json.dumps(maker.label(seed, i)))
        if all(stored.get(k) == v for k, v in drawn.items()):
            good.append(e)
        else:
            todo.append(i)
    return good, sorted(todo)


def generate(req: Request, cfg: GeneratorConfig) -> dict:
    """Run (or resume) generation; returns the metadata written at the end."""
    if req.n <= 0:
        raise GenerationError(f"--n must be a positive number of samples, got {req.n}")
    new_lock = lock_is_new(req.out)
    try:
        lock, created = open_folder(req.out)
    except FolderError as e:
        raise GenerationError(str(e)) from None
    done = Progress()
    layout = None  # until the folder is accepted, nothing in it is touched
    try:
        layout, done = prepare_folder(req, cfg)
        _remove_temporaries(layout)
        if not layout.fingerprint.exists():
            write_json_atomic(
                layout.fingerprint,
                fingerprint(cfg, req.seed, layout.width, req.layout_settings(), RENDER_VERSION),
            )
        remaining = req.n - done.samples
        if req.preflight and remaining > 0:
            est = estimate(cfg, remaining, layout.root, req.format)
            if not est.ok:
                raise GenerationError(
                    f"not enough disk space: {est.describe()}. Free space, choose another --out, "
                    "or pass --no-preflight to try anyway",
                    exit_code=1,
                )
        with open_backend(req) as parallel:
            if done.samples:
                _heal(req, cfg, layout, parallel)
            _run_chunks(req, cfg, layout, done, parallel)
        return write_metadata(
            layout, cfg, req.format, req.seed, done, rig_metadata(cfg), req.layout_settings()
        )
    except BackendError as e:
        raise GenerationError(str(e)) from None
    except OSError as e:
        _remove_temporaries(layout)
        raise GenerationError(
            f"write failed in {req.out} ({e.strerror or e}); {done.samples} whole samples are "
            "checkpointed and kept: fix the cause (free disk space) and run again with --resume",
            exit_code=1,
        ) from None
    except BaseException:
        _remove_temporaries(layout)
        raise
    finally:
        if new_lock and not Layout(req.out).fingerprint.exists():
            # Refused before it became a dataset (a folder of other files): left as it was.
            Layout(req.out).lock.unlink(missing_ok=True)
        lock.release()
        if created and not done.samples:
            _remove_if_empty(req.out)


def _remove_temporaries(layout: Layout | None) -> None:
    """Remove what a crashed run left half-written, only in the folders the generator writes,
    and only in a folder accepted as its own: a refused ``--out`` is left as it was."""
    for folder in layout.folders() if layout is not None else ():
        remove_temporaries(folder, recursive=False)


def _heal(req: Request, cfg: GeneratorConfig, layout: Layout, parallel: Parallel) -> None:
    from generator.pipeline.heal import HealError, heal

    try:
        labels = label_limit(cfg.video_shape, cfg.horizon)
        repaired = heal(req, cfg.model_dump_json(), layout, parallel, labels)
    except HealError as e:
        raise GenerationError(f"cannot repair {layout.root}: {e}", exit_code=1) from None
    if repaired and not req.quiet:
        checked = "size and hash" if req.verify else "size"
        print(
            f"resume: repaired {repaired} checkpointed samples whose files were missing or "
            f"damaged ({checked} checked against the manifests)",
            file=sys.stderr,
        )


def _remove_if_empty(root: Path) -> None:
    """Undo the folder a failed first run created, if nothing of value was written."""
    layout = Layout(root)
    for folder, pattern in (
        (layout.videos, "*.pt"),
        (layout.shards, "*.tar.zst"),
        (layout.shards, "*.tar"),
    ):
        if folder.is_dir() and any(folder.glob(pattern)):
            return

    shutil.rmtree(root, ignore_errors=True)


def _chunk_calls(
    req: Request, cfg: GeneratorConfig, layout: Layout, start: int, end: int
) -> tuple[list[dict], list[dict], list]:
    """Entries of samples in [start, end) already whole on disk, summaries of whole shards
    among them, and the tasks that make the rest."""
    root, cfg_json = str(layout.root), cfg.model_dump_json()
    kept_shards: list[dict] = []
    if req.format == "shards":
        from generator.dataformat.shard_plan import pending_shards

        found, ranges = pending_shards(
            layout, start, end, req.shard_size, req.workers, req.compression
        )
        kept = [e for f in found for e in f["samples"]]
        kept_shards = [f["shard"] for f in found]
        for s, _ in ranges:
            make_room(layout.shard(s, req.compression))
        calls = [
            delayed(render_shard_task)(
                cfg_json, req.seed, root, layout.width, req.zstd_level, s, e, req.compression
            )
            for s, e in ranges
        ]
    else:
        labels = label_limit(cfg.video_shape, cfg.horizon)
        kept, todo = _pending(layout, start, end, req.workers, video_file_bytes(cfg), labels)
        if kept:
            kept, todo = _labels_as_drawn(layout, kept, todo, cfg_json, req.seed)
        for i in todo:
            make_room(layout.video(i))
            make_room(layout.label(i))
        tasks = [todo[i : i + TASK_SIZE] for i in range(0, len(todo), TASK_SIZE)]
        calls = [delayed(render_task)(cfg_json, req.seed, root, layout.width, t) for t in tasks]
    if kept and not req.quiet:
        print(
            f"resume: {len(kept)} samples after the last checkpoint are whole and kept",
            file=sys.stderr,
        )
    return kept, kept_shards, calls


def _seal_chunk(
    req: Request,
    layout: Layout,
    done: Progress,
    start: int,
    end: int,
    elapsed: float,
    entries: list[dict],
    shards: list[dict],
    unflushed: list[Path],
) -> None:
    """Make a chunk's samples durable, then write the manifest that vouches for them."""
    entries.sort(key=lambda e: e["index"])
    sync_filesystem(layout.root)  # samples are written without fsync
    manifest = {
        "format_version": FORMAT_VERSION,
        "start": start,
        "end": end,
        "seed": req.seed,
        "elapsed_seconds": round(elapsed, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "samples": entries,
    }
    if req.format == "shards":
        manifest["shards"] = sorted(shards, key=lambda s: s["start"])
    write_json_atomic(layout.manifest(end), manifest)
    done.add(entries)
    drop_cached(unflushed)


def _flush(layout: Layout, files: list[Path]) -> None:
    """Sync finished files and evict them from the page cache, every FLUSH_EVERY samples.

    Left to the kernel, gigabytes of a run wait in memory and each write takes a fresh
    page, which in a VM costs most; synced and evicted early, pages are reused (10,000
    samples: 65 s -> 50-57 s, kernel time 32 s -> 12-18 s; the page cache stays under 1 GB).
    Videos written with direct I/O (``store.write_memory_file``) were never cached;
    labels, shards, and videos on filesystems without direct I/O were.
    """
    sync_filesystem(layout.root)
    drop_cached(files)


def _result_files(req: Request, layout: Layout, result: list[dict] | dict) -> list[Path]:
    """The files a task wrote: a shard, or each sample's video and label."""
    if req.format == "shards":
        return [layout.shards / result["shard"]["name"]]
    return [p for e in result for p in (layout.video(e["index"]), layout.label(e["index"]))]


def _check_done(futures: list[Future]) -> list[Future]:
    """Raise the error of any finished future (a failed sync stops the run); return the rest."""
    running = []
    for f in futures:
        if f.done():
            f.result()
        else:
            running.append(f)
    return running


def _run_chunks(
    req: Request, cfg: GeneratorConfig, layout: Layout, done: Progress, parallel: Parallel
) -> None:
    show = not req.quiet and sys.stderr.isatty()
    bar = tqdm(total=req.n, initial=done.samples, unit="sample", disable=not show, smoothing=0.1)
    # Flushes (sync, evict) and seals (sync, manifest) run in order in one thread while
    # the workers render on: the sync waits for the disk, and the workers need not wait.
    sealer = ThreadPoolExecutor(max_workers=1)
    pending: Future | None = None
    flushes: list[Future] = []
    start = done.samples
    try:
        while start < req.n:
            end = min(start + req.checkpoint_every, req.n)
            if req.preflight:
                est = estimate(cfg, end - start, layout.root, req.format)
                if not est.ok:
                    raise GenerationError(
                        f"disk nearly full, stopped before samples {start}-{end - 1}: {est.describe()}. "
                        f"{start} whole samples are kept; free space and run again with --resume",
                        exit_code=1,
                    )
            t0 = time.perf_counter()
            kept, kept_shards, calls = _chunk_calls(req, cfg, layout, start, end)
            bar.update(len(kept))
            entries, shards = list(kept), list(kept_shards)
            unflushed: list[Path] = []
            unflushed_samples = 0
            for result in parallel(calls):
                unflushed += _result_files(req, layout, result)
                if isinstance(result, dict):  # a shard: its samples and its own summary
                    shards.append(result["shard"])
                    result = result["samples"]
                entries.extend(result)
                bar.update(len(result))
                unflushed_samples += len(result)
                if unflushed_samples >= FLUSH_EVERY:
                    flushes.append(sealer.submit(_flush, layout, unflushed))
                    unflushed, unflushed_samples = [], 0
            if pending is not None:
                pending.result()  # manifests go down in order; a failed seal stops the run
            flushes = _check_done(flushes)
            elapsed = time.perf_counter() - t0
            pending = sealer.submit(
                _seal_chunk, req, layout, done, start, end, elapsed, entries, shards, unflushed
            )
            start = end
        if pending is not None:
            pending.result()
        _check_done(flushes)  # all done: they ran before the last seal
    finally:
        sealer.shutdown(wait=True)
    bar.close()
    if req.format == "shards":
        from generator.dataformat.shard_plan import remove_shards_from

        remove_shards_from(layout, req.n)  # left by a crashed run that aimed for a larger --n
