"""Fixtures of the command-line tests: one torch thread, and real image files written to tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import photo_array
from PIL import Image


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """One torch thread: these networks are tiny and the CPU is shared."""


@pytest.fixture
def write_image(tmp_path: Path) -> Callable[..., Path]:
    """``write_image(name, seed, height, width, mode="RGB")``: a PNG (or any suffix Pillow writes) in tmp_path."""

    def write(name: str, seed: int, height: int = 40, width: int = 48, mode: str = "RGB") -> Path:
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        path = tmp_path / name
        Image.fromarray(photo_array(seed, height, width, channels)).save(path)
        return path

    return write
