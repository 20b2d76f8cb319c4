"""The 2AFC decision with its certified radii, and the certified interval of a distance (functional API)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from lipsim_tm.functional.certificates import (
    PERTURBED,
    certify_triplets,
    check_certifiable,
    check_certificate,
    distance_interval,
    distance_shift,
)
from lipsim_tm.functional.distance import check_distance, distance_from_embeddings
from lipsim_tm.functional.embedding import features_of, lipschitz_constant, setup_call
from lipsim_tm.functional.normalization import apply_normalization, check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.models.weights import Weights


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
        certificate: the rule that produced the radii, ``"norm_aware"`` or ``"plain"``.
    """

    prefers_img1: Tensor
    tie: Tensor
    d0: Tensor
    d1: Tensor
    radius_reference: Tensor
    radius_all: Tensor
    certificate: str


def two_afc(
    ref: Tensor,
    img0: Tensor,
    img1: Tensor,
    *,
    weights: Weights = "default",
    distance: str = "cosine",
    normalization: str = "augment",
    certificate: str = "norm_aware",
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
    the same decision and radii. ``certificate="norm_aware"`` (default) takes the larger of these and the
    norm-aware radii of :mod:`~lipsim_tm.functional.certificates` (which use the pre-normalisation norms);
    ``"plain"`` uses the 1-Lipschitz radii only (the published rule). ``normalization="plain"``
    (``v / ||v||``) is certified by the norm-aware rule only. A bfloat16/float16 network raises
    ``ValueError`` (see :func:`~lipsim_tm.functional.certificates.check_certifiable`).
    """
    normalization = check_normalization(normalization)
    certificate = check_certificate(certificate, normalization)
    distance = check_distance(distance)
    images = {"ref": ref, "img0": img0, "img1": img1}
    backbone, prep = setup_call(images, weights, data_range, grayscale, interpolation, antialias)
    check_certifiable(next(backbone.parameters()).dtype)
    features = features_of(backbone, torch.cat([ref, img0, img1]), prep, next(backbone.parameters()).dtype)
    phi_r, phi_0, phi_1 = apply_normalization(features, normalization).chunk(3)
    lipschitz = lipschitz_constant(backbone, prep, ref)
    prefers, tie, radius_ref, radius_all = certify_triplets(
        phi_r,
        phi_0,
        phi_1,
        features.chunk(3),
        normalization=normalization,
        certificate=certificate,
        lipschitz=lipschitz,
    )
    return TwoAFCResult(
        prefers_img1=prefers,
        tie=tie,
        d0=distance_from_embeddings(phi_r, phi_0, distance),
        d1=distance_from_embeddings(phi_r, phi_1, distance),
        radius_reference=radius_ref,
        radius_all=radius_all,
        certificate=certificate,
    )


class DistanceInterval(NamedTuple):
    """``distance`` ``(N,)`` and float64 bounds ``lower <= d' <= upper`` valid under the stated perturbation."""

    distance: Tensor
    lower: Tensor
    upper: Tensor


def check_eps(eps: object, name: str = "eps") -> float:
    """Return ``eps`` as a float if it is a finite number ``>= 0``, else raise naming the argument ``name``."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {eps!r}")
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
    certificate: str = "norm_aware",
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
    floating-point slack. ``certificate="norm_aware"`` (default) replaces each embedding's move ``L eps``
    by the smaller norm-aware bound of :func:`~lipsim_tm.functional.certificates.distance_shift`; with
    ``normalization="plain"`` only that rule applies (``L eps >= ||f||`` gives the trivial interval).
    A bfloat16/float16 network raises ``ValueError`` (see
    :func:`~lipsim_tm.functional.certificates.check_certifiable`).
    """
    normalization = check_normalization(normalization)
    certificate = check_certificate(certificate, normalization)
    distance, eps, perturbed = check_distance(distance), check_eps(eps), check_perturbed(perturbed)
    backbone, prep = setup_call({"x": x, "y": y}, weights, data_range, grayscale, interpolation, antialias)
    check_certifiable(next(backbone.parameters()).dtype)
    features = features_of(backbone, torch.cat([x, y]), prep, next(backbone.parameters()).dtype)
    phi_x, phi_y = apply_normalization(features, normalization).chunk(2)
    f_x, f_y = features.chunk(2)
    s = lipschitz_constant(backbone, prep, x) * eps
    shift = distance_shift(f_x, f_y, s, perturbed=perturbed, normalization=normalization, certificate=certificate)
    lower, upper = distance_interval(phi_x, phi_y, shift=shift, distance=distance, normalization=normalization)
    return DistanceInterval(distance_from_embeddings(phi_x, phi_y, distance), lower, upper)
