"""``train.jepa --force``: start over in a folder that holds a run, without losing that run to a
new one that fails. The old run's files move to ``<out>/.replaced`` (renames: instant, no
space) and are deleted only once the new run has written its own ``last.pt``; if it ends
before (a typo in a path, a damaged image, Ctrl-C, a kill), the old run is put back, at once
or by the next command on the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from train.jepa.config import ConfigError
from train.run_folder import CONFIG, LAST, METRICS, RESULTS, TENSORBOARD, holds_checkpoint

SET_ASIDE = ".replaced"
RUN_FILES = (LAST, METRICS, RESULTS, CONFIG)
EVENTS = f"{TENSORBOARD}/events.out.tfevents.*"
EVALUATIONS = "eval_*.json"  # train.jepa.evaluate's results beside last.pt: the old run's scores


def run_files(out: Path) -> list[Path]:
    """What a run, and the evaluation of its ``last.pt``, write into ``out``; other files
    there are the user's and stay. An evaluation kept past ``--force`` named the new run's
    ``last.pt`` as the weights it scored."""
    found = [p for p in (out / n for n in RUN_FILES) if p.exists()]
    return found + sorted(out.glob(EVENTS)) + sorted(out.glob(EVALUATIONS))


def prepare_run_folder(out: Path, resume: bool, force: bool) -> str | None:
    """Refuse to overwrite a run unless asked to continue it or to start over (``force``,
    which sets it aside). Returns what it did to a folder an earlier ``--force`` start left,
    for the log, or None."""
    settled = settle(out)
    if resume or not holds_checkpoint(out / LAST):
        return settled
    if not force:
        raise ConfigError(
            f"{out} already holds a run (last.pt): pass --resume to continue it, --force to "
            "start over, or choose another --out"
        )
    aside = out / SET_ASIDE
    for path in run_files(out):
        kept = aside / path.relative_to(out)
        kept.parent.mkdir(parents=True, exist_ok=True)
        path.rename(kept)
    return settled


def settle(out: Path) -> str | None:
    """A set-aside run is dropped once the new run has its ``last.pt``, else put back (the
    new run's files, with no checkpoint, hold nothing to resume). Returns what it did."""
    aside = out / SET_ASIDE
    if not aside.is_dir():
        return None
    if (out / LAST).exists():
        shutil.rmtree(aside)
        return None
    for path in run_files(out):
        path.unlink()
    for kept in sorted(p for p in aside.rglob("*") if not p.is_dir()):
        path = out / kept.relative_to(aside)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept.rename(path)
    shutil.rmtree(aside)
    return f"put back the run in {out} that a --force start set aside and did not replace"
