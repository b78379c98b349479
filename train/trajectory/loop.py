"""One training run: data, model, AdamW with warmup and cosine decay, epochs, checkpoints, test.

Repeatability: the model is initialised from ``seed``; each epoch's order comes
from a sampler seeded by ``(seed, epoch)`` and data-loading workers from a
generator seeded the same way; the global RNG states travel in the checkpoint.
So a run resumed from ``last.pt`` retraces the run that was never stopped.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from generator.dataformat.loader import make_loader
from generator.dataformat.metadata import dataset_identity
from train.checkpoint import (
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from train.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    broadcast_flag,
    set_threads,
)
from train.run_folder import BEST, LAST, TENSORBOARD, RunFolder, named_failures
from train.summary import epochs_with_numbers, is_number
from train.trajectory.config import TrainConfig, TrainConfigError
from train.trajectory.evaluate import FutureScale, evaluate, shown, task_loss
from train.trajectory.inputs import InputPipeline

# What results.json sums over the epoch records of metrics.jsonl (a resume keeps those it finds).
RESULT_NUMBERS = ("train_samples", "train_seconds")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped before saving anything from that epoch."""


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to the peak, then half a cosine down to ``min_ratio`` of it.

    SGDR's cosine annealing (Loshchilov & Hutter, 2017) without restarts, after
    a linear warmup (Goyal et al., 2017, "Accurate, Large Minibatch SGD").
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def improves_on(val: dict, best: dict | None) -> bool:
    """Is this epoch's validation (``val``) better than the best so far (``best``, ``val_``-keyed)?

    The lower validation loss (the training objective: class, future position and any
    auxiliary term) wins, not the higher accuracy: on the 10-epoch benchmark the slowfast's
    accuracy peaked at 98.5% in epoch 6 with a future RMSE of 6.0% of the scene, which fell
    to 5.0% by epoch 10 at 98.0%. An empty split's loss (None) ranks nothing, so each
    epoch replaces the best and the last one is tested.
    """
    if best is None or val["loss"] is None or best["val_loss"] is None:
        return True
    return val["loss"] < best["val_loss"]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases, norms and embeddings (1-D tensors) are not decayed."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or cfg.precision == "fp32":
        return None
    return torch.bfloat16 if cfg.precision == "bf16" else torch.float16


def datasets(cfg: TrainConfig, meta: dict) -> tuple:
    """Train, val and test datasets: from a folder, or rendered on the fly (``--render``)."""
    kw = {"frame_stride": cfg.frame_stride, "normalize": False}
    if cfg.render is not None:
        from generator.config import GeneratorConfig
        from generator.pipeline.stream import RenderedTrajectoryDataset

        gen = GeneratorConfig.model_validate(meta["config"])
        kw.update(
            epoch_samples=cfg.epoch_samples,
            epochs=cfg.epochs,
            val_samples=cfg.eval_samples,
            test_samples=cfg.eval_samples,
        )
        return tuple(
            RenderedTrajectoryDataset(
                gen, cfg.render_seed, split, augment=cfg.augment and split == "train", **kw
            )
            for split in ("train", "val", "test")
        )
    from generator.dataformat.dataset import TrajectoryDataset

    kw["split_seed"] = cfg.split_seed
    return tuple(
        TrajectoryDataset(cfg.data, split, augment=cfg.augment and split == "train", **kw)
        for split in ("train", "val", "test")
    )


def training_inputs(train_ds, meta: dict) -> dict[str, Any]:
    """What evaluating the weights on other data needs (``python -m train.evaluate``): the
    input statistics, scene box, classes and clip shape, and the data's seed and config."""
    return {
        "mean": train_ds.mean,
        "std": train_ds.std,
        "scene_bounds": train_ds.scene_bounds,
        "classes": list(meta["classes"]),
        "video_shape": [int(n) for n in meta["video_shape"]],
        "seed": meta.get("seed"),
        "generator_config": meta.get("config"),
    }


