"""One torch thread for CPU-heavy tests: two cores shared by several workers (10x slower when oversubscribed).

Importable as a plain module (``tests/conftest.py`` puts this folder on ``sys.path``); the ``single_thread``
fixture of ``tests/conftest.py`` wraps it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread, restoring the previous count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
