"""Fixtures of the trainer tests: photo folders and test teachers (dataset layouts: ``tests/dataset_writers.py``).

Importable as a plain module (pytest puts this folder on sys.path; subprocesses get it on PYTHONPATH).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from dataset_writers import synthetic_photo

HERE = Path(__file__).parent
REPO = HERE.parents[1]
PYTHON = sys.executable


def write_photos(folder: Path, count: int = 6, *, seed: int = 0, size: tuple[int, int] = (72, 88)) -> list[Path]:
    """``count`` photos as PNG and JPEG, some in a subfolder; returns their paths."""
    paths = []
    for i in range(count):
        sub = folder / ("nested" if i % 3 == 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"photo{i}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(synthetic_photo(seed * 1000 + i, *size)).save(path, quality=95)
        paths.append(path)
    return paths


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
