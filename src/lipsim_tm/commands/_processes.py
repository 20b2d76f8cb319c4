"""One or many evaluation processes: a command run plainly or under ``torchrun`` (``RANK``/``WORLD_SIZE`` set).

Under ``torchrun`` with ``WORLD_SIZE > 1`` the process group is created (gloo on the CPU, NCCL on CUDA), ``--device
cuda`` means this process's ``cuda:LOCAL_RANK``, and only rank 0 prints, shows progress and writes files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager

from lipsim_tm.commands._common import parse_device
from lipsim_tm.training.distributed import DistributedContext, init_distributed, shutdown_distributed


@contextmanager
def evaluation_processes(device_text: str) -> Iterator[DistributedContext]:
    """Where this process evaluates for ``--device device_text``; the process group is destroyed on exit."""
    device = parse_device(device_text)
    if device.type not in ("cpu", "cuda") and os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError(f"--device {device_text}: torchrun runs take cpu or cuda")
    context = init_distributed("cuda" if device.type == "cuda" else "cpu")
    if device.type not in ("cpu", "cuda") or device.index is not None:
        context = dataclasses.replace(context, device=device)  # an explicit device (cuda:1, mps) is kept
    try:
        yield context
    finally:
        shutdown_distributed()


__all__ = ["evaluation_processes"]
