"""Distances between normalised embeddings, and the LipSim distance between images."""

from __future__ import annotations

import torch
from torch import Tensor

from lipsim_tm.functional.normalization import at_least_float32

#: Accepted distance forms.
DISTANCES: tuple[str, ...] = ("cosine", "l2")


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
