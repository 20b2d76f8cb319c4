"""The one plotting path of the package: line plots of accuracy against a budget, drawn by matplotlib.

matplotlib is optional (``pip install "lipsim-tm[plot]"``); without it every function here raises
``ImportError`` with :data:`MATPLOTLIB_MISSING`, and callers still write their tables and JSON. Figures are
built without ``pyplot`` (no global figure state, no GUI backend) and saved as PNG by the Agg renderer.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipsim_tm.files import atomic_file

MATPLOTLIB_MISSING = (
    "matplotlib is not installed, so no plot was written; install it with `pip install lipsim-tm[plot]`"
    " (the table and JSON do not need it)"
)


@dataclass(frozen=True)
class Series:
    """One curve: ``values`` at the plot's ``x``; ``dashed`` draws it dashed with square markers; ``colour`` a
    matplotlib colour (default: the next of the cycle), so related curves can share one."""

    label: str
    values: Sequence[float]
    dashed: bool = False
    colour: str | None = None


def _new_figure() -> Any:
    """A 7.6 x 5 in figure at 100 dpi on an Agg (PNG) canvas, outside ``pyplot``."""
    try:
        import matplotlib  # noqa: F401  (first: a blocked top-level package must fail even with submodules loaded)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(MATPLOTLIB_MISSING) from error
    figure = Figure(figsize=(7.6, 5.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _check(x: Sequence[float], series: Sequence[Series]) -> None:
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 values, got {len(x)}")
    if not all(math.isfinite(v) for v in x) or any(b <= a for a, b in itertools.pairwise(x)):
        raise ValueError(f"x must be finite and strictly increasing, got {list(x)}")
    if not series:
        raise ValueError("series must hold at least one curve")
    for curve in series:
        if len(curve.values) != len(x):
            raise ValueError(f"curve {curve.label!r} has {len(curve.values)} values for {len(x)} x values")
        if not all(math.isfinite(v) for v in curve.values):
            raise ValueError(f"curve {curve.label!r} must hold finite values, got {list(curve.values)}")


def line_figure(
    x: Sequence[float],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    baseline: tuple[str, float] | None = None,
) -> Any:
    """A matplotlib ``Figure`` (7.6 x 5 in): ``series`` against ``x``, an optional labelled horizontal ``baseline``.

    The legend sits below the axes, so a long legend never covers the curves or leaves the figure. Raises
    ``ValueError`` for fewer than 2 or unsorted ``x``, a curve of the wrong length or non-finite values, and
    ``ImportError`` (:data:`MATPLOTLIB_MISSING`) without matplotlib.
    """
    _check(x, series)
    figure = _new_figure()
    axes = figure.add_subplot()
    if baseline is not None:
        axes.axhline(baseline[1], color="gray", linestyle=":", label=baseline[0])
    for index, curve in enumerate(series):
        style = "s--" if curve.dashed else "o-"
        colour = curve.colour or f"C{index}"
        axes.plot(list(x), list(curve.values), style, color=colour, label=curve.label, markersize=4)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_ylim(*y_range)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    columns = min(3, len(series) + (baseline is not None))
    figure.legend(loc="outside lower center", ncols=columns, fontsize=8, frameon=False)
    return figure


def save_png(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``figure`` as a PNG at ``path`` (parent folders created; atomically, see
    :func:`~lipsim_tm.files.atomic_file`) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "plot") as handle:
        figure.savefig(handle, format="png")
    return path


def line_plot(path: str | os.PathLike[str], x: Sequence[float], series: Sequence[Series], **options: Any) -> Path:
    """:func:`line_figure` with ``options`` saved as a PNG at ``path``; nothing is written when it raises."""
    return save_png(line_figure(x, series, **options), path)
