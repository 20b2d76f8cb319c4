"""Functional LipSim: embeddings, distances, 2AFC decisions and their certificates, one call each.

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

Layout (torchmetrics' ``functional/image`` shape): :mod:`.preprocessing` (pixels -> backbone input, its exact
operator norm) -> :mod:`.embedding` (features and the Lipschitz bound) -> :mod:`.normalization` ->
:mod:`.distance` and :mod:`.two_afc` (each a core of ``_update``/``_compute`` functions, called by every metric,
command and report, and the functional forms), with :mod:`.certificates` and :mod:`.confidence` beneath them.
"""

from lipsim_tm.functional.distance import (
    DistanceInterval,
    certified_distance_interval,
    distance_from_embeddings,
    lipsim_distance,
)
from lipsim_tm.functional.embedding import lipsim_embedding
from lipsim_tm.functional.normalization import normalize_embedding
from lipsim_tm.functional.preprocessing import resize_operator_norm
from lipsim_tm.functional.two_afc import TwoAFCResult, two_afc

__all__ = [
    "DistanceInterval",
    "TwoAFCResult",
    "certified_distance_interval",
    "distance_from_embeddings",
    "lipsim_distance",
    "lipsim_embedding",
    "normalize_embedding",
    "resize_operator_norm",
    "two_afc",
]
