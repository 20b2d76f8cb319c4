"""How the commands report: budgets as users type them, strict JSON, and progress lines on stderr."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO


def describe_eps(eps: float) -> str:
    """``0.1412 (36/255)`` when ``eps`` is a whole number of 1/255 steps, else ``0.1412``."""
    steps = eps * 255
    whole = round(steps)
    return f"{eps:.4g} ({whole}/255)" if whole > 0 and abs(steps - whole) < 1e-6 else f"{eps:.4g}"


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, e.g. a certified accuracy with no decided triplet) as ``None``."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def write_json(data: Any, path: str | os.PathLike[str] | None) -> None:
    """Write ``data`` as indented strict JSON (NaN as null) to ``path`` (parents created), or print it if None."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False)
    if path is None:
        print(text)
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json must name a file, got the folder {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


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
