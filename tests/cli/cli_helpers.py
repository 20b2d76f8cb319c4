"""Helpers of the command-line tests: generated images, running ``lipsim``, tiny NIGHTS/BAPPS folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

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


NIGHTS_HEADER = ["id", "votes", "right_vote", "left_vote", "ref_path", "left_path", "right_path", "split"]


def write_nights(root: Path, rows: list[tuple[int, float, str]], size: int = 24) -> Path:
    """A NIGHTS folder: ``data.csv`` (p in the third column) and ``ref/NNN``, ``distort/NNN`` PNGs.

    ``rows``: ``(votes, p, split)`` per triplet, ``p`` the fraction judging the right (``_1``) image closer.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / "data.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, NIGHTS_HEADER)
        writer.writeheader()
        for i, (votes, p, split) in enumerate(rows):
            paths = {
                "ref_path": f"ref/{i // 2:03d}/{i:03d}.png",
                "left_path": f"distort/{i // 2:03d}/{i:03d}_0.png",
                "right_path": f"distort/{i // 2:03d}/{i:03d}_1.png",
            }
            for k, relative in enumerate(paths.values()):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(photo_array(100 * i + k, size, size)).save(root / relative)
            writer.writerow({"id": i, "votes": votes, "right_vote": p, "left_vote": 1 - p, **paths, "split": split})
    return root


def write_bapps(root: Path, judges: dict[str, list[float]], split: str = "val", size: int = 16) -> Path:
    """A BAPPS folder ``root/2afc/<split>/<subset>/{ref,p0,p1,judge}`` with one triplet per judge value."""
    for s, (subset, values) in enumerate(sorted(judges.items())):
        base = root / "2afc" / split / subset
        for name in ("ref", "p0", "p1", "judge"):
            (base / name).mkdir(parents=True, exist_ok=True)
        for i, judge in enumerate(values):
            stem = f"{i:06d}"
            for k, name in enumerate(("ref", "p0", "p1")):
                Image.fromarray(photo_array(1000 * s + 10 * i + k, size, size)).save(base / name / f"{stem}.png")
            np.save(base / "judge" / f"{stem}.npy", np.array([judge], dtype=np.float32))
    return root
