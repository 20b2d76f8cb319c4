"""Functional LipSim API: embeddings, distances, 2AFC decisions and their certificates.

Guarantees (``L`` = backbone Lipschitz bound x l2 operator norm of the preprocessing, so every
statement is in the caller's pixel units; normalisation ``"augment"`` or ``"ball"``):

- embeddings: ``||phi(x) - phi(x')|| <= L ||x - x'||`` (:func:`lipsim_embedding`);
- ``"l2"`` distance: ``|d(x', y) - d(x, y)| <= L ||x' - x||``; ``"cosine"`` (``1 - cos``) with
  ``"augment"``: the same bound; ``"cosine"`` with ``"ball"`` (squared-l2 / 2): the interval of
  :func:`certified_distance_interval`;
- 2AFC: no perturbation of the reference of l2 norm below ``radius_reference`` (of each image below
  ``radius_all``) changes the decision (:func:`two_afc`); ties have radius 0.

Certificates use ``certificate="norm_aware"`` by default: the larger of the radius above and the
norm-aware one, which uses the norm of the embedding before normalisation
(:mod:`~lipsim_tm.functional.certificates`); ``certificate="plain"`` gives the 1-Lipschitz radius only.
``"plain"`` (``v / ||v||``, not 1-Lipschitz) is certified by the norm-aware rule only. Networks named by
``weights`` are built once and cached per device (:mod:`lipsim_tm.models.weights`).
"""

from lipsim_tm.functional.certificates import CERTIFICATES
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
    "CERTIFICATES",
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
