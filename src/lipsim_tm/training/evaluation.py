"""End-of-epoch 2AFC evaluation: natural 2AFC score and certified 2AFC accuracies at given radii.

:func:`evaluate_2afc` is what the fine-tuning loop calls. With a sound normalisation it uses the
metric class :class:`~lipsim_tm.metrics.Certified2AFCAccuracy` (sharing the trained backbone, which
it never modifies), so training reports exactly what the metric reports. With ``"plain"``
normalisation, which the metric refuses, only the natural score is computed, by
:func:`functional_2afc_evaluation`.

Definitions (the metric's): the 2AFC score of a triplet (``p`` = fraction judging ``img1`` closer) is
``(d0 < d1)(1 - p) + (d1 < d0) p + 0.5 [d0 == d1]``. ``certified_2afc@<eps>`` is the fraction of
triplets with ``p != 0.5`` that are predicted as the majority judged and whose reference-only radius
``R / L`` exceeds ``eps`` (``R = |s0 - s1| / ||phi0 - phi1||``, ``s_i = ||phi(ref) - phi_i||^2 / 2``,
``L`` the backbone's Lipschitz bound); ties are never certified.
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


def certified_radius(phi_ref: Tensor, phi0: Tensor, phi1: Tensor) -> Tensor:
    """Radius ``(N,)`` in embedding space within which the 2AFC decision cannot change (0 on ties)."""
    s0 = distance_from_embeddings(phi_ref, phi0, "cosine")
    s1 = distance_from_embeddings(phi_ref, phi1, "cosine")
    gap = (phi0 - phi1).norm(dim=1)
    safe_gap = torch.where(gap > 0, gap, torch.ones_like(gap))
    return torch.where(gap > 0, (s0 - s1).abs() / safe_gap, torch.zeros_like(gap))


def _subset(dataset: Dataset, max_triplets: int | None) -> Dataset:
    if max_triplets is not None and max_triplets < len(dataset):
        return Subset(dataset, range(max_triplets))
    return dataset


@torch.no_grad()
def functional_2afc_evaluation(
    backbone: LipSimBackbone,
    dataset: Dataset,
    *,
    normalization: str = "augment",
    distance: str = "cosine",
    radii: Sequence[float] = (),
    batch_size: int = 64,
    max_triplets: int | None = None,
) -> dict[str, float]:
    """``{"2afc": ..., "certified_2afc@<eps:.4g>": ...}`` from the functional pieces (definitions above)."""
    if radii and normalization not in SOUND_NORMALIZATIONS:
        raise ValueError(
            f"certified scores need a 1-Lipschitz normalization {SOUND_NORMALIZATIONS}, got {normalization!r}"
        )
    was_training = backbone.training
    backbone.eval()
    param = next(backbone.parameters())
    total, count, decided = 0.0, 0, 0
    certified = [0.0 for _ in radii]
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
        decided += int((p != 0.5).sum())
        if radii:
            correct = (p != 0.5) & (d0 != d1) & ((d1 < d0) == (p > 0.5))
            radius = certified_radius(phi_ref, phi0, phi1) / backbone.lipschitz_bound
            for i, eps in enumerate(radii):
                certified[i] += float((correct & (radius > eps)).sum())
    backbone.train(was_training)
    if count == 0:
        raise ValueError("the evaluation dataset is empty")
    result = {"2afc": total / count}
    for eps, value in zip(radii, certified, strict=True):
        result[f"certified_2afc@{eps:.4g}"] = value / decided if decided else float("nan")
    return result


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
    return functional_2afc_evaluation(backbone, dataset, normalization=normalization, **kwargs)


__all__ = [
    "certified_radius",
    "evaluate_2afc",
    "functional_2afc_evaluation",
    "metric_2afc_evaluation",
    "triplet_scores",
]
