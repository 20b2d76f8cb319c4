"""Fault injection for child processes of the fault tests (on their PYTHONPATH, Python imports it at start-up).

``LIPSIM_FAULT=module:Qualified.attribute:mode:N`` wraps that function of that module when the module is first
imported; the process then dies as SIGKILL would (``os._exit(137)``: no cleanup, no ``finally``) when

- ``mode`` is ``calls``: the N-th call begins;
- ``mode`` is ``bytes``: a call would bring the bytes passed to it (its first argument) past N; the call writes
  the part up to N first, so the file holds exactly N bytes at the death.

``LIPSIM_FAULT_RANK=R`` limits the fault to the torchrun process of rank R; ``LIPSIM_FAULT_SLEEP=S`` makes every
call of the function sleep S seconds first (so a concurrent process can be caught in the middle).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time

_SPEC = os.environ.get("LIPSIM_FAULT")
_RANK = os.environ.get("LIPSIM_FAULT_RANK")


def _wrap(module: object, qualified: str, mode: str, limit: int) -> None:
    *owners, name = qualified.split(".")
    owner = module
    for part in owners:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    state = {"calls": 0, "bytes": 0}
    pause = float(os.environ.get("LIPSIM_FAULT_SLEEP", "0"))

    def faulty(*args, **kwargs):
        if pause:
            time.sleep(pause)
        if mode == "calls":
            state["calls"] += 1
            if state["calls"] >= limit:
                os._exit(137)
            return original(*args, **kwargs)
        data = args[1] if len(args) > 1 else args[0]  # a method's (self, data) or a function's (data)
        room = limit - state["bytes"]
        if len(data) > room:
            original(*args[:-1], data[:room]) if len(args) > 1 else original(data[:room])
            flush = getattr(getattr(args[0], "handle", None), "flush", None)
            if flush is not None:
                flush()
            os._exit(137)
        state["bytes"] += len(data)
        return original(*args, **kwargs)

    setattr(owner, name, faulty)


class _Patcher(importlib.abc.MetaPathFinder):
    """Finds the target module once, through the other finders, and wraps the function after it executes."""

    def __init__(self, target: str, qualified: str, mode: str, limit: int) -> None:
        self.target, self.qualified, self.mode, self.limit = target, qualified, mode, limit

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _wrap(module, self.qualified, self.mode, self.limit)

        spec.loader.exec_module = exec_module
        return spec


if _SPEC and (_RANK is None or os.environ.get("RANK", "0") == _RANK):
    _module, _qualified, _mode, _limit = _SPEC.split(":")
    sys.meta_path.insert(0, _Patcher(_module, _qualified, _mode, int(_limit)))
