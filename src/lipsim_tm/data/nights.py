"""The NIGHTS 2AFC dataset (DreamSim) read from its real folder layout.

Layout: ``root/data.csv`` plus the image folders it points to (``ref/NNN/MMM.png``,
``distort/NNN/MMM_0.png``, ``distort/NNN/MMM_1.png``). ``data.csv`` columns used: ``id``,
``ref_path``, ``left_path``, ``right_path``, ``votes``, ``split``, ``is_imagenet`` and, as in the official
DreamSim reader (``csv.iloc[idx, 2]``), the third column: the fraction of people who judged the right
(``_1``) image closer to the reference.
Rows with ``votes < min_votes`` are dropped (the official filter keeps ``votes >= 6``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lipsim_tm.checks import check_choice, check_int
from lipsim_tm.data.images import load_image, safe_join
from lipsim_tm.data.tables import read_rows

NIGHTS_SPLITS: tuple[str, ...] = ("train", "val", "test", "test_imagenet", "test_no_imagenet")
_REQUIRED_COLUMNS = ("ref_path", "left_path", "right_path", "votes", "split")
_P_POSITION = 2  # the official reader's column for p


def _parse_bool(value: str, *, source: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{source}: is_imagenet must be True/False, got {value!r}")


class NightsDataset(Dataset):
    """NIGHTS triplets ``(ref, img0, img1, p)``: images ``(3, S, S)`` float32 in [0, 1], ``p`` a float32 scalar.

    ``img0`` is the left (``_0``) distortion, ``img1`` the right (``_1``) one, and ``p`` the fraction of
    people who judged ``img1`` closer to ``ref`` (the 2AFC target convention of the metrics).

    Args:
        root: the NIGHTS folder (holding ``data.csv``).
        split: one of :data:`NIGHTS_SPLITS`; ``test_imagenet``/``test_no_imagenet`` filter the test split
            on ``is_imagenet``.
        image_size: images are resized to ``image_size x image_size`` (bicubic); NIGHTS uses 224.
        min_votes: keep rows with ``votes >= min_votes`` (official: 6).
    """

    #: The side of NIGHTS' images: the default read size, so eps is in the dataset's own pixels.
    NATIVE_SIZE = 224

    def __init__(
        self, root: str | os.PathLike[str], split: str = "train", *, image_size: int = NATIVE_SIZE, min_votes: int = 6
    ) -> None:
        check_choice("split", split, NIGHTS_SPLITS)
        check_int("image_size", image_size, minimum=1)
        check_int("min_votes", min_votes, minimum=0)
        self.root = Path(root)
        #: Rows of the split left out for having fewer than ``min_votes`` votes.
        self.dropped_for_votes = 0
        self.split = split
        self.image_size = image_size
        index = self.root / "data.csv"
        if not index.is_file():
            raise FileNotFoundError(f"NIGHTS index not found: {index} (root must be the folder holding data.csv)")
        self.rows = self._read_index(index, split, min_votes)

    def _read_index(self, index: Path, split: str, min_votes: int) -> list[tuple[Path, Path, Path, float, str | None]]:
        header, table = read_rows(index, _REQUIRED_COLUMNS, "NIGHTS index")
        p_column = header[_P_POSITION]
        if p_column in _REQUIRED_COLUMNS:
            raise ValueError(f"{index}: the third column must hold p (as in the official reader), got {p_column!r}")
        base_split = "test" if split.startswith("test") else split
        rows = []
        for line, row in table:
            source = f"{index}:{line}"
            try:
                votes = float(row["votes"])
                p = float(row[p_column])
            except (TypeError, ValueError) as error:
                raise ValueError(f"{source}: votes and {p_column} must be numbers ({error})") from error
            if row["split"] != base_split:
                continue
            if votes < min_votes:
                self.dropped_for_votes += 1
                continue
            imagenet = None if "is_imagenet" not in row else _parse_bool(row["is_imagenet"], source=source)
            if split in ("test_imagenet", "test_no_imagenet"):
                if imagenet is None:
                    raise ValueError(f"{index}: split {split!r} needs an is_imagenet column")
                if imagenet != (split == "test_imagenet"):
                    continue
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{source}: {p_column} must be in [0, 1], got {p}")
            columns = ("ref_path", "left_path", "right_path")
            paths = tuple(safe_join(self.root, row[c], source=source) for c in columns)
            subset = None if imagenet is None else ("imagenet" if imagenet else "no_imagenet")
            rows.append((*paths, p, subset))
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ref, left, right, p, _ = self.rows[index]
        size = self.image_size
        return load_image(ref, size), load_image(left, size), load_image(right, size), torch.tensor(p)

    def subset(self, index: int) -> str | None:
        """``"imagenet"`` or ``"no_imagenet"`` (the ``is_imagenet`` column) of row ``index``; None without it."""
        return self.rows[index][4]
