"""``python -m train.jepa``: H-JEPA pretraining, one process or DDP under ``torchrun``.

Each epoch: sample masks and targets, step AdamW on the context encoder + predictor + heads,
move the target encoder by EMA; at the epoch's end log metrics (loss per level, schedules,
images/s, realised per-dataset counts, collapse watch) and write ``last.pt`` atomically.
``--resume`` reloads ``last.pt`` and runs the remaining epochs exactly as an uninterrupted run
would: every epoch's data order, augmentations and masks depend only on ``(seed, epoch)`` and
the schedules only on the step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from train.checkpoint import CheckpointError, save_checkpoint
from train.distributed import peer_stopped, process_count_change, set_threads
from train.jepa import start_over
from train.jepa.checkpoints import load_run_checkpoint, load_weights
from train.jepa.collapse import CollapseWatch
from train.jepa.config import (
    ConfigError,
    JepaConfig,
    add_override_arguments,
    apply_overrides,
    check_resume,
    check_sampling,
    parse_config,
)
from train.jepa.config import load_config as read_yaml
from train.jepa.data_pipeline import build_pretrain_data, epoch_loader
from train.jepa.datasets import DatasetMissing
from train.jepa.hierarchy import covered_cells
from train.jepa.mixture import MixtureDataset
from train.jepa.model import HJepa, ema_update, forward_target, make_target_encoder
from train.jepa.run_log import RunLog, epoch_record, keep_epochs_up_to
from train.jepa.schedules import (
    apply_schedules,
    cosine_weight_decay,
    ema_momentum,
    param_groups,
    warmup_cosine_lr,
)
from train.run_folder import (
    LAST,
    RESULTS,
    RunFolderBusy,
    holds_checkpoint,
    nothing_to_do,
    read_results,
    what_is_kept,
    writing_to,
)
from trajkit.cli import (
    OneLineParser,
    caused_by_interrupt,
    entry_point,
    exit_on_interrupt,
    failed_io,
    one_line,
    out_of_memory,
    quiet_on_closed_output,
)
from trajkit.files import write_atomic, write_json_atomic
from trajkit.worker_deaths import WorkerKnobs, worker_death, worker_lost


def _log(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(msg, file=sys.stderr, flush=True)


def setup_distributed() -> tuple[int, int, torch.device]:
    """Rank, world size and device; initialises the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def unreachable_levels(cfg: JepaConfig, collator, batches: int = 20) -> list[int]:  # noqa: ANN001
    """Levels whose cells no sampled target block ever covers whole (their loss is always 0)."""
    g = torch.Generator().manual_seed(cfg.run.seed)
    seen = [0] * len(cfg.model.levels)
    for _ in range(batches):
        _, targets = collator.sample_masks(4, g)
        for k in range(1, len(seen)):
            seen[k] += int(covered_cells(targets, cfg.grid_size, 2**k)[0].sum())
    return [k for k in range(1, len(seen)) if seen[k] == 0]


