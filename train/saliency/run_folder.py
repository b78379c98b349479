"""A saliency run folder, laid out and written by the trainer's own modules.

``train.run_folder.RunFolder`` writes ``config.yaml``, ``splits.json``,
``metrics.jsonl`` (one ``kind: epoch`` record per epoch, then a ``kind: test`` one),
``results.json`` and ``tensorboard/``; ``train.checkpoint`` writes and checks
``last.pt`` / ``best.pt``. All go through ``generator.dataformat.writer`` (temporary name, fsync,
rename). This module adds what a saliency run needs on top: refusing to overwrite a
run, and refusing to resume one with a different config or process count.
"""

from __future__ import annotations

from typing import Any

from train.checkpoint import load_checkpoint, save_checkpoint
from train.distributed import process_count_change
from train.run_folder import BEST, CONFIG, LAST, holds_checkpoint
from train.run_folder import RunFolder as TrainerRunFolder
from train.saliency.config import SaliencyConfig, resume_conflict


class RunFolderError(ValueError):
    """The folder cannot be used as asked (exists without --resume, or a different config)."""


class SaliencyRunFolder(TrainerRunFolder):
    @property
    def last(self):
        return self.root / LAST

    @property
    def best(self):
        return self.root / BEST

    def prepare(
        self, cfg: SaliencyConfig, resume: bool, *, create: bool = True
    ) -> dict[str, Any] | None:
        """Create the folder or check it for resuming; return the last checkpoint if resuming.

        ``create=False`` only checks (the ranks of a ``torchrun`` job other than 0).
        Raises RunFolderError, or train.checkpoint.CheckpointError for a damaged last.pt.
        """
        if holds_checkpoint(self.last) and not resume:
            raise RunFolderError(
                f"{self.root} already holds a run; add --resume or choose another --out"
            )
        if resume and holds_checkpoint(self.last):
            saved = self.root / CONFIG
            if saved.exists() and (why := resume_conflict(saved, cfg)):
                raise RunFolderError(why)
            state = load_checkpoint(self.last)
            if why := process_count_change(state, self.last):
                raise RunFolderError(why)
            if cfg.train.epochs < state["epoch"]:  # results would say fewer than they hold
                raise RunFolderError(
                    f"--epochs {cfg.train.epochs} is fewer than the {state['epoch']} epochs "
                    f"{self.last} already finished"
                )
            return state
        if create:
            self.create()
        return None

    def save(self, state: dict[str, Any], *, best: bool) -> None:
        save_checkpoint(self.last, state)
        if best:
            save_checkpoint(self.best, state)
