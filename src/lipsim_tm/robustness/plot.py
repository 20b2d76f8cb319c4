"""PNG plot of a robustness report: accuracy against the l2 budget, certified curve below the empirical one."""

from __future__ import annotations

import os
from pathlib import Path

from lipsim_tm.robustness.report import RobustnessReport

MATPLOTLIB_MISSING = (
    "matplotlib is not installed, so no plot was written; install it with `pip install lipsim-tm[plot]`"
    " (the table and JSON do not need it)"
)


def plot_report(report: RobustnessReport, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as a PNG at ``path``: empirical and certified accuracy (%) against eps.

    Raises:
        ImportError: matplotlib is not installed (message :data:`MATPLOTLIB_MISSING`).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(MATPLOTLIB_MISSING) from error
    eps = [row.eps for row in report.rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    try:
        axes.axhline(100 * report.natural, color="gray", linestyle=":", label="natural")
        axes.plot(eps, [100 * r.empirical for r in report.rows], "o-", color="C0", label="empirical (reference)")
        axes.plot(eps, [100 * r.certified for r in report.rows], "s--", color="C1", label="certified (reference)")
        if all(r.empirical_all is not None for r in report.rows):
            axes.plot(eps, [100 * r.empirical_all for r in report.rows], "o-", color="C2", label="empirical (all)")
            axes.plot(eps, [100 * r.certified_all for r in report.rows], "s--", color="C3", label="certified (all)")
        axes.set_xlabel("l2 budget eps (pixels in [0, 1])")
        axes.set_ylabel("2AFC accuracy (%)")
        axes.set_ylim(0, 100)
        axes.set_title(f"LipSim robustness ({report.decided} decided triplets, {report.attack.get('method')})")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower left")
        figure.tight_layout()
        path = Path(path)
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path
