"""Tearing down a process group: the DDP wrappers of a run are collected first (a reducer outliving its group
aborted 2-process gloo jobs at interpreter exit now and then: "terminate called without an active exception")."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lipsim_tm.distributed import shutdown_distributed


def test_shutdown_collects_ddp_wrappers_before_destroying_the_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    gc.disable()  # only shutdown_distributed may collect the cycle
    try:

        def one_step() -> weakref.ref:
            wrapper = DistributedDataParallel(nn.Linear(3, 2))
            wrapper(torch.rand(4, 3)).sum().backward()
            return weakref.ref(wrapper)  # the caller drops the wrapper, as the trainer does when it returns

        wrapper = one_step()
        if wrapper() is None:
            pytest.skip("this torch's DistributedDataParallel is not kept alive by a reference cycle")
        shutdown_distributed()
        assert wrapper() is None  # collected while the group still existed
        assert not dist.is_initialized()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