def train(cfg: JepaConfig, resume: bool = False, quiet: bool = False, force: bool = False) -> dict:
    """Run (or finish) the pretraining described by ``cfg``; returns the results dict.

    Without ``resume`` a folder holding a run is refused, unless ``force`` starts over (the
    old run is set aside until the new one writes ``last.pt``: ``train.jepa.start_over``).
    """
    if not resume:  # refused before a --force start sets the old run aside
        check_sampling(cfg)
    rank, world, device = setup_distributed()
    if cfg.run.threads is not None:
        set_threads(cfg.run.threads)
    out = Path(cfg.run.out)
    with writing_to(out):  # held from the check for last.pt to the last write
        if rank == 0:  # writing_to made the folder
            if settled := start_over.prepare_run_folder(out, resume, force):
                _log(settled, rank)
        try:
            ckpt = resume_point(cfg, out / LAST, rank) if resume else None
            if ckpt is not None and ckpt["epoch"] >= cfg.optim.epochs:
                _log(nothing_to_do(out, ckpt["epoch"], cfg.optim.epochs), rank)
                end_distributed(world)
                return finished(cfg, out, ckpt["epoch"], rank)
            data = build_pretrain_data(cfg, rank, world)
            if ckpt is not None:
                check_dataset_sizes(ckpt, data[0], out / LAST)
            steps_per_epoch = batches_per_epoch(cfg, len(data[1]))
            for k in unreachable_levels(cfg, data[2]):
                _log(
                    f"warning: level {k} ({2**k}x{2**k} cells) is never fully covered by a target "
                    "block; raise mask.target_scale or drop the level",
                    rank,
                )
            done = ckpt["epoch"] if ckpt is not None else 0
            run = Pretraining(cfg, rank, world, device, out, data, steps_per_epoch, quiet, done)
            start_epoch = run.resume(ckpt) if ckpt is not None else 0
            if rank == 0:  # epochs past the checkpoint are trained again, all of them without one
                keep_epochs_up_to(out, start_epoch)
                write_atomic(
                    out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json")).encode()
                )
            run.wrap_for_training()
            record: dict = {}
            for epoch in range(start_epoch, cfg.optim.epochs):
                record = run.train_epoch(epoch)
                run.end_epoch(record)
            return run.finish(record)
        finally:
            if rank == 0:  # the set-aside run: dropped once replaced, else put back
                start_over.settle(out)


