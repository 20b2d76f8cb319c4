"""Functional LipSim API: embeddings, distances, 2AFC decisions and their certificates."""

from lipsim_tm.functional.distance import DISTANCES, REDUCTIONS, distance_from_embeddings, lipsim_distance
from lipsim_tm.functional.embedding import lipsim_embedding
from lipsim_tm.functional.normalization import NORMALIZATIONS, SOUND_NORMALIZATIONS, normalize_embedding
from lipsim_tm.functional.preprocessing import INTERPOLATIONS, Preprocessing, resize_operator_norm
from lipsim_tm.functional.two_afc import (
    DistanceInterval,
    TwoAFCResult,
    certified_distance_interval,
    two_afc,
)

__all__ = [
    "DISTANCES",
    "INTERPOLATIONS",
    "NORMALIZATIONS",
    "REDUCTIONS",
    "SOUND_NORMALIZATIONS",
    "DistanceInterval",
    "Preprocessing",
    "TwoAFCResult",
    "certified_distance_interval",
    "distance_from_embeddings",
    "lipsim_distance",
    "lipsim_embedding",
    "normalize_embedding",
    "resize_operator_norm",
    "two_afc",
]
