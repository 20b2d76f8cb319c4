"""The BAPPS 2AFC dataset (LPIPS) read from its real folder layout.

Layout: ``root/2afc/{train,val}/<subset>/{ref,p0,p1,judge}/NNNNNN.{png,npy}``; the images are
64x64 PNGs and ``judge/*.npy`` holds the fraction of people who preferred ``p1`` (judged it closer).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lipsim_tm.checks import check_choice
from lipsim_tm.data.images import load_image

BAPPS_SPLITS: tuple[str, ...] = ("train", "val")
BAPPS_VAL_SUBSETS: tuple[str, ...] = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")


def load_judge(path: Path) -> float:
    """The fraction in a BAPPS ``judge/*.npy`` file (one number in [0, 1])."""
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read judge file {path}: {error}") from error
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise ValueError(f"judge file {path} must hold one number, got dtype {value.dtype} shape {value.shape}")
    judge = float(value.reshape(()))
    if not 0.0 <= judge <= 1.0:
        raise ValueError(f"judge file {path} must hold a value in [0, 1], got {judge}")
    return judge


class BAPPS2AFCDataset(Dataset):
    """BAPPS triplets ``(ref, img0, img1, p)``; ``p`` = fraction preferring ``p1`` (``img1`` closer).

    Args:
        root: the BAPPS dataset folder (holding ``2afc``).
        split: ``train`` or ``val``.
        subsets: subset folder names to include; default all subsets present, sorted.
        image_size: images are resized to this size (bicubic) when they differ; BAPPS images are 64.
    """

    #: The side of BAPPS' 2AFC images: the default read size, so eps is in the dataset's own pixels.
    NATIVE_SIZE = 64

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "val",
        *,
        subsets: Sequence[str] | None = None,
        image_size: int = NATIVE_SIZE,
    ) -> None:
        check_choice("split", split, BAPPS_SPLITS)
        base = Path(root) / "2afc" / split
        if not base.is_dir():
            raise FileNotFoundError(f"BAPPS split folder not found: {base} (root must hold 2afc/{split})")
        available = sorted(p.name for p in base.iterdir() if p.is_dir())
        if subsets is None:
            subsets = available
        unknown = [s for s in subsets if s not in available]
        if unknown or not subsets:
            raise ValueError(f"subsets must be a non-empty subset of {available}, got {list(subsets)}")
        self.image_size = image_size
        self.items: list[tuple[Path, Path, Path, Path, str]] = []
        for subset in subsets:
            folder = base / subset
            judges = sorted((folder / "judge").glob("*.npy"))
            if not judges:
                raise ValueError(f"no judge/*.npy files in {folder}")
            for judge in judges:
                stem = judge.stem
                paths = [folder / name / f"{stem}.png" for name in ("ref", "p0", "p1")]
                for path in paths:
                    if not path.is_file():
                        raise FileNotFoundError(f"BAPPS image missing for judge file {judge}: {path}")
                self.items.append((*paths, judge, subset))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ref, p0, p1, judge, _ = self.items[index]
        size = self.image_size
        p = torch.tensor(load_judge(judge), dtype=torch.float32)
        return load_image(ref, size), load_image(p0, size), load_image(p1, size), p

    def subset(self, index: int) -> str:
        """The subset folder name of item ``index``."""
        return self.items[index][4]
