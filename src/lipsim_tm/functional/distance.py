"""Distances between normalised embeddings, and the LipSim distance between images."""

from __future__ import annotations

import torch
from torch import Tensor

from lipsim_tm.functional.embedding import embed, setup_call
from lipsim_tm.functional.normalization import at_least_float32, check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.models.weights import Weights

#: Accepted distance forms.
DISTANCES: tuple[str, ...] = ("cosine", "l2")
#: Accepted reductions (piq convention).
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def check_distance(distance: object) -> str:
    """Return ``distance`` if it is one of :data:`DISTANCES`, else raise ``ValueError``."""
    if not isinstance(distance, str) or distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    return distance


def distance_from_embeddings(phi_a: Tensor, phi_b: Tensor, distance: str = "cosine") -> Tensor:
    """Row-wise distance ``(N,)`` between normalised embeddings ``phi_a, phi_b`` of shape ``(N, D)``.

    ``"cosine"``: ``||phi_a - phi_b||^2 / 2``. On the unit sphere (``"augment"``/``"plain"``
    normalisation) this equals ``1 - cos(phi_a, phi_b)``, the official LipSim distance, in ``[0, 2]``.
    With the ``"ball"`` projection the embeddings may lie inside the ball and the value is the
    squared-l2 / 2 form (still in ``[0, 2]``), no longer ``1 - cos``.

    ``"l2"``: ``||phi_a - phi_b||``, in ``[0, 2]``. The square root is taken of
    ``||phi_a - phi_b||^2 + tiny`` (``tiny`` the smallest normal number of the dtype), so the gradient
    at ``phi_a == phi_b`` is finite (zero) and the value is unchanged for any non-zero distance.

    float16/bfloat16 embeddings are upcast: the result is at least float32.
    """
    distance = check_distance(distance)
    for name, value in (("phi_a", phi_a), ("phi_b", phi_b)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.ndim != 2:
            raise ValueError(f"{name} must have shape (N, D), got {tuple(value.shape)}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if phi_a.shape != phi_b.shape:
        raise ValueError(f"phi_a and phi_b must have the same shape, got {tuple(phi_a.shape)} and {tuple(phi_b.shape)}")
    diff = at_least_float32(phi_a) - at_least_float32(phi_b)
    squared = diff.pow(2).sum(dim=1)
    if distance == "cosine":
        return squared / 2
    return torch.sqrt(squared + torch.finfo(squared.dtype).tiny)


def check_reduction(reduction: object) -> str:
    """Return ``reduction`` if it is ``"none"``, ``"mean"`` or ``"sum"``, else raise ``ValueError``."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(values: Tensor, reduction: str) -> Tensor:
    """``values`` ``(N,)`` reduced by ``"none"`` (unchanged), ``"mean"`` or ``"sum"``."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def lipsim_distance(
    x: Tensor,
    y: Tensor,
    *,
    weights: Weights = "default",
    distance: str = "cosine",
    normalization: str = "augment",
    data_range: DataRange = 1.0,
    reduction: str = "none",
    grayscale: bool = False,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> Tensor:
    """LipSim distance between image batches ``x`` and ``y`` of the same shape ``(N, C, H, W)``.

    Returns ``(N,)`` (``reduction="none"``) or a scalar (``"mean"``, ``"sum"``), at least float32,
    differentiable in ``x`` and ``y``. ``distance`` and ``normalization``: see
    :func:`distance_from_embeddings` and :func:`~lipsim_tm.functional.normalize_embedding`; other
    arguments: see :func:`~lipsim_tm.functional.lipsim_embedding`. Both batches go through the network
    in one forward pass. Guarantee: see :func:`~lipsim_tm.functional.certified_distance_interval`.
    """
    distance, reduction = check_distance(distance), check_reduction(reduction)
    check_normalization(normalization)
    backbone, prep = setup_call({"x": x, "y": y}, weights, data_range, grayscale, interpolation, antialias)
    phi = embed(backbone, torch.cat([x, y]), prep, next(backbone.parameters()).dtype, normalization)
    phi_x, phi_y = phi.chunk(2)
    return reduce(distance_from_embeddings(phi_x, phi_y, distance), reduction)
