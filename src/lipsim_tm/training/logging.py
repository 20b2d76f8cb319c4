"""Run logs: a CSV file of metrics per logged step, and a progress bar with loss and images/s.

On a terminal the progress bar uses ``tqdm`` when it is installed and a plain single-line display otherwise;
elsewhere (a file, a pipe, a CI log) it writes a plain line at each tenth of the run, never a carriage return.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from lipsim_tm.files import CAUSES, WriteError, atomic_write_text


class CSVLogger:
    """Appends rows to a CSV file; the header is written once and new columns are refused.

    Appending (not truncating) lets a resumed run continue the log of the run it resumes. A run killed while
    appending can leave an unfinished last line: it is dropped (with a note) when the log is opened again.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fieldnames: list[str] | None = None
        if self.path.is_file() and self.path.stat().st_size > 0:
            self._drop_unfinished_line()
            self.fieldnames = self._read()[0]

    def _read(self) -> tuple[list[str] | None, list[dict[str, str]]]:
        """The header and rows of the log; a ValueError naming the file when it is not a CSV log."""
        try:
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                return reader.fieldnames, list(reader)
        except (UnicodeDecodeError, csv.Error) as error:
            raise self._damaged(error) from None

    def _damaged(self, reason: object) -> ValueError:
        return ValueError(
            f"cannot read the training log {self.path}: it is damaged ({reason}); move it aside to continue the run"
            " (a new log starts at the resumed step)"
        )

    def _drop_unfinished_line(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        if text.endswith("\n"):
            return
        atomic_write_text(self.path, text[: text.rfind("\n") + 1], "training log")
        print(f"note: dropped the unfinished last line of {self.path} (the run stopped while writing it)",
              file=sys.stderr)  # fmt: skip

    def drop_after(self, step: int) -> None:
        """Remove the rows of steps after ``step`` (a resumed run redoes them, so its log never repeats a step)."""
        if self.fieldnames is None:
            return
        rows = self._read()[1]
        try:
            kept = [row for row in rows if int(row["step"]) <= step]
        except (KeyError, TypeError, ValueError) as error:
            raise self._damaged(f"a row without a step number: {error}") from None
        if len(kept) == len(rows):
            return
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, self.fieldnames)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(self.path, text.getvalue(), "training log")

    def log(self, row: dict[str, float | int | str]) -> None:
        if self.fieldnames is None:
            self.fieldnames = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = io.StringIO(newline="")
            csv.writer(header).writerow(self.fieldnames)
            atomic_write_text(self.path, header.getvalue(), "training log")
        unknown = [k for k in row if k not in self.fieldnames]
        if unknown:
            raise ValueError(f"log row has columns {unknown} that are not in {self.path}'s header {self.fieldnames}")
        line = io.StringIO(newline="")
        csv.DictWriter(line, self.fieldnames).writerow(row)
        try:
            with self.path.open("a", newline="", encoding="utf-8") as handle:
                handle.write(line.getvalue())  # one write: a crash leaves at most one unfinished line
        except OSError as error:
            cause = CAUSES.get(error.errno or 0, error.strerror or str(error))
            raise WriteError(
                f"cannot append to the training log {self.path}: {cause}\n--resume latest continues from the last"
                " checkpoint",
                error.errno,
            ) from error


class ProgressBar:
    """Progress over ``total`` steps showing the latest loss and the throughput in images/s."""

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        description: str = "train",
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.count = initial
        self.description = description
        self.enabled = enabled
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self._start = time.perf_counter()
        self._images = 0
        self._tqdm = None
        self._tenths = 10 * initial // total if total else 0  # tenths of the run already written (non-terminal)
        if enabled and self.interactive:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._tqdm = tqdm(total=total, initial=initial, desc=description, file=self.stream, dynamic_ncols=True)

    @property
    def images_per_second(self) -> float:
        elapsed = time.perf_counter() - self._start
        return self._images / elapsed if elapsed > 0 else 0.0

    def update(self, images: int, loss: float) -> None:
        """One step done on ``images`` images (all ranks together) with training ``loss``."""
        self.count += 1
        self._images += images
        if not self.enabled:
            return
        stats = f"loss={loss:.4g} img/s={self.images_per_second:.1f}"
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(stats, refresh=False)
            self._tqdm.update(1)
            return
        if self.interactive:
            self.stream.write(f"\r{self.description} {self.count}/{self.total} {stats}")
        else:
            tenths = 10 * self.count // self.total if self.total else 10
            if tenths <= self._tenths:
                return
            self._tenths = tenths
            self.stream.write(f"{self.description} {self.count}/{self.total} {stats}\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.interactive:
            self.stream.write("\n")
            self.stream.flush()
