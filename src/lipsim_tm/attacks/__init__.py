"""Attacks on perceptual distances: l2/l_inf PGD and APGD, for 2AFC flips, distance changes and retrieval.

Budgets are in the user's pixel space (per image), and every iterate stays in the valid range.
"""

from lipsim_tm.attacks.apgd import apgd
from lipsim_tm.attacks.api import METHODS, TWO_AFC_TARGETS, attack_2afc, attack_distance
from lipsim_tm.attacks.budget import NORMS, make_feasible
from lipsim_tm.attacks.objectives import DistanceChange, TopOneChange, TwoAFCFlip
from lipsim_tm.attacks.pgd import SCHEDULES, pgd
from lipsim_tm.attacks.problem import AttackResult, Objective

__all__ = [
    "METHODS",
    "NORMS",
    "SCHEDULES",
    "TWO_AFC_TARGETS",
    "AttackResult",
    "DistanceChange",
    "Objective",
    "TopOneChange",
    "TwoAFCFlip",
    "apgd",
    "attack_2afc",
    "attack_distance",
    "make_feasible",
    "pgd",
]
