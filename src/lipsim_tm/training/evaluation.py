"""End-of-epoch 2AFC evaluation: natural 2AFC score and certified 2AFC accuracies at given radii.

:func:`evaluate_2afc` is what the fine-tuning loop calls. It runs the metric class
:class:`~lipsim_tm.metrics.Certified2AFCAccuracy` (sharing the trained backbone, which it never
modifies), so training reports exactly what the metric reports, for every normalisation (``"plain"``
``v / ||v||`` is certified by the norm-aware rule): one implementation of the score, the ties and the
certificates with their floating-point slack.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from lipsim_tm.models.backbone import LipSimBackbone


@torch.no_grad()
def evaluate_2afc(
    backbone: LipSimBackbone,
    dataset: Dataset,
    *,
    normalization: str = "augment",
    distance: str = "cosine",
    radii: Sequence[float] = (),
    batch_size: int = 64,
    max_triplets: int | None = None,
) -> dict[str, float]:
    """The scores of :class:`~lipsim_tm.metrics.Certified2AFCAccuracy` over ``dataset`` (radii default: the paper's).

    Any normalisation; ``"plain"`` is certified by the norm-aware rule. The backbone's mode is restored.
    """
    from lipsim_tm.metrics import Certified2AFCAccuracy
    from lipsim_tm.metrics.evaluation import evaluate_2afc as feed

    metric = Certified2AFCAccuracy(
        weights=backbone, epsilons=tuple(radii) or None, normalization=normalization, distance=distance
    ).to(next(backbone.parameters()).device)
    was_training = backbone.training
    backbone.eval()
    try:
        scores = feed(dataset, {"val": metric}, batch_size=batch_size, limit=max_triplets)["val"]
        return {key: float(value) for key, value in scores.items()}
    finally:
        backbone.train(was_training)
