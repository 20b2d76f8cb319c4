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


def _estimate(e: Any) -> str:
    return "     n/a" if e.total == 0 else f"{e.value:.4f} [{e.low:.4f}, {e.high:.4f}]"


def summary_table(parts: list[tuple[str, Any]], paper: dict[str, Any]) -> list[str]:
    """Text table of 2AFC summaries ``(name, TwoAFCSummary)``: counts, score, natural accuracy, then certified
    accuracy per eps; ``paper`` (numbers a paper reports: ``score``, ``certified``, ``note``) beside them."""
    lines = [
        f"{'subset':<14}{'triplets':>9}{'decided':>9}  {'2AFC score (soft) [95%]':<26}  {'natural accuracy [95%]':<26}"
    ]
    for name, s in parts:
        score, natural = _estimate(s.score_2afc), _estimate(s.natural_accuracy)
        lines.append(f"{name:<14}{s.triplets:>9}{s.decided:>9}  {score:<26}  {natural:<26}")
    if "score" in paper:
        lines.append(f"{'paper':<14}{'':>9}{'':>9}  {paper['score']:<26.4f}")
    lines.append("certified accuracy (decided triplets predicted correctly with certified radius > eps) [95%]:")
    lines.append(
        f"{'eps (l2, [0, 1] pixels)':<24}{'subset':<14}{'reference perturbed':<26}  {'all three perturbed':<26}"
    )
    certified_paper = paper.get("certified", {})
    for i, row in enumerate(parts[0][1].rows):
        for name, s in parts:
            r = s.rows[i]
            lines.append(f"{describe_eps(r.eps):<24}{name:<14}{_estimate(r.reference):<26}  {_estimate(r.all):<26}")
        match = [v for eps, v in certified_paper.items() if abs(eps - row.eps) < 1e-9]
        if match:
            lines.append(f"{'':<24}{'paper':<14}{match[0]:<26.4f}")
    if "note" in paper:
        lines.append(f"paper: {paper['note']}")
    return lines
