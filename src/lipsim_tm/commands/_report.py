"""How the commands report: budgets as users type them, strict JSON, and progress lines on stderr."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, TextIO

from lipsim_tm.files import atomic_write_text, check_writable


def describe_error(error: BaseException) -> str:
    """What went wrong, in words: an error the operating system raised names its file and cause without the
    ``[Errno N]`` prefix; others give their message."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror[0].lower()}{error.strerror[1:]}"
    return str(error) or type(error).__name__


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, e.g. a certified accuracy with no decided triplet) as ``None``."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def write_json(data: Any, path: str | os.PathLike[str] | None, what: str = "JSON report") -> None:
    """Write ``data`` as indented strict JSON (NaN as null) to ``path`` (parents created, atomically), or print it
    if None."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False)
    if path is None:
        print(text)
        return
    path = check_writable(path, what)
    atomic_write_text(path, text + "\n", what)


class Progress:
    """Progress ``label [####....] done/total unit (rate/s)`` on ``stream`` (default stderr).

    On a terminal one line is rewritten in place (``\\r``); elsewhere (a file, a pipe, a CI log) a plain line is
    written at each tenth of the way and at the end, so redirected output holds no carriage returns.
    """

    #: At most this many lines go to a non-terminal stream over a whole run.
    STEPS = 10

    def __init__(
        self, total: int, *, label: str, enabled: bool = True, stream: TextIO | None = None, unit: str = "triplets"
    ) -> None:
        self.total, self.label, self.enabled, self.unit = total, label, enabled, unit
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.done = 0
        self.written = 0  # steps of the way already written (non-terminal)
        self.start = time.perf_counter()

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        width = 24
        filled = min(width, round(width * self.done / self.total)) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        return f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} ({rate:.1f}/s)"

    def update(self, count: int) -> None:
        """``count`` more triplets done."""
        self.done += count
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write(f"\r{self._line()}")
        else:
            step = self.STEPS * self.done // self.total if self.total else self.STEPS
            if step <= self.written:
                return
            self.written = step
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
            self.stream.flush()
