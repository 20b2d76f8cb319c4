"""Scoring many image files: the engine behind ``lipsim distance`` and ``lipsim 2afc``, one item or thousands.

Items (pairs or triplets of files, :class:`~lipsim_tm.data.tables.FileSet`) are grouped by the shapes their file
headers give, so files of any size and mode go through the network a batch at a time, resized like the metrics;
decoding runs in ``DataLoader`` workers while the network works. A file that cannot be read gives its item an
error and the run goes on (or stops, ``on_error="stop"``). Under ``torchrun`` the batches are dealt out to the
processes like ``lipsim certify``'s, and rank 0 gets every row, in item order: the same rows as one process.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lipsim_tm.commands._report import Progress, describe_error, json_safe, write_json
from lipsim_tm.commands._runtime import file_features
from lipsim_tm.data.images import image_shape, read_image
from lipsim_tm.data.sharding import ShardedBatches
from lipsim_tm.data.tables import FileSet, Listing
from lipsim_tm.distributed import DistributedContext, any_rank, gather_lists
from lipsim_tm.files import atomic_file, check_writable
from lipsim_tm.models.backbone import LipSimBackbone

#: ``score(features, bounds, items) -> rows``: one batch's rows from each slot's ``(B, D)`` features and Lipschitz
#: bound (files of one shape per slot).
ScoreBatch = Callable[[list[Tensor], list[float], list[FileSet]], list[dict[str, Any]]]
#: What a ``--out`` file may be: one row per item as CSV, or one JSON object per line.
ROW_FORMATS: tuple[str, ...] = (".csv", ".jsonl")


def check_rows_file(path: str | None) -> Path | None:
    """``--out`` checked before any work: a ``.csv`` or ``.jsonl`` file that can be written."""
    if path is None:
        return None
    if Path(path).suffix.lower() not in ROW_FORMATS and not Path(path).is_dir():
        raise ValueError(f"--out must name a .csv or .jsonl file (one row per item), got {path}")
    return check_writable(path, "scores file")


class _Files(Dataset):
    """The decoded images of each item, or the reason they cannot be read (decoding runs in loader workers)."""

    def __init__(self, items: Sequence[FileSet]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, list[Tensor] | None, str]:
        try:
            return index, [read_image(path) for path in self.items[index].paths], ""
        except (OSError, ValueError) as error:
            return index, None, describe_error(error).split("\n")[0]


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


@dataclass
class Scored:
    """This process's share of a run: rows (rank 0: every row, by item), and the batches' own results."""

    rows: list[dict[str, Any]]
    failed: int
    stopped: bool

    def only_row(self) -> dict[str, Any]:
        """The row of a run of one item; its error, if it failed, as a ValueError."""
        row = self.rows[0]
        if row["error"]:
            raise ValueError(row["error"])
        return row


def score_items(
    items: Sequence[FileSet],
    slots: Sequence[str],
    score: ScoreBatch,
    options: argparse.Namespace,
    *,
    backbone: LipSimBackbone,
    processes: DistributedContext,
    single: bool,
    label: str,
) -> Scored:
    """Rows for ``items`` (one per item, in item order, on rank 0; ``"error"`` empty or the reason), computed
    by ``score`` a shape-grouped batch at a time. ``slots`` name the files of an item (``("image_a", "image_b")``).
    The command's ``options`` give ``batch_size``, ``workers`` (None: one loader worker, none for a ``single``
    item), ``no_progress`` (a single item shows none) and ``on_error`` (``"stop"``: the run ends at the first item
    that fails, every process with it)."""
    batch_size, on_error = options.batch_size, options.on_error
    workers = (0 if single else 1) if options.workers is None else options.workers
    progress = not options.no_progress and not single
    rows: list[dict[str, Any]] = []
    shapes: dict[tuple, list[int]] = {}
    unreadable = 0
    for index, item in enumerate(items):  # headers only, on every process: a bad header fails its item at once
        try:
            key = tuple(image_shape(path) for path in item.paths)
        except (OSError, ValueError) as error:
            unreadable += 1
            if processes.is_main:
                rows.append(_error_row(index, item, slots, describe_error(error).split("\n")[0]))
            continue
        shapes.setdefault(key, []).append(index)
    batches = [group[i : i + batch_size] for group in shapes.values() for i in range(0, len(group), batch_size)]
    batches.sort(key=lambda batch: batch[0])
    sharded = ShardedBatches.of(batches, rank=processes.rank, world_size=processes.world_size)
    stopped = on_error == "stop" and unreadable > 0
    label += f" (rank 0 of {processes.world_size})" if processes.world_size > 1 else ""
    bar = Progress(sharded.size(), label=label, enabled=progress and processes.is_main, unit="items")
    loader = DataLoader(_Files(items), batch_sampler=sharded, num_workers=workers, collate_fn=_as_list)
    batches_read = iter(loader)
    rounds = 0 if stopped else -(-len(batches) // processes.world_size)  # the most batches any process reads
    try:
        for _ in range(rounds):  # every process runs every round, so the stop check is one collective per round
            batch = next(batches_read, None) or []
            good = [(index, images) for index, images, error in batch if not error]
            rows += [_error_row(index, items[index], slots, error) for index, _, error in batch if error]
            if good:
                rows += _score_batch(good, items, slots, score, backbone)
            bar.update(len(batch))
            if on_error == "stop" and any_rank(any(row["error"] for row in rows), processes):
                stopped = True
                break
    finally:
        bar.close()
    rows = sorted(gather_lists(rows, processes), key=lambda row: row["index"])
    return Scored(rows, sum(1 for row in rows if row["error"]), stopped)


def _score_batch(
    good: list[tuple[int, list[Tensor]]],
    items: Sequence[FileSet],
    slots: Sequence[str],
    score: ScoreBatch,
    backbone: LipSimBackbone,
) -> list[dict[str, Any]]:
    indices = [index for index, _ in good]
    features, bounds = [], []
    for s, name in enumerate(slots):
        batch = torch.cat([images[s] for _, images in good])
        slot_features, bound = file_features(backbone, batch, f"{name} ({items[indices[0]].names[s]})")
        features.append(slot_features)
        bounds.append(bound)
    batch_rows = score(features, bounds, [items[i] for i in indices])
    for index, row in zip(indices, batch_rows, strict=True):
        row.update(index=index, error="")
    return batch_rows


def _error_row(index: int, item: FileSet, slots: Sequence[str], error: str) -> dict[str, Any]:
    return {"index": index, **dict(zip(slots, item.names, strict=True)), "error": error}


def write_rows(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` (missing values empty) as CSV or JSON lines (by ``path``'s suffix), written atomically."""
    with atomic_file(path, "scores file", text=True) as handle:
        if path.suffix.lower() == ".jsonl":
            for row in rows:
                handle.write(json.dumps(json_safe({c: row.get(c) for c in columns}), allow_nan=False) + "\n")
            return
        handle.write(rows_as_csv(rows, columns))


