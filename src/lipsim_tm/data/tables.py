"""Lists of image files a user writes: CSV tables of pairs or 2AFC triplets, and two folders matched by name.

A table has a header row naming its columns; image paths are absolute or relative to the table's folder. Errors
name the table, the line and the column.

- pairs: columns ``image_a``, ``image_b``;
- 2AFC triplets: columns ``ref``, ``img0``, ``img1`` and, optionally, ``target`` (the share of people who judged
  ``img1`` closer to ``ref``, in [0, 1]; 0/1 for a single judgment) and ``votes`` (how many people judged; rows
  with fewer than ``min_votes`` are dropped and counted).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lipsim_tm.checks import check_int
from lipsim_tm.data.images import find_images
from lipsim_tm.files import check_file

PAIR_COLUMNS: tuple[str, ...] = ("image_a", "image_b")
TRIPLET_COLUMNS: tuple[str, ...] = ("ref", "img0", "img1")


@dataclass(frozen=True)
class FileSet:
    """Image files scored together: their paths as written (``names``, for the output) and as found (``paths``),
    and per-item numbers (``target``). ``line``: where the item is defined (a table's line, or None)."""

    names: tuple[str, ...]
    paths: tuple[Path, ...]
    target: float | None = None
    line: int | None = None


@dataclass
class Listing:
    """What a table or two folders hold: the items, and what was left out (with why)."""

    items: list[FileSet]
    left_out: dict[str, list[str]] = field(default_factory=dict)


def _resolve(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def read_rows(
    table: Path, required: Sequence[str], what: str = "CSV table"
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header (names stripped) and the ``(line, row)`` pairs of the CSV file ``table``, whose header must
    name the columns ``required``; errors call the file ``what``."""
    check_file(table, what)
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in required if name not in header]
            if missing:
                raise ValueError(
                    f"{table}: the header must name the columns {list(required)}; missing {missing}, found {header}"
                )
            reader.fieldnames = header
            rows = [(line, row) for line, row in enumerate(reader, start=2)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{table} is not a readable {what} (UTF-8 CSV text): {error}") from None
    if not rows:
        raise ValueError(f"{table} holds no rows after its header")
    return header, rows


def _number(table: Path, line: int, column: str, text: str | None, low: float, high: float) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise ValueError(f"{table}:{line}: column {column} must be a number, got {text!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{table}:{line}: column {column} must be in [{low:g}, {high:g}], got {text!r}")
    return value


def _paths(
    table: Path, line: int, row: dict[str, str | None], columns: Sequence[str]
) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    names = tuple((row[c] or "").strip() for c in columns)
    for column, name in zip(columns, names, strict=True):
        if not name:
            raise ValueError(f"{table}:{line}: column {column} is empty; expected an image path")
    return names, tuple(_resolve(table.parent, name) for name in names)


def read_pairs(table: str | os.PathLike[str]) -> Listing:
    """The pairs of a CSV table with columns ``image_a``, ``image_b`` (paths absolute or relative to its folder)."""
    table = Path(table)
    _, rows = read_rows(table, PAIR_COLUMNS)
    items = []
    for line, row in rows:
        names, paths = _paths(table, line, row, PAIR_COLUMNS)
        items.append(FileSet(names, paths, line=line))
    return Listing(items)


def read_triplets(table: str | os.PathLike[str], *, min_votes: int | None = None) -> Listing:
    """The 2AFC triplets of a CSV table (module docstring); ``min_votes`` keeps rows with at least that many votes
    (it needs a ``votes`` column). Rows dropped for votes are listed in ``left_out["votes"]``."""
    table = Path(table)
    if min_votes is not None:
        check_int("min_votes", min_votes, minimum=1)
    header, rows = read_rows(table, TRIPLET_COLUMNS)
    if min_votes is not None and "votes" not in header:
        raise ValueError(f"{table}: --min-votes needs a votes column; found {header}")
    items, dropped = [], []
    for line, row in rows:
        if min_votes is not None and _number(table, line, "votes", row["votes"], 0, math.inf) < min_votes:
            dropped.append(f"line {line}")
            continue
        target = None if "target" not in header else _number(table, line, "target", row["target"], 0.0, 1.0)
        names, paths = _paths(table, line, row, TRIPLET_COLUMNS)
        items.append(FileSet(names, paths, target, line))
    if not items:
        raise ValueError(f"{table}: no triplet has at least {min_votes} votes ({len(dropped)} rows dropped)")
    return Listing(items, {"votes": dropped} if dropped else {})


def pair_folders(folder_a: str | os.PathLike[str], folder_b: str | os.PathLike[str]) -> Listing:
    """The images of two folders (searched recursively) paired by their path relative to each folder; names found
    on one side only are listed in ``left_out`` (``"only in <folder>"``)."""
    roots = (Path(folder_a), Path(folder_b))
    found = [{p.relative_to(root).as_posix(): p for p in find_images(root)} for root in roots]
    common = sorted(set(found[0]) & set(found[1]))
    items = [FileSet((str(found[0][name]), str(found[1][name])), (found[0][name], found[1][name])) for name in common]
    left_out = {
        f"only in {root}": sorted(set(found[i]) - set(found[1 - i]))
        for i, root in enumerate(roots)
        if set(found[i]) - set(found[1 - i])
    }
    if not items:
        raise ValueError(f"{roots[0]} and {roots[1]} hold no image of the same name (relative path)")
    return Listing(items, left_out)
