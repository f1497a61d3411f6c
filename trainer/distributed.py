"""Processes and devices under torchrun: the process group, DDP or FSDP2 wrapping, collectives.

Without torchrun's environment the run is one process and no process group is made; the
backend is nccl on CUDA and gloo on CPU unless the config names one. Launch commands:
docs/trainer.md.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """Where this process stands."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    strategy: str
    """`none` (one process), `ddp` or `fsdp`."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(requested: str, local_rank: int) -> torch.device:
    """`auto`: cuda:<local_rank> when CUDA is available, else cpu."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device = 'cuda' but torch sees no CUDA device")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_distributed(device: str, strategy: str, backend: str = "auto") -> DistContext:
    """Read torchrun's environment, pick the device, start the process group if W > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = select_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        chosen = backend if backend != "auto" else ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(
            chosen,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(minutes=30),
            device_id=dev if dev.type == "cuda" else None,
        )
    return DistContext(rank, world_size, local_rank, dev, strategy if world_size > 1 else "none")


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """DDP or FSDP2 around the model (on its device already); unchanged for one process."""
    if ctx.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if ctx.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in model.layers:
            fully_shard(layer)
        fully_shard(model)
        return model
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The Transformer inside a DDP wrapper (FSDP2 shards in place: the model itself)."""
    return model.module if hasattr(model, "module") else model


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Sum a few numbers over the ranks (float64 on the process group's device)."""
    if not ctx.distributed:
        return list(values)
    device = ctx.device if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
