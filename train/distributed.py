"""Process group, device and rank: one run is a single process or a ``torchrun`` job.

Under ``torchrun`` the environment holds ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; the run then trains with DistributedDataParallel (NCCL on
GPUs, gloo on the CPU) and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def env_rank() -> int:
    """This process's rank as ``torchrun`` set it, known before ``setup``: 0 alone (a
    ``RANK`` left in the environment of a one-process run does not make it a non-writer)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    return int(os.environ.get("RANK", "0"))


def setup(device_request: str) -> DistContext:
    """Join the ``torchrun`` process group if there is one; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
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


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast_flag(ctx: DistContext, flag: bool) -> bool:
    """True on every rank if it was true on any (so all ranks stop together)."""
    if not ctx.distributed:
        return flag
    return bool(all_reduce_sum(ctx, torch.tensor([float(flag)])).item() > 0)
