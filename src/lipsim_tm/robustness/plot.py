"""PNG plot of a robustness report: accuracy against the l2 budget, certified curve below the empirical one."""

from __future__ import annotations

import os
from pathlib import Path

from lipsim_tm.plotting import Series, line_plot
from lipsim_tm.robustness.report import RobustnessReport


def plot_report(report: RobustnessReport, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as a PNG at ``path``: empirical and certified accuracy (%) against eps.

    Raises:
        ImportError: matplotlib is not installed (message :data:`~lipsim_tm.plotting.MATPLOTLIB_MISSING`).
    """
    rows = report.rows
    series = [
        Series("empirical (reference)", [100 * r.empirical for r in rows]),
        Series("certified (reference)", [100 * r.certified for r in rows], dashed=True),
    ]
    if all(r.empirical_all is not None for r in rows):
        series.append(Series("empirical (all)", [100 * r.empirical_all for r in rows]))
        series.append(Series("certified (all)", [100 * r.certified_all for r in rows], dashed=True))
    return line_plot(
        path,
        [row.eps for row in rows],
        series,
        title=f"LipSim robustness ({report.decided} decided triplets, {report.attack.get('method')})",
        x_label="l2 budget eps (pixels in [0, 1])",
        y_label="2AFC accuracy (%)",
        y_range=(0.0, 100.0),
        baseline=("natural accuracy", 100 * report.natural_accuracy),
    )
