"""Helpers of the command-line tests: generated images and running ``lipsim``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lipsim_tm.cli import main

WEIGHTS = "random:tiny32"


def photo_array(
    seed: int, height: int, width: int, channels: int = 3, low: float = 0.0, high: float = 1.0
) -> np.ndarray:
    """A structured uint8 image (sinusoids and discs) with values in ``[low, high]`` (fractions of 255)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    waves = [np.sin(rng.uniform(0.05, 0.5) * x + rng.uniform(0.05, 0.5) * y) for _ in range(channels)]
    image = 0.5 + 0.4 * np.stack(waves, -1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(3, 10)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1, size=channels)
    image = low + (high - low) * np.clip(image, 0, 1)
    array = (image * 255).round().astype(np.uint8)
    return array[..., 0] if channels == 1 else array


def pil_tensor(path, mode: str = "RGB") -> torch.Tensor:
    """Reference reading, independent of the command: ``(1, C, H, W)`` float32 in [0, 1]."""
    array = np.asarray(Image.open(path).convert(mode), dtype=np.float32) / 255.0
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``lipsim argv`` (argparse/usage errors exit through SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code if isinstance(exit_info.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    """The JSON a command prints with ``--json`` (exit code must be 0)."""
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)
