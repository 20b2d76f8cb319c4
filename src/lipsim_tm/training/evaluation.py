"""End-of-epoch 2AFC evaluation: natural 2AFC score and certified 2AFC scores at given radii.

:func:`evaluate_2afc` is the one entry point the fine-tuning loop calls. It currently computes the
scores with :func:`functional_2afc_evaluation` (the functional pieces shared with the metrics);
switching it to the metric class is a one-line change in :func:`evaluate_2afc`.

Score of one triplet (LPIPS/DreamSim convention, ``p`` = fraction judging ``img1`` closer):
``(d0 < d1)(1 - p) + (d1 < d0) p + 0.5 [d0 == d1]``. It counts as certified at radius ``eps``
(an l2 perturbation of the reference, in pixel units) when ``R / L > eps`` with
``R = |s0 - s1| / ||phi0 - phi1||`` the distance of ``phi(ref)`` to the bisecting hyperplane of
``phi0, phi1`` (``s_i = ||phi(ref) - phi_i||^2 / 2``) and ``L`` the backbone's Lipschitz bound;
ties are never certified. Certified scores need a sound (1-Lipschitz) normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lipsim_tm.backbone import LipSimBackbone
from lipsim_tm.functional import distance_from_embeddings, normalize_embedding


def triplet_scores(d0: Tensor, d1: Tensor, p: Tensor) -> Tensor:
    """Per-triplet 2AFC agreement ``(N,)`` from distances ``d0, d1`` and human fractions ``p``."""
    return (d0 < d1).to(p.dtype) * (1 - p) + (d1 < d0).to(p.dtype) * p + 0.5 * (d0 == d1).to(p.dtype)


def certified_radius(phi_ref: Tensor, phi0: Tensor, phi1: Tensor) -> Tensor:
    """Radius ``(N,)`` in embedding space within which the 2AFC decision cannot change."""
    s0 = distance_from_embeddings(phi_ref, phi0, "cosine")
    s1 = distance_from_embeddings(phi_ref, phi1, "cosine")
    gap = (phi0 - phi1).norm(dim=1)
    return torch.where(
        gap > 0, (s0 - s1).abs() / torch.where(gap > 0, gap, torch.ones_like(gap)), torch.zeros_like(gap)
    )


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
    """``{"2afc": natural score, "certified_2afc@<eps>": ...}`` averaged over ``dataset``'s triplets."""
    if radii and normalization not in ("augment", "ball"):
        raise ValueError(
            f"certified scores need a 1-Lipschitz normalization ('augment' or 'ball'), got {normalization!r}"
        )
    if max_triplets is not None and max_triplets < len(dataset):
        dataset = Subset(dataset, range(max_triplets))
    was_training = backbone.training
    backbone.eval()
    param = next(backbone.parameters())
    total, count = 0.0, 0
    certified = [0.0 for _ in radii]
    for ref, img0, img1, p in DataLoader(dataset, batch_size=batch_size):
        n = ref.shape[0]
        images = torch.cat([ref, img0, img1]).to(device=param.device, dtype=param.dtype)
        phi = normalize_embedding(backbone(images), normalization)
        phi_ref, phi0, phi1 = phi[:n], phi[n : 2 * n], phi[2 * n :]
        p = p.to(device=param.device, dtype=torch.float64)
        d0 = distance_from_embeddings(phi_ref, phi0, distance)
        d1 = distance_from_embeddings(phi_ref, phi1, distance)
        scores = triplet_scores(d0, d1, p)
        total += float(scores.sum())
        count += n
        if radii:
            radius = certified_radius(phi_ref, phi0, phi1) / backbone.lipschitz_bound
            for i, eps in enumerate(radii):
                certified[i] += float((scores * ((radius > eps) & (d0 != d1))).sum())
    backbone.train(was_training)
    if count == 0:
        raise ValueError("the evaluation dataset is empty")
    result = {"2afc": total / count}
    for eps, value in zip(radii, certified, strict=True):
        result[f"certified_2afc@{eps:.4f}"] = value / count
    return result


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
    """The fine-tuning loop's evaluation (natural and certified 2AFC scores); see the module docstring."""
    return functional_2afc_evaluation(
        backbone,
        dataset,
        normalization=normalization,
        distance=distance,
        radii=radii,
        batch_size=batch_size,
        max_triplets=max_triplets,
    )


__all__ = ["certified_radius", "evaluate_2afc", "functional_2afc_evaluation", "triplet_scores"]
