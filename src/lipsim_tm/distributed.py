"""One entry point for single-process and ``torchrun`` runs: process group, device, sampler, reductions.

Under ``torchrun`` the environment holds ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the
rendezvous address); without them the run is a single process and no process group is created.
The backend is NCCL on CUDA and gloo on the CPU.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs, checkpoints and exports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as error:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from error


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` -> a device; CUDA uses ``local_rank``."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device: str = "auto") -> DistributedContext:
    """Read the torchrun environment, pick the device and (for ``WORLD_SIZE > 1``) init the process group."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    resolved = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, resolved)


def shutdown_distributed() -> None:
    """Destroy the process group if one exists.

    A ``DistributedDataParallel`` wrapper lives in a reference cycle, so without a collection it outlives the
    group and its C++ reducer is destroyed at interpreter exit, which aborts the process now and then
    ("terminate called without an active exception": 3-4 runs in 40 of a 2-process gloo job here, none after
    the collection). So garbage is collected first. On a normal exit every process then waits at a barrier, so
    none tears the group down while another still uses it; while an exception propagates (a ``finally`` on a
    failing process) it tears down at once: waiting could deadlock with peers blocked in a collective, and
    torchrun stops them anyway.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        if sys.exc_info()[0] is None and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel for multi-process runs, unchanged otherwise.

    ``find_unused_parameters`` is on: the conv layers' ``q`` (kept for checkpoint compatibility)
    has no effect on the output by default and so never receives a gradient.
    """
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


def unwrap_model(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def mean_over_ranks(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The mean of ``value`` over ranks (a copy; ``value`` itself unchanged)."""
    value = value.detach().clone()
    if context.distributed:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= context.world_size
    return value


def all_sum(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The sum of ``value`` over ranks on every rank (a copy; ``value`` itself unchanged); ``value`` alone with one
    process. The tensor goes to the process's device for the collective (NCCL reduces CUDA tensors only)."""
    if not context.distributed:
        return value.clone()
    total = value.detach().to(context.device, copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(value.device)


def check_ranks_in_sync(model: nn.Module, context: DistributedContext) -> None:
    """Raise ``RuntimeError`` naming the first parameter that differs between rank 0 and any other rank.

    Every rank gathers every rank's parameters (exact comparison), so use it once per run, not per step.
    """
    if not context.distributed:
        return
    for name, param in model.named_parameters():
        local = param.detach().contiguous()
        gathered = [torch.empty_like(local) for _ in range(context.world_size)]
        dist.all_gather(gathered, local)
        for rank, other in enumerate(gathered[1:], start=1):
            if not torch.equal(gathered[0], other):
                raise RuntimeError(f"parameter {name!r} differs between rank 0 and rank {rank}: the ranks diverged")


def gather_lists(items: list, context: DistributedContext) -> list:
    """Every rank's ``items`` (picklable), concatenated in rank order, on every rank; ``items`` with one process."""
    if not context.distributed:
        return items
    gathered: list[list] = [[] for _ in range(context.world_size)]
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def any_rank(flag: bool, context: DistributedContext) -> bool:
    """True on every rank if ``flag`` is true on any rank (so all ranks stop at the same step)."""
    if not context.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)