def resume_point(cfg: JepaConfig, path: Path, rank: int) -> dict | None:
    """The checkpoint ``--resume`` continues from (None: no run yet, so ``cfg`` starts one and
    must pass a start's checks). Read before anything is written, so a checkpoint that is
    damaged, was trained with other learning settings than ``cfg`` (``check_resume``) or by
    another process count leaves the run as it was."""
    if not holds_checkpoint(path):
        check_sampling(cfg)  # a run from epoch 1 after all, refused as a fresh start would be
        _log(f"no {path} yet: starting from scratch", rank)
        return None
    ckpt = load_run_checkpoint(path)
    try:
        saved = parse_config(ckpt["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path} holds an unusable config: {err}") from None
    check_resume(saved, cfg)
    if why := process_count_change(ckpt, path):  # the batch is per process
        raise ConfigError(why)
    return ckpt


def check_dataset_sizes(ckpt: dict, mixture: MixtureDataset, path: Path) -> None:
    """Refuse a ``--resume`` whose datasets hold other numbers of images than ``last.pt``
    records (a partial copy at a new ``--data-path``): the steps per epoch, so the lr,
    weight-decay and EMA schedules, would shift. A ``last.pt`` from before the sizes were
    recorded is not checked."""
    saved = ckpt.get("dataset_sizes")
    if saved is None:
        return
    now = mixture.named_sizes()
    fits = isinstance(saved, dict) and saved.keys() == now.keys()
    if not fits or not all(type(size) is int for size in saved.values()):
        raise CheckpointError(f"{path} holds dataset_sizes that do not fit its config")
    for name, size in saved.items():
        if now[name] != size:
            raise ConfigError(
                f"--resume finds {now[name]} images of {name} where the run began with {size}; "
                "give --data-path the run's data"
            )


def finished(cfg: JepaConfig, out: Path, epochs: int, rank: int) -> dict:
    """A finished run is left as it is, but for what a stop can leave: a line cut off in the
    log (dropped, as by any resume) and no ``results.json`` (stopped right after the last
    ``last.pt``: written from the log's last epoch record). Returns the results."""
    if rank == 0:
        keep_epochs_up_to(out, epochs)
    if (out / RESULTS).exists():
        return read_results(out) or {}
    results = run_results(cfg, out / LAST, epochs, epoch_record(out, epochs))
    if rank == 0:
        write_json_atomic(out / RESULTS, results)
    return results


def run_results(cfg: JepaConfig, ckpt_path: Path, epochs: int, record: dict) -> dict:
    """What ``results.json`` holds: the run's last epoch record and its checkpoint."""
    return {"name": cfg.name, "epochs": epochs, "final": record, "checkpoint": str(ckpt_path)}


def end_distributed(world: int) -> None:
    """Leave the process group under ``torchrun`` once every rank is done."""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def batches_per_epoch(cfg: JepaConfig, samples_per_rank: int) -> int:
    """Whole batches per epoch and rank; none at all is a config error, not an empty run."""
    steps_per_epoch = samples_per_rank // cfg.optim.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{samples_per_rank} samples per rank is less than one batch of "
            f"{cfg.optim.batch_size}; lower --batch-size"
        )
    return steps_per_epoch


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the step is not taken, and nothing of its epoch is saved."""


class Pretraining:
    """One process's share of a run: the student, its EMA target and optimiser, the collapse
    watch and the run log, so each step of an epoch can be a method of its own."""

    def __init__(
        self,
        cfg: JepaConfig,
        rank: int,
        world: int,
        device: torch.device,
        out: Path,
        data: tuple,
        steps_per_epoch: int,
        quiet: bool,
        done_epochs: int = 0,
    ) -> None:
        self.cfg, self.rank, self.world, self.device, self.quiet = cfg, rank, world, device, quiet
        self.mixture, self.sampler, self.collator = data
        self.steps_per_epoch = steps_per_epoch
        torch.manual_seed(cfg.run.seed)
        self.student = HJepa(cfg).to(device)
        self.target_encoder = make_target_encoder(self.student.encoder).to(device)
        self.optimizer = torch.optim.AdamW(param_groups(self.student))
        self.watch = CollapseWatch(cfg.collapse.min_std_ratio, cfg.collapse.min_rank_ratio)
        self.log = RunLog(out, rank == 0, purge_step=done_epochs * steps_per_epoch + 1)
        self.out, self.ckpt_path = out, out / LAST
        self.model: torch.nn.Module = self.student
        use_amp = cfg.run.amp and device.type == "cuda"
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
        self.total_steps = cfg.optim.epochs * steps_per_epoch
        self.warmup_steps = int(cfg.optim.warmup_epochs * steps_per_epoch)
        self.num_levels = len(cfg.model.levels)

    def resume(self, ckpt: dict) -> int:
        """Load ``ckpt`` (``last.pt``, from ``resume_point``); returns the epochs it finished."""
        load_weights(self.student, ckpt["student"], self.ckpt_path, "student")
        load_weights(self.target_encoder, ckpt["target_encoder"], self.ckpt_path, "target encoder")
        load_weights(self.optimizer, ckpt["optimizer"], self.ckpt_path, "optimizer state")
        self.watch.load_state_dict(ckpt["collapse"])
        start_epoch = ckpt["epoch"]
        _log(f"resuming {self.ckpt_path} after epoch {start_epoch}", self.rank)
        return start_epoch

    def wrap_for_training(self) -> None:
        """DistributedDataParallel over the student under ``torchrun``, after any resume: DDP
        broadcasts rank 0's weights when it wraps them."""
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.student, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def train_epoch(self, epoch: int) -> dict:
        """One pass over this epoch's batches; returns the epoch's record."""
        cfg = self.cfg
        torch.manual_seed((cfg.run.seed * 7919 + epoch) * 131 + self.rank)
        loader = epoch_loader(cfg, self.mixture, self.sampler, self.collator, epoch, self.rank)
        counts = torch.zeros(len(self.mixture.names), dtype=torch.long)
        # loss, n, per-level losses, per-level cells, regulariser
        sums = torch.zeros(3 + 2 * self.num_levels, dtype=torch.float64)
        probe: list[torch.Tensor] = []
        bar = tqdm(
            loader,
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
            disable=self.quiet or self.rank != 0 or not sys.stderr.isatty(),
            leave=False,
        )
        start = time.perf_counter()
        for i, ((images, dataset_ids), ctx_masks, tgt_masks) in enumerate(bar):
            step = epoch * self.steps_per_epoch + i
            schedule = self._apply_schedules(step)
            loss, level_losses, cells, reg, features = self._train_step(
                images, ctx_masks, tgt_masks, schedule["ema_momentum"], (epoch, step)
            )
            counts += torch.bincount(dataset_ids, minlength=len(counts))
            sums += torch.tensor(
                [loss.item(), 1.0] + [v.item() for v in level_losses] + cells + [reg.item()]
            )
            if sum(len(p) for p in probe) < cfg.collapse.probe_samples:
                probe.append(features.float().mean(1).cpu())
            rate = (i + 1) * len(images) * self.world / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.0f}")
            if self.rank == 0 and (step + 1) % cfg.run.log_every == 0:
                self.log.write(
                    {
                        "kind": "step",
                        "step": step + 1,
                        "epoch": epoch + 1,
                        "loss": loss.item(),
                        **schedule,
                    },
                    step + 1,
                )
        elapsed = time.perf_counter() - start
        if self.world > 1:
            dist.all_reduce(counts)
        return self._epoch_record(epoch, sums, counts, probe, elapsed, schedule)

    def _apply_schedules(self, step: int) -> dict[str, float]:
        """Set this step's learning rate and weight decay; returns them with the EMA momentum
        (all three depend on the step alone, which is what makes a resume exact)."""
        o = self.cfg.optim
        lr = warmup_cosine_lr(
            step, self.warmup_steps, self.total_steps, o.start_lr, o.lr, o.final_lr
        )
        wd = cosine_weight_decay(step, self.total_steps, *o.weight_decay)
        momentum = ema_momentum(step, self.total_steps, *o.ema_momentum)
        apply_schedules(self.optimizer, lr, wd)
        return {"lr": lr, "weight_decay": wd, "ema_momentum": momentum}

    def _train_step(
        self,
        images: torch.Tensor,
        ctx_masks: list[torch.Tensor],
        tgt_masks: list[torch.Tensor],
        momentum: float,
        where: tuple[int, int],
    ) -> tuple:
        """One AdamW step of the student, then the target encoder's EMA; returns the loss, its
        parts and the target features (for the collapse probe). A non-finite loss on any rank
        stops every rank before the step: its NaN weights reached the collapse watch, whose
        RankMe then raised."""
        images = images.to(self.device, non_blocking=True)
        ctx_masks = [m.to(self.device, non_blocking=True) for m in ctx_masks]
        tgt_masks = [m.to(self.device, non_blocking=True) for m in tgt_masks]
        with self.autocast:
            targets, features = forward_target(self.target_encoder, images, self.num_levels)
            loss, level_losses, cells, reg = self.model(images, ctx_masks, tgt_masks, targets)
        bad = (~torch.isfinite(loss.detach())).float().reshape(1)
        if self.world > 1:
            dist.all_reduce(bad)
        if bad.item():
            epoch, step = where
            raise NonFiniteLoss(
                f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1}: stopped"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        ema_update(self.target_encoder, self.student.encoder, momentum)
        return loss, level_losses, cells, reg, features

    def _epoch_record(
        self,
        epoch: int,
        sums: torch.Tensor,
        counts: torch.Tensor,
        probe: list[torch.Tensor],
        elapsed: float,
        schedule: dict[str, float],
    ) -> dict:
        """The epoch's means, speed, realised dataset counts, last schedules and collapse
        statistics; a collapse warning is printed here, once per epoch."""
        cfg, num_levels = self.cfg, self.num_levels
        n = max(sums[1].item(), 1.0)
        stats, warning = self.watch.check(torch.cat(probe)[: cfg.collapse.probe_samples])
        record = {
            "kind": "epoch",  # as the other trainers' logs: a reader tells the records apart
            "epoch": epoch + 1,
            "loss": sums[0].item() / n,
            "level_loss": {str(k): sums[2 + k].item() / n for k in range(num_levels)},
            "level_cells_per_batch": {
                str(k): sums[2 + num_levels + k].item() / n for k in range(num_levels)
            },
            "regularizer_loss": sums[2 + 2 * num_levels].item() / n,
            "images_per_second": self.steps_per_epoch * cfg.optim.batch_size * self.world / elapsed,
            "dataset_counts": dict(zip(self.mixture.names, counts.tolist(), strict=True)),
            **schedule,
            **stats,
            "collapse_warning": warning is not None,
        }
        if warning:
            _log(f"WARNING epoch {epoch + 1}: {warning}", self.rank)
        return record

    def end_epoch(self, record: dict) -> None:
        """On rank 0: log the epoch's record, print its line (unless quiet), then write
        ``last.pt``."""
        if self.rank != 0:
            return
        epoch = record["epoch"]
        self.log.write(record, epoch * self.steps_per_epoch, tags="epoch/")
        if not self.quiet:
            _log(
                f"epoch {epoch}/{self.cfg.optim.epochs} loss {record['loss']:.4f} "
                f"{record['images_per_second']:.0f} img/s rankme {record['rankme']:.1f} "
                f"counts {record['dataset_counts']}",
                self.rank,
            )
        save_checkpoint(
            self.ckpt_path,
            {
                "student": self.student.state_dict(),
                "target_encoder": self.target_encoder.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "collapse": self.watch.state_dict(),
                "epoch": epoch,
                "config": self.cfg.model_dump(mode="json"),
                "world_size": self.world,  # a resume must keep it (``resume_point``)
                "dataset_sizes": self.mixture.named_sizes(),  # ``check_dataset_sizes``
            },
        )
        start_over.settle(self.out)  # a run --force set aside is replaced now: dropped

    def finish(self, record: dict) -> dict:
        """Close the log, write ``results.json`` (the last epoch's record) and leave the
        process group; returns the results."""
        self.log.close()
        results = run_results(self.cfg, self.ckpt_path, self.cfg.optim.epochs, record)
        if self.rank == 0:
            write_json_atomic(self.out / RESULTS, results)
        end_distributed(self.world)
        return results


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    """Exit 0 done, 1 a damaged or foreign checkpoint, 2 bad input, 130 interrupted."""
    parser = OneLineParser(prog="python -m train.jepa", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="configs/jepa/<name>.yaml")
    add_override_arguments(parser)
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    start.add_argument(
        "--force", action="store_true", help="start over in an --out that holds a run"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    args = parser.parse_args(argv)
    args.old_run = None  # the last.pt a --force start found, once the config is read
    return exit_on_interrupt(lambda: _run(args), lambda: _what_is_kept(args))


WORKERS = WorkerKnobs(
    "lower data.num_workers or --batch-size", "set data.num_workers: 0 in the config"
)


def _run(args: argparse.Namespace) -> int:
    try:
        cfg = apply_overrides(read_yaml(args.config), args)
        args.out = cfg.run.out  # the run folder, for the stop and error lines
        args.old_run = _file_identity(Path(args.out) / LAST) if args.force else None
        train(cfg, resume=args.resume, quiet=args.quiet, force=args.force)
    except (ConfigError, DatasetMissing, RunFolderBusy) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except CheckpointError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    except NonFiniteLoss as err:
        print(
            f"error: {err}; {_what_is_kept(args)}; lower the learning rate or check the data",
            file=sys.stderr,
        )
        return 1
    except OSError as err:  # a full disk or quota, a folder gone read-only
        failure = worker_lost(err, WORKERS) or failed_io(err)
        print(f"error: {failure}; {_what_is_kept(args)}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError, EOFError) as err:
        if caused_by_interrupt(err):
            raise
        if (died := worker_death(err, WORKERS) or peer_stopped(err)) is not None:
            print(f"error: {died}; {_what_is_kept(args)}", file=sys.stderr)
            return 1
        if (oom := out_of_memory(err)) is None:
            raise
        print(f"error: {oom}", file=sys.stderr)
        return 1
    return 0


def _what_is_kept(args: argparse.Namespace) -> str:
    """``what_is_kept``, but a ``--force`` start that ended before its first ``last.pt`` put the
    old run back (``start_over.settle``): that ``last.pt`` is the old run's, so ``--resume``
    would continue the old run, and the line says so."""
    if args.old_run is not None and _file_identity(Path(args.out) / LAST) == args.old_run:
        return (
            f"no epoch of the new run finished and the old run is back in {args.out} as it "
            "was: --resume continues the old run, --force starts over again"
        )
    return what_is_kept(args.out)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` (None: none): renames, which set a run aside and put it back,
    keep it; a new ``last.pt``, written to a temporary and renamed over, changes it."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


run = entry_point(main)  # the trajgen-jepa script; python -m train.jepa loads torch first
