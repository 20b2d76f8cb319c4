"""Fixtures of the fault tests: real image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def write_image_pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two 40x48 PNG photos-like images in tmp_path/images."""
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for seed, name in enumerate(("a.png", "b.png")):
        array = (np.random.default_rng(seed).random((40, 48, 3)) * 255).astype(np.uint8)
        Image.fromarray(array).save(folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]
