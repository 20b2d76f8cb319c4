"""Robustness of LipSim on 2AFC data: natural / certified / empirical accuracy reports and certificate audits.

from lipsim_tm.data import Synthetic2AFCDataset
from lipsim_tm.robustness import plot_report, robustness_report

data = Synthetic2AFCDataset("photos/", image_size=32, length=64)
report = robustness_report(data, weights="export.pt", epsilons=(0.0, 0.1, 0.3), steps=20)
print(report.table()); report.save_json("robustness.json"); plot_report(report, "robustness.png")
"""

from lipsim_tm.robustness.audit import audit, audit_distance
from lipsim_tm.robustness.plot import plot_report
from lipsim_tm.robustness.report import RobustnessReport, robustness_report

__all__ = ["RobustnessReport", "audit", "audit_distance", "plot_report", "robustness_report"]
