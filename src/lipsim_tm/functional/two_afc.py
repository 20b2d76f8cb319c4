"""The 2AFC decision with its certified radii, and the certified interval of a distance (functional API)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from lipsim_tm.functional.certificates import all_images_radius, decision, distance_interval, reference_radius
from lipsim_tm.functional.distance import check_distance, distance_from_embeddings
from lipsim_tm.functional.embedding import embed, lipschitz_constant, setup_call
from lipsim_tm.functional.normalization import check_normalization, check_sound_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.weights import Weights


class TwoAFCResult(NamedTuple):
    """Outcome of :func:`two_afc` for ``N`` triplets.

    Attributes:
        prefers_img1: bool ``(N,)``, ``d1 < d0`` (compared in float64 from the embeddings), never on a tie.
        tie: bool ``(N,)``, ``d1 == d0`` up to the floating-point slack (see
            :func:`~lipsim_tm.functional.certificates.decision`).
        d0, d1: ``(N,)`` distances reference-img0 and reference-img1 (at least float32, differentiable).
        radius_reference: float64 ``(N,)`` l2 radius in user pixels: no perturbation of the reference of
            smaller norm changes the decision.
        radius_all: float64 ``(N,)`` the same when each of the three images may be perturbed by that much.
    """

    prefers_img1: Tensor
    tie: Tensor
    d0: Tensor
    d1: Tensor
    radius_reference: Tensor
    radius_all: Tensor


def two_afc(
    ref: Tensor,
    img0: Tensor,
    img1: Tensor,
    *,
    weights: Weights = "default",
    distance: str = "cosine",
    normalization: str = "augment",
    data_range: DataRange = 1.0,
    grayscale: bool = False,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> TwoAFCResult:
    """Which of ``img0``, ``img1`` is closer to ``ref``, with certified radii (see :class:`TwoAFCResult`).

    ``ref, img0, img1``: ``(N, C, H, W)`` of one shape, in ``data_range``; one batched forward pass.
    Radii are stated in the user's pixel units (the units of ``data_range``) and derived in
    :func:`~lipsim_tm.functional.certificates.reference_radius` and
    :func:`~lipsim_tm.functional.certificates.all_images_radius`: with ``L`` the Lipschitz bound of
    the embedding from user pixels, ``R_ref = |u_0^2 - u_1^2| / (2 L ||phi_0 - phi_1||)`` (cosine form:
    ``|d_0 - d_1| / (L ||phi_0 - phi_1||)``) and ``R_all = |u_0 - u_1| / (4 L)`` with ``u_i`` the l2
    embedding distances, each shrunk by a floating-point slack; ties get 0. Both distance forms give
    the same decision and radii. ``normalization="plain"`` is refused (no sound certificate).
    """
    check_sound_normalization(check_normalization(normalization), "two_afc (certified radii)")
    distance = check_distance(distance)
    images = {"ref": ref, "img0": img0, "img1": img1}
    backbone, prep = setup_call(images, weights, data_range, grayscale, interpolation, antialias)
    phi = embed(backbone, torch.cat([ref, img0, img1]), prep, next(backbone.parameters()).dtype, normalization)
    phi_r, phi_0, phi_1 = phi.chunk(3)
    lipschitz = lipschitz_constant(backbone, prep, ref)
    prefers, tie = decision(phi_r, phi_0, phi_1)
    return TwoAFCResult(
        prefers_img1=prefers,
        tie=tie,
        d0=distance_from_embeddings(phi_r, phi_0, distance),
        d1=distance_from_embeddings(phi_r, phi_1, distance),
        radius_reference=reference_radius(phi_r, phi_0, phi_1, lipschitz),
        radius_all=all_images_radius(phi_r, phi_0, phi_1, lipschitz),
    )


class DistanceInterval(NamedTuple):
    """``distance`` ``(N,)`` and float64 bounds ``lower <= d' <= upper`` valid under the stated perturbation."""

    distance: Tensor
    lower: Tensor
    upper: Tensor


PERTURBED: tuple[str, ...] = ("one", "both")


def check_eps(eps: object) -> float:
    """Return ``eps`` as a float if it is a finite number ``>= 0``, else raise."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"eps must be a number, got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    return float(eps)


def check_perturbed(perturbed: object) -> str:
    if not isinstance(perturbed, str) or perturbed not in PERTURBED:
        raise ValueError(f"perturbed must be one of {PERTURBED}, got {perturbed!r}")
    return perturbed


def certified_distance_interval(
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    perturbed: str = "one",
    weights: Weights = "default",
    distance: str = "cosine",
    normalization: str = "augment",
    data_range: DataRange = 1.0,
    grayscale: bool = False,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> DistanceInterval:
    """The distance between ``x`` and ``y`` and an interval that contains it under any l2 perturbation ``<= eps``.

    ``eps`` is in user pixel units. ``perturbed="one"``: one of the two images (either) moves by at most
    ``eps``; ``"both"``: each moves by at most ``eps``. The embeddings then move by ``L eps`` in total
    (``2 L eps`` for both); the interval is derived in
    :func:`~lipsim_tm.functional.certificates.distance_interval` (l2 form: ``u +- L eps``; cosine form on
    the sphere: within ``d +- L eps``, tighter near 0 and 2), clipped to ``[0, 2]`` and widened by a
    floating-point slack. ``normalization="plain"`` is refused.
    """
    check_sound_normalization(check_normalization(normalization), "certified_distance_interval")
    distance, eps, perturbed = check_distance(distance), check_eps(eps), check_perturbed(perturbed)
    backbone, prep = setup_call({"x": x, "y": y}, weights, data_range, grayscale, interpolation, antialias)
    phi = embed(backbone, torch.cat([x, y]), prep, next(backbone.parameters()).dtype, normalization)
    phi_x, phi_y = phi.chunk(2)
    shift = lipschitz_constant(backbone, prep, x) * eps * (2 if perturbed == "both" else 1)
    lower, upper = distance_interval(phi_x, phi_y, shift=shift, distance=distance, normalization=normalization)
    return DistanceInterval(distance_from_embeddings(phi_x, phi_y, distance), lower, upper)
