"""One or many evaluation processes: a command run plainly or under ``torchrun`` (``RANK``/``WORLD_SIZE`` set).

Under ``torchrun`` with ``WORLD_SIZE > 1`` the process group is created (gloo on the CPU, NCCL on CUDA), ``--device
cuda`` means this process's ``cuda:LOCAL_RANK``, and only rank 0 prints, shows progress and writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lipsim_tm.commands._common import parse_device


@dataclass(frozen=True)
class Processes:
    """Where this process sits: ``rank`` of ``world_size``, evaluating on ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, items: list) -> list:
        """Every rank's ``items``, concatenated in rank order (on every rank); ``items`` itself with one process."""
        if self.world_size == 1:
            return items
        import torch.distributed as dist

        gathered: list[list] = [[] for _ in range(self.world_size)]
        dist.all_gather_object(gathered, items)
        return [item for part in gathered for item in part]


@contextmanager
def evaluation_processes(device_text: str) -> Iterator[Processes]:
    """The run's :class:`Processes` for ``--device device_text``; the process group is destroyed on exit."""
    from lipsim_tm.training.distributed import init_distributed, shutdown_distributed

    device = parse_device(device_text)
    if device.type not in ("cpu", "cuda") and os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError(f"--device {device_text}: torchrun runs take cpu or cuda")
    context = init_distributed("cuda" if device.type == "cuda" else "cpu")
    if device.type in ("cpu", "cuda") and device.index is None:
        device = context.device  # cuda: this process's cuda:LOCAL_RANK
    try:
        yield Processes(context.rank, context.world_size, device)
    finally:
        shutdown_distributed()


__all__ = ["Processes", "evaluation_processes"]
