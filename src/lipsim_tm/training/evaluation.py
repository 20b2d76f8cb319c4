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
from torch.utils.data import DataLoader, Dataset, Subset

from lipsim_tm.models.backbone import LipSimBackbone


def _subset(dataset: Dataset, max_triplets: int | None) -> Dataset:
    if max_triplets is not None and max_triplets < len(dataset):
        return Subset(dataset, range(max_triplets))
    return dataset


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

    dataset = _subset(dataset, max_triplets)
    if len(dataset) == 0:
        raise ValueError("the evaluation dataset is empty")
    param = next(backbone.parameters())
    metric = Certified2AFCAccuracy(
        weights=backbone, epsilons=tuple(radii) or None, normalization=normalization, distance=distance
    ).to(param.device)
    was_training = backbone.training
    backbone.eval()
    try:
        for ref, img0, img1, p in DataLoader(dataset, batch_size=batch_size):
            metric.update(ref.to(param.device), img0.to(param.device), img1.to(param.device), p.to(param.device))
        return {key: float(value) for key, value in metric.compute().items()}
    finally:
        backbone.train(was_training)


__all__ = ["evaluate_2afc"]
