"""Data-parallel training under torchrun: who this process is, joining the group, and the few
collective operations the training loop needs. In a plain process (no torchrun) nothing here is
called except `distributed_env`, which then says (0, 1, 0)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def distributed_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) in a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device) -> torch.device:
    """Join torchrun's process group (gloo on CPU, nccl on GPU); each rank takes its own GPU."""
    _, _, local_rank = distributed_env()
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel, which averages the gradients across ranks."""
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_sum(values: list[float], device) -> list[float]:
    """Each value summed over every rank (in float64, so counts stay exact)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy rank `src`'s buffers (batch-norm statistics) to every rank: DDP syncs gradients, not these."""
    for b in model.buffers():
        dist.broadcast(b, src)


def barrier() -> None:
    """Wait until every rank gets here."""
    dist.barrier()
