"""End-of-epoch 2AFC evaluation: natural 2AFC score and certified 2AFC accuracies at given radii.

:func:`evaluate_2afc` is what the fine-tuning loop calls. With a sound normalisation it uses the
metric class :class:`~lipsim_tm.metrics.Certified2AFCAccuracy` (sharing the trained backbone, which
it never modifies), so training reports exactly what the metric reports. With ``"plain"``
normalisation, which the metric refuses, only the natural score is computed, by
:func:`natural_2afc_evaluation`; certified numbers come from the metric only (one implementation of
the certificates, with its floating-point slack).

The 2AFC score of a triplet (``p`` = fraction judging ``img1`` closer) is
``(d0 < d1)(1 - p) + (d1 < d0) p + 0.5 [d0 == d1]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lipsim_tm.backbone import LipSimBackbone
from lipsim_tm.functional import SOUND_NORMALIZATIONS, distance_from_embeddings, normalize_embedding


def triplet_scores(d0: Tensor, d1: Tensor, p: Tensor) -> Tensor:
    """Per-triplet 2AFC agreement ``(N,)`` from distances ``d0, d1`` and human fractions ``p``."""
    return (d0 < d1).to(p.dtype) * (1 - p) + (d1 < d0).to(p.dtype) * p + 0.5 * (d0 == d1).to(p.dtype)


def _subset(dataset: Dataset, max_triplets: int | None) -> Dataset:
    if max_triplets is not None and max_triplets < len(dataset):
        return Subset(dataset, range(max_triplets))
    return dataset


@torch.no_grad()
def natural_2afc_evaluation(
    backbone: LipSimBackbone,
    dataset: Dataset,
    *,
    normalization: str = "augment",
    distance: str = "cosine",
    batch_size: int = 64,
    max_triplets: int | None = None,
) -> dict[str, float]:
    """``{"2afc": ...}``, the natural score only, from the functional pieces (any normalisation)."""
    was_training = backbone.training
    backbone.eval()
    param = next(backbone.parameters())
    total, count = 0.0, 0
    for ref, img0, img1, p in DataLoader(_subset(dataset, max_triplets), batch_size=batch_size):
        n = ref.shape[0]
        images = torch.cat([ref, img0, img1]).to(device=param.device, dtype=param.dtype)
        phi = normalize_embedding(backbone(images), normalization)
        phi_ref, phi0, phi1 = phi[:n], phi[n : 2 * n], phi[2 * n :]
        p = p.to(device=param.device, dtype=torch.float64)
        d0 = distance_from_embeddings(phi_ref, phi0, distance)
        d1 = distance_from_embeddings(phi_ref, phi1, distance)
        total += float(triplet_scores(d0, d1, p).sum())
        count += n
    backbone.train(was_training)
    if count == 0:
        raise ValueError("the evaluation dataset is empty")
    return {"2afc": total / count}


@torch.no_grad()
def metric_2afc_evaluation(
    backbone: LipSimBackbone,
    dataset: Dataset,
    *,
    normalization: str = "augment",
    distance: str = "cosine",
    radii: Sequence[float] = (),
    batch_size: int = 64,
    max_triplets: int | None = None,
) -> dict[str, float]:
    """The scores of :class:`~lipsim_tm.metrics.Certified2AFCAccuracy` over ``dataset`` (radii default: the paper's)."""
    from lipsim_tm.metrics import Certified2AFCAccuracy

    param = next(backbone.parameters())
    metric = Certified2AFCAccuracy(
        weights=backbone, epsilons=tuple(radii) or None, normalization=normalization, distance=distance
    ).to(param.device)
    was_training = backbone.training
    backbone.eval()
    try:
        for ref, img0, img1, p in DataLoader(_subset(dataset, max_triplets), batch_size=batch_size):
            metric.update(ref.to(param.device), img0.to(param.device), img1.to(param.device), p.to(param.device))
        return {key: float(value) for key, value in metric.compute().items()}
    finally:
        backbone.train(was_training)


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
    """The fine-tuning loop's evaluation; see the module docstring."""
    kwargs = {"distance": distance, "batch_size": batch_size, "max_triplets": max_triplets}
    if normalization in SOUND_NORMALIZATIONS:
        return metric_2afc_evaluation(backbone, dataset, normalization=normalization, radii=radii, **kwargs)
    if radii:
        raise ValueError(
            f"certified scores need a 1-Lipschitz normalization {SOUND_NORMALIZATIONS}, got {normalization!r}"
        )
    return natural_2afc_evaluation(backbone, dataset, normalization=normalization, **kwargs)


__all__ = [
    "evaluate_2afc",
    "metric_2afc_evaluation",
    "natural_2afc_evaluation",
    "triplet_scores",
]
