"""Test teachers of the trainer tests (photo folders and dataset layouts: ``tests/dataset_writers.py``).

Importable as a plain module (``tests/conftest.py`` puts this folder on ``sys.path``; subprocesses get it on
``PYTHONPATH``), also as a teacher spec: ``--teacher training_fixtures:make_teacher``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO = Path(__file__).parents[1]
PYTHON = sys.executable


class LinearTeacher(nn.Module):
    """A fixed random linear map of 4x4-average-pooled pixels: ``(N, 3, S, S) -> (N, dim)``, Lipschitz < 1."""

    def __init__(self, size: int = 32, dim: int = 256, seed: int = 0, scale: float = 0.5) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        width = 3 * (size // 4) ** 2
        self.register_buffer(
            "weight", torch.randn(dim, width, generator=generator, dtype=torch.float64) * scale / width**0.5
        )

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.avg_pool2d(x.to(self.weight.dtype), 4).flatten(1) - 0.5
        return pooled @ self.weight.T


def make_teacher() -> LinearTeacher:
    """Factory used by the CLI tests (``--teacher training_fixtures:make_teacher``)."""
    return LinearTeacher()


class SlowTeacher(LinearTeacher):
    """:class:`LinearTeacher` that sleeps on every call, so a test can kill a run between checkpoints."""

    def forward(self, x: Tensor) -> Tensor:
        import time

        time.sleep(0.25)
        return super().forward(x)


def make_slow_teacher() -> SlowTeacher:
    return SlowTeacher()
