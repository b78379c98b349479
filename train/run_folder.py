"""What a run folder holds and how each file is written (rank 0 only, atomically).

    runs/NAME/config.yaml     the validated config
    runs/NAME/splits.json     the train/val/test indices (lists, or {start, stop} ranges)
    runs/NAME/metrics.jsonl   one line per epoch, then one for the test split
    runs/NAME/last.pt         checkpoint after the latest epoch
    runs/NAME/best.pt         checkpoint of the best validation epoch
    runs/NAME/tensorboard/    TensorBoard events
    runs/NAME/results.json    the summary train.trajectory.parallel reads
    runs/NAME/.lock           held by the one process writing the folder

TensorBoard writes its own event files (appending, not atomically); everything
else goes through :mod:`generator.dataformat.writer`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from train.torchrun import env_rank
from trajkit.files import json_text, write_atomic, write_json_atomic
from trajkit.lock import LockedError, locked_folder

CONFIG = "config.yaml"
SPLITS = "splits.json"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
TENSORBOARD = "tensorboard"
LOCK = ".lock"
LAST = "last.pt"  # the checkpoint a --resume continues from
BEST = "best.pt"  # the best epoch's, which the final test scores


def holds_checkpoint(path: Path) -> bool:
    """Whether anything is at ``path``, a broken or looping symbolic link included: ``exists``
    says no for those, and a ``--resume`` then started a new run over a checkpoint it could
    not read instead of saying why it cannot."""
    return os.path.lexists(path)


@contextmanager
def named_failures(path: Path) -> Iterator[None]:
    """An OSError raised inside without a file name is raised again naming ``path``: a full
    disk fails a write with none (TensorBoard's writer thread hands its error to the next
    write or flush), and the trainer's one error line (``failed_io``) must say where."""
    try:
        yield
    except OSError as err:
        if err.filename:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err


def what_is_kept(out: str | Path | None) -> str:
    """What a stopped run leaves to continue from, for the trainers' stop and error lines: a
    stop before the first epoch ended left no last.pt, and pointing at one sent users after a
    file that is not there. ``out`` is None while the config that names it is being read."""
    if out is None:
        return "no run had started, nothing was written"
    if (Path(out) / LAST).is_file():
        return f"{Path(out) / LAST} holds the last finished epoch, continue with --resume"
    return f"no epoch finished, {out} holds no checkpoint: run the same command again"


def nothing_to_do(out: str | Path, done: int, asked: int) -> str:
    """What a ``--resume`` of a run that already holds the epochs it asks for says, in every
    trainer: it trains, tests and rewrites nothing."""
    out = Path(out)
    return (
        f"{out / LAST} already holds {done} epochs (the config asks for {asked}): nothing to "
        f"do, the results are in {out / RESULTS}; raise --epochs to train on"
    )


class RunFolderBusy(RuntimeError):
    """Another process is writing the run folder, or it cannot be created; one line."""


@contextmanager
def writing_to(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` while this process trains into ``root`` (made if missing), from
    before it reads ``last.pt`` to its last write: a second command on the same --out is
    refused instead of interleaving its epochs with ours (or, starting over, deleting them).
    Only the writing process locks (rank 0 under torchrun). A folder made here that holds
    nothing but the lock when we leave is removed again."""
    if env_rank() != 0:
        yield
        return
    root = Path(root)
    held = ExitStack()
    try:  # a folder made here goes again if nothing is written: a refused config, ...
        held.enter_context(locked_folder(root, LOCK))
    except LockedError as e:
        raise RunFolderBusy(str(e)) from None
    except OSError as e:
        raise RunFolderBusy(f"cannot create or lock {root}: {e.strerror or e}") from None
    with held:
        yield


class RunFolder:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.metrics_path = self.root / METRICS
        self._writer = None

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: dict[str, Any]) -> None:
        text = yaml.safe_dump(config, sort_keys=False)
        write_atomic(self.root / CONFIG, text.encode())

    def write_splits(self, splits: dict[str, Sequence[int]]) -> None:
        """Each split's indices as a list, or as ``{"start": a, "stop": b}`` (a half-open
        range, as Python's) when they are one: a rendered run's training stream."""
        write_json_atomic(self.root / SPLITS, {k: _indices_json(v) for k, v in splits.items()})

    def read_metrics(self) -> list[dict]:
        return read_metrics(self.root)

    def keep_epochs_up_to(self, epoch: int) -> None:
        """On resume: drop records written after the checkpoint, so the log matches an unbroken run."""
        kept = [r for r in self.epoch_records() if r["epoch"] <= epoch]
        self._write_records(kept)

    def epoch_records(self) -> list[dict]:
        """The log's per-epoch records (a hand-made one without a whole-number epoch is not)."""
        return [
            r
            for r in self.read_metrics()
            if r.get("kind") == "epoch" and type(r.get("epoch")) is int
        ]

    def append_metrics(self, record: dict[str, Any]) -> None:
        self._write_records([*self.read_metrics(), record])

    def _write_records(self, records: list[dict]) -> None:
        text = "".join(json_text(r, sort_keys=True) + "\n" for r in records)
        write_atomic(self.metrics_path, text.encode())

    def write_results(self, results: dict[str, Any]) -> None:
        write_json_atomic(self.root / RESULTS, results)

    def tensorboard(self, purge_step: int | None = None):
        """A SummaryWriter; ``purge_step`` hides events a resumed run is about to write again."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            quiet_tensorboard_thread_errors()
            with named_failures(self.root / TENSORBOARD):  # it writes its first event now
                self._writer = SummaryWriter(self.root / TENSORBOARD, purge_step=purge_step)
        return self._writer

    def close(self) -> None:
        """Close the TensorBoard writer, whose last events are written now."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with named_failures(self.root / TENSORBOARD):
                writer.close()


def quiet_tensorboard_thread_errors() -> None:
    """TensorBoard's writer thread hands a failed write (a full disk) to the main thread,
    which raises it at its next write, then raises it again itself: Python printed that
    thread's traceback after the trainer's one error line. This hook keeps that copy quiet."""
    previous = threading.excepthook
    if getattr(previous, "quiets_tensorboard", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        writer_thread = type(args.thread).__name__ == "_AsyncWriterThread"
        if not (writer_thread and issubclass(args.exc_type, OSError)):
            previous(args)

    hook.quiets_tensorboard = True
    threading.excepthook = hook


def _indices_json(indices: Sequence[int]) -> list[int] | dict[str, int]:
    if isinstance(indices, range) and indices.step == 1:
        return {"start": indices.start, "stop": indices.stop}
    return list(map(int, indices))


def appendable_metrics(root: Path) -> Path:
    """``root/metrics.jsonl`` for a writer that appends to it (``train.jepa``'s log). Something
    other than a regular file there (a FIFO, whose open for appending waits for a reader for
    ever) holds no records for ``read_metrics``, and the other trainers' atomic writes replace
    it: so it is replaced here too, by an empty log, before the first record."""
    path = Path(root) / METRICS
    if path.exists() and not path.is_file():
        write_atomic(path, b"")
    return path


def read_metrics(root: Path) -> list[dict]:
    """Records of ``root/metrics.jsonl`` (empty if none, or not a regular file: a FIFO would
    block the read); a line that is not a JSON object (cut off by a full disk, edited by
    hand) is skipped."""
    path = Path(root) / METRICS
    if not path.is_file():
        return []
    records = []
    for line in path.read_bytes().decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_results(root: Path) -> dict | None:
    try:
        return json.loads((Path(root) / RESULTS).read_text())
    except (OSError, json.JSONDecodeError):
        return None