class Run:
    """The state of one run on one process; ``fit`` trains and tests it."""

    def __init__(
        self, cfg: TrainConfig, ctx: DistContext, meta: dict, resume: dict | None = None
    ) -> None:
        if cfg.threads:
            set_threads(cfg.threads)
        else:  # recorded: config.yaml says what a bit-for-bit repeat (or a resume) needs
            cfg = cfg.model_copy(update={"threads": torch.get_num_threads()})
        self.cfg, self.ctx, self.meta = cfg, ctx, meta
        self.folder = RunFolder(cfg.out_dir)
        self.train_ds, self.val_ds, self.test_ds = datasets(cfg, meta)
        self.scale = FutureScale(self.train_ds.scene_bounds)
        self.num_classes = len(meta["classes"])
        self.inputs = InputPipeline(
            normalize=self.train_ds.normalize_batch,
            subtract_background=cfg.subtract_background,
            position_channels=cfg.position_channels,
            downsample=cfg.downsample,
        )

        torch.manual_seed(cfg.seed)
        self.model = cfg.build_model(len(self.train_ds.cameras), self.num_classes).to(ctx.device)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.optimizer = make_optimizer(self.model, cfg)
        self.sampler = DistributedSampler(
            self.train_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed
        )
        self.steps_per_epoch = math.ceil(len(self.sampler) / cfg.batch_size)
        total = cfg.epochs * self.steps_per_epoch
        warmup = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, warmup, total, cfg.min_lr_ratio)
        )
        self.amp_dtype = autocast_dtype(cfg, ctx.device)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.amp_dtype == torch.float16)
        self.start_epoch, self.best, self.elapsed = 1, None, 0.0
        if resume is not None:
            self._load(resume)

        # Evaluation runs the model itself, not DDP: DDP's forward is a collective (it
        # broadcasts rank 0's buffers), which a rank with no batch of a split never joined.
        self.eval_net = self._compiled(self.model)
        self.net = self.eval_net
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            self.net = self._compiled(ddp)

    def _compiled(self, net: nn.Module) -> nn.Module:
        return torch.compile(net) if self.cfg.compile else net

    # ---------------------------------------------------------- checkpoints

    def _load(self, state: dict) -> None:
        steps, epochs = state["scheduler"].get("last_epoch"), int(state["epoch"])
        if steps != epochs * self.steps_per_epoch:  # from before world_size was recorded
            raise TrainConfigError(
                f"--resume: {self.cfg.out_dir / LAST} took {steps} steps in {epochs} epoch(s), "
                f"where this job's {self.ctx.world_size} process(es) take {self.steps_per_epoch} "
                "an epoch: it was trained by another process count (its checkpoint does not "
                "say which); resume it with that count, or start a new run folder"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best = state.get("best")
        self.elapsed = float(state.get("elapsed_seconds", 0.0))

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "rng": rng_state(),
            "config": self.cfg.model_dump(mode="json"),
            "best": self.best,
            "elapsed_seconds": self.elapsed,
            "inputs": training_inputs(self.train_ds, self.meta),
            "world_size": self.ctx.world_size,
        }

    # ---------------------------------------------------------- loops

    def _loader(self, ds, batch_size: int, sampler, **options) -> DataLoader:
        """A loader for one pass (``make_loader``: videos in recycled slots of its own).

        Safe because every batch is used before the next is taken (moved to the device and
        normalised in ``_train_step`` and ``evaluate``), and none is kept after its step.
        """
        return make_loader(
            ds,
            batch_size,
            sampler=sampler,
            num_workers=self.cfg.workers,
            persistent_workers=False,
            pin_memory=self.ctx.device.type == "cuda",
            **options,
        )

    def _eval_loader(self, ds) -> DataLoader:
        """This rank's share of a split, in index order (every world_size-th item)."""
        shard = range(self.ctx.rank, len(ds), self.ctx.world_size)
        return self._loader(ds, self.cfg.batch_size * 2, shard)

    def _evaluate(self, ds) -> dict:
        """Metrics of a split over all ranks, each scoring its shard with rank 0's buffers
        (BatchNorm's running statistics: each rank's last training step moved its own)."""
        broadcast_buffers(self.ctx, self.model)
        return evaluate(
            self.eval_net,
            self._eval_loader(ds),
            self.scale,
            self.ctx,
            self.num_classes,
            self.cfg.future_weight,
            self.cfg.smooth_l1_beta,
            self.amp_dtype,
            self.inputs,
            self.cfg.trajectory_weight,
        )

    def _train_loader(self, epoch: int) -> DataLoader:
        """This epoch's batches: the sampler's order and the workers' generator are seeded by
        ``(seed, epoch)``, so a resumed run sees the batches the unstopped run saw."""
        cfg = self.cfg
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_ds, "set_epoch"):  # rendered on the fly: fresh samples
            self.train_ds.set_epoch(epoch)
        return self._loader(
            self.train_ds,
            cfg.batch_size,
            self.sampler,
            generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch),
        )

    def _train_epoch(self, epoch: int) -> dict:
        """One pass over the training split; returns its loss, accuracy and speed over all ranks."""
        cfg, ctx = self.cfg, self.ctx
        loader = self._train_loader(epoch)
        self.net.train()
        show = ctx.is_main and not cfg.quiet and sys.stderr.isatty()
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not show, leave=False)
        sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
        start = time.perf_counter()
        for step, batch in enumerate(bar):
            loss, logits, labels = self._train_step(epoch, step, batch)
            n = len(labels)
            sums += torch.tensor(
                [loss.item() * n, (logits.argmax(1) == labels).sum().item(), n],
                dtype=torch.float64,
            )
            if show:
                seconds = time.perf_counter() - start
                bar.set_postfix(
                    loss=f"{sums[0].item() / sums[2].item():.4f}",
                    samples_s=f"{sums[2].item() * ctx.world_size / seconds:.1f}",
                )
        seconds = time.perf_counter() - start
        sums = all_reduce_sum(ctx, sums)
        return {
            "train_loss": sums[0].item() / max(sums[2].item(), 1),
            "train_accuracy": sums[1].item() / max(sums[2].item(), 1),
            "train_samples": int(sums[2].item()),
            "train_seconds": seconds,
            "train_samples_per_second": sums[2].item() / max(seconds, 1e-9),
        }

    def _train_step(
        self, epoch: int, step: int, batch: dict
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward, loss, backward, clipped optimiser and scheduler step; stops every rank at
        once on a non-finite loss (or, without a grad scaler, gradient norm) before stepping.
        Returns the loss, the logits and the labels."""
        cfg, ctx = self.cfg, self.ctx
        video = self.inputs(batch["video"].to(ctx.device, non_blocking=True))
        labels = batch["label"].to(ctx.device, non_blocking=True)
        future = self.scale.normalise(batch["future_position"].to(ctx.device))
        positions = (
            self.scale.normalise(batch["positions"].to(ctx.device))
            if cfg.trajectory_weight
            else None
        )
        with torch.autocast(
            ctx.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            out = self.net(video)
        loss = task_loss(
            out,
            labels,
            future,
            cfg.future_weight,
            cfg.smooth_l1_beta,
            positions,
            cfg.trajectory_weight,
        )
        if broadcast_flag(ctx, not bool(torch.isfinite(loss))):
            raise NonFiniteLossError(self._nonfinite_message(epoch, step, loss))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if not self.scaler.is_enabled() and not bool(torch.isfinite(norm)):
            raise NonFiniteLossError(self._nonfinite_message(epoch, step, norm, "gradient norm"))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss, out["logits"], labels

    def _nonfinite_message(
        self, epoch: int, step: int, value: torch.Tensor, what: str = "loss"
    ) -> str:
        return self._stopped(
            epoch, f"non-finite {what} ({value.item()}) at epoch {epoch}, step {step + 1}"
        )

    def _stopped(self, epoch: int, why: str) -> str:
        """The line of a run stopped in ``epoch`` for ``why``, before that epoch is saved."""
        kept = self.cfg.out_dir / LAST
        if self.start_epoch > 1 or epoch > 1:
            keep = f"{kept} keeps epoch {epoch - 1}"
        else:
            keep = "no checkpoint was written yet"
        return f"{why}: stopped; {keep}; lower --lr or check the data"

    def _log_epoch(self, record: dict) -> None:
        self.folder.append_metrics(record)
        tb = self.folder.tensorboard(purge_step=self.start_epoch)
        with named_failures(self.folder.root / TENSORBOARD):
            e = record["epoch"]
            tb.add_scalar("lr", record["lr"], e)
            for key in ("loss", "accuracy"):
                tb.add_scalar(f"train/{key}", record[f"train_{key}"], e)
            for key in ("loss", "accuracy", "future_rmse"):
                if record[f"val_{key}"] is not None:
                    tb.add_scalar(f"val/{key}", record[f"val_{key}"], e)
            tb.add_scalar("train/samples_per_second", record["train_samples_per_second"], e)
            for c, acc in enumerate(record["val_per_class_accuracy"]):
                if acc is not None:
                    tb.add_scalar(f"val_class/{self.meta['classes'][c]}", acc, e)
            tb.flush()

    def fit(self, on_epoch_end: Callable[[int], None] | None = None) -> dict:
        """Train the remaining epochs, then test the best epoch's weights; returns results."""
        cfg, ctx = self.cfg, self.ctx
        if ctx.is_main:
            self._prepare_folder()
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            lr = self.optimizer.param_groups[0]["lr"]
            epoch_start = time.perf_counter()
            train = self._train_epoch(epoch)
            val = self._evaluate(self.val_ds)
            if val["nonfinite_clips"]:  # weights gone to NaN or overflow: nothing to keep
                why = f"non-finite outputs on {val['nonfinite_clips']} of {val['samples']} validation clips at epoch {epoch}"
                raise NonFiniteLossError(self._stopped(epoch, why))
            self.elapsed += time.perf_counter() - epoch_start
            record = {"kind": "epoch", "epoch": epoch, "lr": lr, **train}
            record.update({f"val_{k}": v for k, v in val.items()})
            record["epoch_seconds"] = time.perf_counter() - epoch_start
            improved = improves_on(val, self.best)
            if improved:
                self.best = {"epoch": epoch, **{f"val_{k}": v for k, v in val.items()}}
            if ctx.is_main:
                self._save_epoch(record, improved)
            barrier(ctx)
            if on_epoch_end is not None:
                on_epoch_end(epoch)
        return self._finish()

    def _prepare_folder(self) -> None:
        """Rank 0: the run folder with its config and splits; on a resume, the metrics records
        of epochs after the checkpoint are dropped, as those epochs will be trained again."""
        self.folder.create()
        self.folder.write_config(self.cfg.model_dump(mode="json"))
        self.folder.write_splits(self.train_ds.splits)
        self.folder.keep_epochs_up_to(self.start_epoch - 1)

    def _save_epoch(self, record: dict, improved: bool) -> None:
        """Rank 0: ``last.pt`` (and ``best.pt`` when the epoch improved), then the metrics,
        TensorBoard and the epoch's line: a checkpoint is never behind the metrics it logs."""
        cfg, epoch = self.cfg, record["epoch"]
        state = self._state(epoch)
        save_checkpoint(cfg.out_dir / LAST, state)
        if improved:
            save_checkpoint(cfg.out_dir / BEST, state)
        self._log_epoch(record)
        if not cfg.quiet:
            print(
                f"epoch {epoch}/{cfg.epochs}: loss {record['train_loss']:.4f} "
                f"val acc {shown(record['val_accuracy'])} rmse {shown(record['val_future_rmse'])} "
                f"({record['train_samples_per_second']:.1f} samples/s)",
                flush=True,
            )

    def _finish(self) -> dict:
        """Test the best checkpoint's weights; write the test record and ``results.json``."""
        cfg, ctx = self.cfg, self.ctx
        best_state = load_checkpoint(cfg.out_dir / BEST)
        self.model.load_state_dict(best_state["model"])
        test = self._evaluate(self.test_ds)
        results: dict[str, Any] = {}
        if ctx.is_main:
            records = self.folder.epoch_records()
            self.folder.append_metrics(
                {
                    "kind": "test",
                    "epoch": self.best["epoch"],
                    **{f"test_{k}": v for k, v in test.items()},
                }
            )
            results = self._results(records, test)
            self.folder.write_results(results)
            self.folder.close()
        barrier(ctx)
        return results

    def _results(self, records: list[dict], test: dict) -> dict:
        extent = float(self.meta.get("scene_extent") or 0.0) or None
        records = epochs_with_numbers(self.folder.metrics_path, records, RESULT_NUMBERS)
        samples = sum(r["train_samples"] for r in records)
        seconds = sum(r["train_seconds"] for r in records)
        final = records[-1] if records and records[-1]["epoch"] == self.cfg.epochs else {}
        final_accuracy = final.get("val_accuracy")  # None: damaged, or an empty split
        best = self.best

        def fraction(rmse: float | None) -> float | None:
            return rmse / extent if extent and rmse is not None else None

        results = {
            "extractor": self.cfg.extractor,
            "preset": self.cfg.preset,
            "epochs": self.cfg.epochs,
            "parameters": self.parameters,
            "best_epoch": best["epoch"],
            **{k: v for k, v in best.items() if k.startswith("val_")},
            "final_val_accuracy": final_accuracy if is_number(final_accuracy) else None,
            **{f"test_{k}": v for k, v in test.items()},
            "scene_extent": extent,
            "val_future_rmse_fraction": fraction(best["val_future_rmse"]),
            "test_future_rmse_fraction": fraction(test["future_rmse"]),
            "train_samples_per_second": samples / seconds if seconds else None,
            "wall_time_seconds": self.elapsed,
            "classes": self.meta["classes"],
            "split_sizes": {s: len(v) for s, v in self.train_ds.splits.items()},
            # Rendered: the stream's identity too, as a config edited at one path is other data.
            "data": self.cfg.source
            if self.cfg.data is not None
            else f"{self.cfg.source}, stream {dataset_identity(self.meta)}",
            # What the folder held (a path names other data once made again): None if rendered.
            "dataset": dataset_identity(self.meta) if self.cfg.data is not None else None,
            "split_seed": self.cfg.split_seed if self.cfg.data is not None else None,
            "device": self.ctx.device.type,
            "world_size": self.ctx.world_size,
        }
        return results
