"""Where a JEPA run writes what it measured: ``metrics.jsonl`` (one JSON object a line, the
record to trust) mirrored to TensorBoard scalars."""

from __future__ import annotations

from pathlib import Path

from train.run_folder import (
    METRICS,
    TENSORBOARD,
    appendable_metrics,
    named_failures,
    quiet_tensorboard_thread_errors,
    read_metrics,
)
from trajkit.files import json_text, write_atomic


class RunLog:
    """``purge_step``: the first step this run logs; TensorBoard hides what an earlier attempt
    logged from there on (steps logged after the checkpoint it resumes from, or every step of
    an attempt stopped before its first), which it showed twice beside this run's."""

    def __init__(self, folder: Path, enabled: bool = True, purge_step: int = 1) -> None:
        self.enabled = enabled
        # a FIFO at metrics.jsonl blocked the first write for ever: replaced, as other trainers do
        self.path = appendable_metrics(folder) if enabled else folder / METRICS
        self.tensorboard = folder / TENSORBOARD
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            quiet_tensorboard_thread_errors()
            with named_failures(self.tensorboard):  # it writes its first event now
                self.writer = SummaryWriter(str(self.tensorboard), purge_step=purge_step)

    def write(self, record: dict, step: int, tags: str = "") -> None:
        """Append ``record``, and show its numbers in TensorBoard at ``step`` under ``tags``
        (an epoch's record under ``epoch/``: its loss, the epoch's mean, was shown as a second
        point of the step loss at the same step). A full disk fails the write with no file
        name: it is added, so the error line says which file (a cut-off line is dropped by
        the next resume)."""
        if not self.enabled:
            return
        with named_failures(self.path), open(self.path, "a") as f:
            f.write(json_text(record, sort_keys=True) + "\n")
        with named_failures(self.tensorboard):
            for key, value in _flatten(record).items():
                if key in ("step", "epoch"):  # the x axis, not a measurement
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.writer.add_scalar(tags + key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            with named_failures(self.tensorboard):
                self.writer.close()


def keep_epochs_up_to(folder: Path, epoch: int) -> None:
    """At a run's start: drop the records of epochs the checkpoint does not cover (every record,
    with no checkpoint: an attempt stopped before its first ``last.pt`` left them), and a line
    that is no whole record (cut off by a stop, a full disk) as ``read_metrics`` does. A log
    with nothing to drop is not rewritten. A record from before records said their kind
    gets it, so one log never holds both (a reader of ``kind`` missed the older epochs)."""
    path = folder / METRICS
    if not path.is_file():  # a FIFO would block the comparison's read
        return
    kept = [
        {"kind": "step" if "step" in r else "epoch", **r}
        for r in read_metrics(folder)
        if _epoch(r) <= epoch
    ]
    text = "".join(json_text(r, sort_keys=True) + "\n" for r in kept).encode()
    if text != path.read_bytes():
        write_atomic(path, text)


def epoch_record(folder: Path, epoch: int) -> dict:
    """The record ``epoch`` ended with in ``folder``'s log (``{}`` if it lacks it): what a
    finished run's ``results.json`` holds, rebuilt if a stop came before that file."""
    ends = [r for r in read_metrics(folder) if r.get("epoch") == epoch and "step" not in r]
    return ends[-1] if ends else {}


def _epoch(record: dict) -> float:
    """A record's epoch; one without a number there (edited by hand) counts as past any."""
    epoch = record.get("epoch", 0)
    return epoch if type(epoch) in (int, float) else float("inf")


def _flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out
