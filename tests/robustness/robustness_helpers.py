"""Helpers of the robustness tests (importable as a plain module: pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Two cores shared by several workers: one torch thread avoids oversubscription (10x slower otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
