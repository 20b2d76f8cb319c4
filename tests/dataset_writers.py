"""Dataset writers shared by the test folders: structured synthetic photos, NIGHTS and BAPPS layouts on disk.

Importable as a plain module (``tests/conftest.py`` puts this folder on ``sys.path``; subprocesses get it
on ``PYTHONPATH``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_photo(seed: int, height: int = 72, width: int = 88) -> np.ndarray:
    """An RGB ``uint8`` image with structure: smooth gradients, sinusoidal texture, discs and bars."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    for c in range(3):
        fx, fy = rng.uniform(0.05, 0.4, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        image[..., c] = 0.5 + 0.25 * np.sin(fx * x + fy * y + phase) + 0.2 * (x / width - 0.5) * rng.uniform(-1, 1)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(5, 18)
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r**2
        image[mask] = rng.uniform(0, 1, size=3)
    top, left = rng.integers(0, max(height - 8, 1)), rng.integers(0, max(width - 8, 1))
    image[top : top + 6, left : left + rng.integers(8, 30)] = rng.uniform(0, 1, size=3)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


NIGHTS_HEADER = [
    "id",
    "votes",
    "right_vote",
    "left_vote",
    "ref_path",
    "left_path",
    "right_path",
    "prompt",
    "is_imagenet",
    "split",
]


def write_nights(root: Path, rows: list[dict[str, object]], *, size: int = 40) -> Path:
    """A NIGHTS folder: ``ref/NNN/MMM.png``, ``distort/NNN/MMM_{0,1}.png`` and ``data.csv`` with ``rows``.

    Each row gives ``votes``, ``right_vote`` (p), ``split``, ``is_imagenet``; paths are generated.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / "data.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, NIGHTS_HEADER)
        writer.writeheader()
        for i, row in enumerate(rows):
            group, item = f"{i // 2:03d}", f"{i:03d}"
            paths = {
                "ref_path": f"ref/{group}/{item}.png",
                "left_path": f"distort/{group}/{item}_0.png",
                "right_path": f"distort/{group}/{item}_1.png",
            }
            for k, rel in enumerate(paths.values()):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(synthetic_photo(100 * i + k, size, size)).save(root / rel)
            writer.writerow(
                {
                    "id": i,
                    "votes": row["votes"],
                    "right_vote": row["p"],
                    "left_vote": 1 - float(row["p"]),
                    **paths,
                    "prompt": "a photo",
                    "is_imagenet": row.get("is_imagenet", False),
                    "split": row["split"],
                    **{k: v for k, v in row.items() if k.endswith("_path")},
                }
            )
    return root


def write_bapps(root: Path, judges: dict[str, list[float]], *, split: str = "val", size: int = 64) -> Path:
    """A BAPPS folder ``root/2afc/<split>/<subset>/{ref,p0,p1,judge}`` with one triplet per judge value."""
    for s, (subset, values) in enumerate(sorted(judges.items())):
        base = root / "2afc" / split / subset
        for name in ("ref", "p0", "p1", "judge"):
            (base / name).mkdir(parents=True, exist_ok=True)
        for i, judge in enumerate(values):
            stem = f"{i:06d}"
            for k, name in enumerate(("ref", "p0", "p1")):
                Image.fromarray(synthetic_photo(1000 * s + 10 * i + k, size, size)).save(base / name / f"{stem}.png")
            np.save(base / "judge" / f"{stem}.npy", np.array([judge], dtype=np.float32))
    return root


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
