"""One saliency training run: data, centre bias, model, epochs, checkpoints, results.

Resuming equals not stopping: the model is initialised from ``train.seed``, each
epoch's shuffle from ``(train.seed, epoch)``, and ``last.pt`` holds model, optimiser
and progress, so epochs after a resume see exactly what they would have seen.

Under ``torchrun`` the run trains with DistributedDataParallel (``train.distributed``:
gloo on the CPU, NCCL on GPUs): each rank takes its shard of every epoch's shuffle,
``train.batch_size`` per rank; rank 0 alone evaluates and writes the run folder.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from train.checkpoint import load_checkpoint
from train.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_flag,
    set_threads,
    setup,
    teardown,
)
from train.run_folder import RESULTS, TENSORBOARD, named_failures, writing_to
from train.saliency.batching import GridDataset, collate
from train.saliency.centre_bias import fit_centre_bias
from train.saliency.config import ConfigError, SaliencyConfig
from train.saliency.evaluate import evaluate
from train.saliency.layouts import open_source
from train.saliency.losses import saliency_loss
from train.saliency.model import SaliencyNet
from train.saliency.run_folder import SaliencyRunFolder
from train.saliency.splits import split_indices
from train.summary import warn_once


class NoBestEpoch(Exception):
    """No epoch had a finite validation information gain (a model gone NaN, a validation set
    that cannot be scored): no epoch ranks above another, so there is no best one to test."""


class NonFiniteLoss(RuntimeError):
    """The training loss went NaN or infinite: every later step would train a NaN model, as
    the trajectory and JEPA trainers know, so the run stops with its checkpoints as they are."""


@dataclass
class RunData:
    dataset: str
    layout: str
    train: GridDataset
    val: GridDataset
    test: GridDataset
    splits: dict[str, list[int]]


def _cap(indices: list[int], cap: int | None) -> list[int]:
    """Evenly spaced picks, so a cap keeps every category (indices are category-sorted)."""
    if cap is None or len(indices) <= cap:
        return indices
    return [indices[int(i)] for i in np.linspace(0, len(indices) - 1, cap).round()]


def build_data(cfg: SaliencyConfig, *, quiet: bool = True) -> RunData:
    d = cfg.data
    src = open_source(d.path)
    parts = split_indices(src.refs, d.val_fraction, d.test_fraction, d.split_seed)
    caps = {"train": d.max_train_stimuli, "val": d.max_val_stimuli, "test": d.max_val_stimuli}
    kept = {k: _cap(v, caps[k]) for k, v in parts.items()}
    sets = {
        k: GridDataset(src, v, d.image_size, d.fit, desc=f"load {k}", quiet=quiet)
        for k, v in kept.items()
    }
    if len(sets["train"]) == 0 or len(sets["val"]) == 0:
        raise ConfigError(
            f"{d.path}: the train or val split has no stimuli with fixations "
            f"({len(sets['train'])} / {len(sets['val'])}); add data or raise val_fraction"
        )
    return RunData(src.dataset, src.layout, sets["train"], sets["val"], sets["test"], kept)


def run(
    cfg: SaliencyConfig,
    out: str | Path,
    *,
    resume: bool = False,
    quiet: bool = False,
    data: RunData | None = None,
    device: str = "cpu",
) -> dict:
    """Train ``cfg`` into run folder ``out``; return the results written to results.json.

    ``device`` is ``cpu``, ``cuda`` or ``auto``; under ``torchrun`` every rank calls
    this, and ranks other than 0 return an empty dict.
    """
    ctx = setup(device)
    try:
        with writing_to(Path(out)):
            return _train(cfg, SaliencyRunFolder(out), ctx, resume, quiet, data)
    finally:
        teardown(ctx)


@dataclass
class Progress:
    """What a resume must restore besides the weights: where to start, the best epoch so
    far, the epoch records, and the centre bias fitted once on the training split."""

    start: int
    best: float
    best_epoch: int
    history: list[dict]
    cb_log: np.ndarray
    bandwidth: float


def _train(cfg, folder, ctx: DistContext, resume, quiet, data) -> dict:  # noqa: ANN001
    state = folder.prepare(cfg, resume, create=ctx.is_main)
    set_threads(cfg.train.threads)
    quiet = quiet or not sys.stderr.isatty() or not ctx.is_main
    data = data or build_data(cfg, quiet=quiet)
    run = SaliencyRun(cfg, folder, ctx, data, quiet)
    progress = run.start_or_restore(state)
    net = DistributedDataParallel(run.model) if ctx.distributed else run.model
    writer = None
    if ctx.is_main:
        folder.write_config(cfg.model_dump(mode="json"))
        folder.write_splits(data.splits)
        writer = folder.tensorboard(purge_step=progress.start + 1 if progress.start else None)
    sampler = (
        DistributedSampler(
            data.train, num_replicas=ctx.world_size, rank=ctx.rank, seed=cfg.train.seed
        )
        if ctx.distributed
        else None
    )
    speeds = []
    for epoch in range(progress.start, cfg.train.epochs):
        seen, sums, elapsed = run.train_epoch(net, sampler, epoch)
        speeds.append(seen / max(elapsed, 1e-9))
        if ctx.is_main:
            run.end_epoch(progress, writer, epoch, seen, sums)
        barrier(ctx)  # the other ranks wait while rank 0 evaluates and writes
    if not ctx.is_main:
        return {}
    return run.finish(progress, speeds)


class SaliencyRun:
    """One process's share of a run: config, run folder, data, the model and its optimiser,
    so that each step of ``_train`` is a method of its own."""

    def __init__(
        self,
        cfg: SaliencyConfig,
        folder: SaliencyRunFolder,
        ctx: DistContext,
        data: RunData,
        quiet: bool,
    ) -> None:
        self.cfg, self.folder, self.ctx, self.data, self.quiet = cfg, folder, ctx, data, quiet
        torch.manual_seed(cfg.train.seed)
        self.model = SaliencyNet(cfg.model.encoder, cfg.model.width, cfg.model.centre_bias_size)
        self.model.to(ctx.device)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )

    def start_or_restore(self, state: dict | None) -> Progress:
        """A fresh run fits the centre bias; a resumed one reloads weights, optimiser, centre
        bias and progress, and (rank 0) drops the records of epochs after the checkpoint."""
        if state is None:
            cb_log, bandwidth = fit_centre_bias(self.data.train.items, self.cfg.data.image_size)
            return Progress(0, -float("inf"), 0, [], cb_log, bandwidth)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        cb_log, bandwidth = state["centre_bias_log"].numpy(), state["centre_bias_bandwidth"]
        start, best, best_epoch = state["epoch"], state["best_info_gain"], state["best_epoch"]
        history = self.folder.epoch_records()
        if self.ctx.is_main:
            self.folder.keep_epochs_up_to(start)
            history = self.folder.epoch_records()
        return Progress(start, best, best_epoch, history, cb_log, bandwidth)

    def train_epoch(
        self, net: torch.nn.Module, sampler: DistributedSampler | None, epoch: int
    ) -> tuple[int, dict[str, float], float]:
        """One pass over this rank's share of the epoch's shuffle (seeded by the epoch);
        returns every rank's samples and summed losses, so the logged train loss is the whole
        epoch's, and this rank's seconds."""
        cfg, ctx = self.cfg, self.ctx
        if sampler is not None:
            sampler.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)
        loader = torch.utils.data.DataLoader(
            self.data.train,
            batch_size=cfg.train.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=gen,
            collate_fn=collate,
        )
        net.train()
        sums: dict[str, float] = {}
        t0, seen = time.perf_counter(), 0
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=self.quiet, leave=False
        )
        for step, batch in enumerate(bar):
            batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
            logp = net(batch["image"], batch["mask"])
            loss, parts = saliency_loss(logp, batch, cfg.entropy.weight, cfg.entropy.direction)
            if broadcast_flag(ctx, not bool(torch.isfinite(loss))):
                kept = (
                    f"{self.folder.last} keeps epoch {epoch}"
                    if epoch
                    else "no checkpoint was written yet"
                )
                raise NonFiniteLoss(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch + 1}, step "
                    f"{step + 1}: stopped; {kept}; lower train.lr or check the data"
                )
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            n = batch["image"].shape[0]
            seen += n
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v * n
        elapsed = time.perf_counter() - t0
        keys = sorted(sums)
        totals = all_reduce_sum(
            ctx, torch.tensor([seen] + [sums[k] for k in keys], dtype=torch.float64)
        )
        return int(totals[0]), dict(zip(keys, totals[1:].tolist(), strict=True)), elapsed

    def end_epoch(
        self,
        progress: Progress,
        writer,  # noqa: ANN001 (a SummaryWriter; tensorboard is imported lazily)
        epoch: int,
        seen: int,
        sums: dict[str, float],
    ) -> None:
        """Rank 0: evaluate on val, record the epoch, save ``last.pt`` (and ``best.pt`` on a
        better information gain), log to TensorBoard and print the epoch's line."""
        cfg = self.cfg
        val = evaluate(self.model, self.data.val.items, progress.cb_log, cfg.train.batch_size)
        record = {
            "kind": "epoch",
            "epoch": epoch + 1,
            "train_samples": seen,
            **{f"train_{k}": v / seen for k, v in sums.items()},
            **{f"val_{k}": v for k, v in val.items()},
        }
        progress.history.append(record)
        is_best = math.isfinite(val["info_gain"]) and val["info_gain"] > progress.best
        if is_best:
            progress.best, progress.best_epoch = val["info_gain"], epoch + 1
        self.folder.append_metrics(record)
        self.folder.save(self._state(progress, epoch), best=is_best)
        with named_failures(self.folder.root / TENSORBOARD):
            for k, v in record.items():
                if k not in ("epoch", "kind"):
                    writer.add_scalar(k.replace("_", "/", 1), v, epoch + 1)
            writer.flush()
        if not self.quiet:
            tqdm.write(
                f"epoch {epoch + 1}: train nll {record['train_nll']:.4f}  "
                f"val IG {val['info_gain']:+.4f} bit/fix  NSS {val['nss']:.3f}  "
                f"AUC {val['auc']:.3f}"
            )

    def _state(self, progress: Progress, epoch: int) -> dict:
        """The checkpoint after ``epoch`` (0-based): all a resume needs to retrace the run."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": {},  # constant learning rate; kept for train.checkpoint's format
            "config": self.cfg.model_dump(mode="json"),
            "epoch": epoch + 1,
            "best_info_gain": progress.best,
            "best_epoch": progress.best_epoch,
            "centre_bias_log": torch.from_numpy(progress.cb_log),
            "centre_bias_bandwidth": progress.bandwidth,
            "world_size": self.ctx.world_size,
        }

    def finish(self, progress: Progress, speeds: list[float]) -> dict:
        """Rank 0: test the best epoch's weights, then the test record and ``results.json``.
        With no finite validation score there is no best epoch: NoBestEpoch, rather than
        test and report the last one as if it had been chosen."""
        folder, ctx = self.folder, self.ctx
        folder.close()
        if progress.best_epoch == 0:
            raise NoBestEpoch(
                f"the validation information gain of {folder.root} was never finite (NaN or "
                f"infinite in all {self.cfg.train.epochs} epochs, see {folder.metrics_path}): "
                f"no epoch is best, so nothing was tested; {folder.last} holds the last epoch"
            )
        results = _results(self.cfg, self.data, folder, progress, speeds)
        results["world_size"] = ctx.world_size
        results["device"] = str(ctx.device)
        folder.append_metrics(
            {
                "kind": "test",
                "epoch": progress.best_epoch,
                **{f"test_{k}": v for k, v in results["test"].items()},
            }
        )
        folder.write_results(results)
        return results


def _results(
    cfg: SaliencyConfig,
    data: RunData,
    folder: SaliencyRunFolder,
    progress: Progress,
    speeds: list[float],
) -> dict:
    """``results.json``: the best epoch's validation numbers beside its weights' test ones.
    The epoch count (all of the config's are done) and the best information gain (the
    checkpoint's) are not read from the log, which may have been edited."""
    best_state = load_checkpoint(folder.best)
    model = SaliencyNet(cfg.model.encoder, cfg.model.width, cfg.model.centre_bias_size)
    model.load_state_dict(best_state["model"])
    return {
        "variant": cfg.name,
        "dataset": data.dataset,
        "layout": data.layout,
        "epochs": cfg.train.epochs,
        "best_epoch": progress.best_epoch,
        "val_info_gain": progress.best,
        "val": _best_val(folder, progress),
        "test": evaluate(model, data.test.items, progress.cb_log, cfg.train.batch_size),
        "entropy": cfg.entropy.model_dump(),
        "centre_bias_bandwidth": progress.bandwidth,
        "stimuli": {
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
            "skipped_without_fixations": data.train.skipped + data.val.skipped + data.test.skipped,
        },
        "train_samples_per_second": float(np.mean(speeds)) if speeds else None,
    }


def _best_val(folder: SaliencyRunFolder, progress: Progress) -> dict | None:
    """The best epoch's validation numbers, from its record in the log: the one of that
    epoch with the information gain the checkpoint holds. It was taken by position, so a
    record missing from the log or one added by hand gave another epoch's numbers or an
    IndexError; without it they are None, with one warning."""
    for record in reversed(progress.history):
        if record["epoch"] == progress.best_epoch and record.get("val_info_gain") == progress.best:
            return {k[4:]: v for k, v in record.items() if k.startswith("val_")}
    warn_once(
        f"{folder.metrics_path} holds no record of the best epoch, {progress.best_epoch}: "
        f"its validation numbers other than the information gain are left out of {RESULTS}"
    )
    return None
