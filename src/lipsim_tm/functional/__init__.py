"""Functional LipSim API: embeddings, distances, 2AFC decisions and their certificates."""

from lipsim_tm.functional.distance import DISTANCES, distance_from_embeddings
from lipsim_tm.functional.normalization import NORMALIZATIONS, SOUND_NORMALIZATIONS, normalize_embedding

__all__ = [
    "DISTANCES",
    "NORMALIZATIONS",
    "SOUND_NORMALIZATIONS",
    "distance_from_embeddings",
    "normalize_embedding",
]
