"""LipSim as torchmetrics metrics."""

from lipsim_tm.metrics.certified_2afc import Certified2AFCAccuracy
from lipsim_tm.metrics.lipsim_distance import LipSimDistance

__all__ = ["Certified2AFCAccuracy", "LipSimDistance"]