def rows_as_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV text (for standard output)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: _cell(row.get(c)) for c in columns} for row in rows)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def report_rows(
    command: str,
    scored: Scored,
    listing: Listing,
    columns: Sequence[str],
    summary: dict[str, Any],
    lines: Sequence[str],
    *,
    out: Path | None,
    as_json: bool,
) -> int:
    """The end of a run of many items: the rows (to ``out``, else CSV on standard output), then the ``summary``
    (JSON) or its text ``lines`` with what the listing left out (on standard error when the rows took standard
    output). Exit status 1 when an item failed. A run stopped at its first failure writes no rows file."""
    failure = next((row["error"] for row in scored.rows if row["error"]), "")
    if scored.stopped:
        print(f"lipsim {command}: error: {failure}", file=sys.stderr)
        print("  stopped at the first failure (--on-error stop); no rows were written", file=sys.stderr)
        return 1
    if out is not None:
        write_rows(out, scored.rows, columns)
    elif not as_json:
        sys.stdout.write(rows_as_csv(scored.rows, columns))
    summary = {**summary, "left_out": listing.left_out, "out": None if out is None else str(out)}
    if as_json:
        rows = [{c: row.get(c) for c in columns} for row in scored.rows]
        write_json({**summary, **({} if out is not None else {"rows": rows})}, None)
        return 1 if scored.failed else 0
    stream = sys.stdout if out is not None else sys.stderr
    for reason, names in listing.left_out.items():
        shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
        print(f"left out, {reason}: {len(names)}: {shown}", file=stream)
    print("\n".join(lines) + (f"\nrows in {out}" if out is not None else ""), file=stream)
    return 1 if scored.failed else 0
