"""Process group, device and rank: one run is a single process or a ``torchrun`` job.

Under ``torchrun`` the environment holds ``RANK``, ``WORLD_SIZE`` (``train.torchrun``) and
``LOCAL_RANK``; the run then trains with DistributedDataParallel (NCCL on
GPUs, gloo on the CPU) and only rank 0 writes files.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from train.torchrun import env_rank, env_world_size


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# How a collective fails when a process of the job is gone: gloo's TCP pair (the peer's socket
# closed or reset) and NCCL's remote error.
PEER_GONE = re.compile(
    r"Connection (closed|reset) by peer|Socket closed|remote process exited", re.IGNORECASE
)


class DeviceError(ValueError):
    """The requested device is not available; the message is one line."""


def pick_device(request: str, local_rank: int = 0) -> torch.device:
    if request == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "--device cuda was asked for but torch sees no CUDA device; use --device cpu"
        )
    if request in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def set_threads(threads: int) -> None:
    """torch's CPU threads; more than the cores this process may use is allowed (the thread
    count fixes the order of a sum, so keeping it keeps a resume bit-identical), with a warning:
    i3d, one epoch on 2 cores, took 5.7 s at 2 threads, 20 s at 16 and over 5 min at 1,024."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores and threads > cores:
        print(
            f"warning: {threads} threads on the {cores} cores this process may use: each step "
            "is slower than with at most one a core",
            file=sys.stderr,
        )
    torch.set_num_threads(threads)


def process_count_change(
    state: dict[str, Any],
    path: Path,
    processes: int | None = None,
    advice: Callable[[int], str] | None = None,
) -> str | None:
    """Why the checkpoint ``state`` read from ``path`` cannot be resumed by this job, or None.

    The batch size is per process, so another process count changes the batch, each
    epoch's shard of the shuffle and the steps an epoch takes: the learning-rate schedule
    restarted against another total and the resume no longer retraced the run. A
    checkpoint from before the count was recorded says nothing (None). ``processes`` is the
    job's count, this one's (torchrun's) unless given: a launcher gives that of the jobs it
    will start, and its ``advice``, how to resume with the saved count."""
    saved = state.get("world_size")
    now = env_world_size() if processes is None else processes
    if saved is None or saved == now:
        return None
    how = (advice or torchrun_advice)(saved)
    return (
        f"--resume: {path} was trained by {saved} process(es) and this job has {now}, so "
        f"batch and learning-rate schedule would change: resume it {how}, or start a new "
        "run folder"
    )


def torchrun_advice(saved: int) -> str:
    """How a trainer runs with ``saved`` processes."""
    return "without torchrun" if saved == 1 else f"under torchrun --nproc_per_node {saved}"


def setup(device_request: str) -> DistContext:
    """Join the ``torchrun`` process group if there is one; pick this process's device."""
    world_size = env_world_size()
    rank = env_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_request, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world_size, local_rank, device)


def teardown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(ctx: DistContext, tensor: torch.Tensor) -> torch.Tensor:
    """Sum over processes (a no-op alone); gloo wants CPU tensors, NCCL device ones."""
    if not ctx.distributed:
        return tensor
    t = tensor.to(ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(tensor.device)


def broadcast_buffers(ctx: DistContext, module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers, as DDP's forward does before each training step:
    that step then moved each rank's BatchNorm statistics by its own batch."""
    if not ctx.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast_flag(ctx: DistContext, flag: bool) -> bool:
    """True on every rank if it was true on any (so all ranks stop together)."""
    if not ctx.distributed:
        return flag
    return bool(all_reduce_sum(ctx, torch.tensor([float(flag)])).item() > 0)


def peer_stopped(error: BaseException) -> str | None:
    """What a collective's failure means under ``torchrun`` when another process of the job
    died (killed, out of memory): a phrase for the trainers' error line, or None for any
    other error. The survivor's own traceback (40 lines of gloo's socket error) said nothing
    of the run. Told by the job, not the process group, which a trainer may have left."""
    if env_world_size() == 1 or not isinstance(error, RuntimeError):
        return None
    if not PEER_GONE.search(str(error)):
        return None
    return (
        "another process of this run stopped (torchrun reports it below), so this one stops "
        "too; a --resume needs the same process count"
    )
