"""One torch thread for CPU-heavy tests: two cores shared by several workers (10x slower when oversubscribed).

Importable as a plain module (``tests/conftest.py`` puts this folder on ``sys.path``); the ``single_thread``
and ``subprocess_env`` fixtures of ``tests/conftest.py`` wrap it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parent


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread, restoring the previous count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def child_env() -> dict[str, str]:
    """The environment of a child process: one thread, unbuffered output, the package (``src``) and the test
    helpers (``tests``) importable."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    paths = [str(TESTS), str(TESTS.parent / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env
