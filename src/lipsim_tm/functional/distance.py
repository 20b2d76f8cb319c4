"""The LipSim distance: its core (features -> normalised embeddings -> distances -> certified intervals) and the
functional forms :func:`lipsim_distance` and :func:`certified_distance_interval`.

The core has torchmetrics' shape: :func:`_lipsim_distance_update` takes the backbone features of both images and
their Lipschitz bounds and gives per-pair distances and certified intervals; :func:`_lipsim_distance_compute`
turns the metric's float64 sums into the reported value. Every entry point calls them: the functionals here,
:class:`~lipsim_tm.metrics.LipSimDistance`, :class:`~lipsim_tm.losses.LipSimLoss`, the command line and the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from lipsim_tm.checks import check_choice, check_matrix, check_number, check_same_shape
from lipsim_tm.functional.certificates.intervals import PERTURBED, distance_interval, distance_shift
from lipsim_tm.functional.certificates.policy import check_certificate
from lipsim_tm.functional.embedding import features_of, lipschitz_constant, network_dtype, prepare_call
from lipsim_tm.functional.normalization import apply_normalization, at_least_float32, check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.models.weights import Weights

#: Accepted distance forms.
DISTANCES: tuple[str, ...] = ("cosine", "l2")
#: Accepted reductions (piq convention).
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")

#: A Lipschitz bound ``L`` (user pixels -> embedding): a number for a batch, or float64 ``(N,)`` per sample.
Bound = float | Tensor


def check_distance(distance: object) -> str:
    """Return ``distance`` if it is one of :data:`DISTANCES`, else raise ``ValueError``."""
    return check_choice("distance", distance, DISTANCES)


def check_reduction(reduction: object) -> str:
    """Return ``reduction`` if it is ``"none"``, ``"mean"`` or ``"sum"``, else raise ``ValueError``."""
    return check_choice("reduction", reduction, REDUCTIONS)


def largest(*bounds: Bound) -> Bound:
    """The largest of Lipschitz bounds (numbers, or ``(N,)`` tensors compared per sample): one bound for them all."""
    if all(not isinstance(b, Tensor) for b in bounds):
        return max(bounds)  # type: ignore[type-var]
    tensors = [torch.as_tensor(b, dtype=torch.float64) for b in bounds]
    return torch.stack(torch.broadcast_tensors(*tensors)).amax(dim=0)


def embedding_distance(phi_a: Tensor, phi_b: Tensor, distance: str) -> Tensor:
    """Row-wise distance ``(N,)`` of normalised embeddings (see :func:`distance_from_embeddings`; no checks)."""
    diff = at_least_float32(phi_a) - at_least_float32(phi_b)
    squared = diff.pow(2).sum(dim=1)
    if distance == "cosine":
        return squared / 2
    return torch.sqrt(squared + torch.finfo(squared.dtype).tiny)


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
    check_same_shape(phi_a=check_matrix("phi_a", phi_a), phi_b=check_matrix("phi_b", phi_b))
    return embedding_distance(phi_a, phi_b, distance)


class DistanceUpdate(NamedTuple):
    """What :func:`_lipsim_distance_update` gives for ``N`` pairs and ``K`` budgets.

    Attributes:
        distance: ``(N,)`` distances, at least float32, differentiable in the features.
        lower, upper: float64 ``(N, K)``: at budget ``k`` the distance stays within ``[lower, upper]`` under the
            stated perturbation (see :func:`certified_distance_interval`).
    """

    distance: Tensor
    lower: Tensor
    upper: Tensor

    @property
    def half_width(self) -> Tensor:
        """Float64 ``(N, K)``: how far the distance may move up or down, ``max(upper - d, d - lower)``."""
        value = self.distance.detach().double()[:, None]
        return torch.maximum(self.upper - value, value - self.lower).clamp_min(0.0)


def _lipsim_distance_update(
    features_x: Tensor,
    features_y: Tensor,
    *,
    distance: str,
    normalization: str,
    certificate: str = "norm_aware",
    lipschitz: Bound | Sequence[Bound] = 1.0,
    epsilons: Sequence[float] = (),
    perturbed: str = "one",
) -> DistanceUpdate:
    """Distances of ``N`` pairs and their certified intervals at each l2 budget of ``epsilons`` (user pixels).

    ``features_x``, ``features_y``: ``(N, D)`` backbone features (before normalisation) of the two images of each
    pair. ``lipschitz``: the bound ``L`` of the map from user pixels to the embedding, one for both images or one
    per image batch ``(L_x, L_y)`` (files of different sizes): an interval holds under the larger. Arguments are
    trusted (the entry points check them). The intervals follow :func:`certified_distance_interval`.
    """
    phi_x = apply_normalization(features_x, normalization)
    phi_y = apply_normalization(features_y, normalization)
    value = embedding_distance(phi_x, phi_y, distance)
    bound = largest(*lipschitz) if isinstance(lipschitz, (tuple, list)) else lipschitz
    lower, upper = [], []
    for eps in epsilons:
        shift = distance_shift(
            features_x,
            features_y,
            bound * eps,
            perturbed=perturbed,
            normalization=normalization,
            certificate=certificate,
        )
        low, high = distance_interval(phi_x, phi_y, shift=shift, distance=distance, normalization=normalization)
        lower.append(low)
        upper.append(high)
    empty = value.new_zeros((value.shape[0], 0), dtype=torch.float64)
    return DistanceUpdate(
        value,
        torch.stack(lower, dim=1) if lower else empty,
        torch.stack(upper, dim=1) if upper else empty,
    )


def _lipsim_distance_compute(total: Tensor, count: Tensor, reduction: str) -> Tensor:
    """The reported value from float64 states: ``total`` (``"sum"``) or ``total / count`` (``"mean"``)."""
    return total if reduction == "sum" else total / count


def reduce(values: Tensor, reduction: str) -> Tensor:
    """``values`` ``(N,)`` reduced by ``"none"`` (unchanged), ``"mean"`` or ``"sum"``."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


class DistanceInterval(NamedTuple):
    """``distance`` ``(N,)`` and float64 bounds ``lower <= d' <= upper`` valid under the stated perturbation."""

    distance: Tensor
    lower: Tensor
    upper: Tensor


def _pair_features(
    x: Tensor, y: Tensor, weights: Weights, options: dict[str, object], *, certify: bool = False
) -> tuple[Tensor, Tensor, Bound]:
    """Features of ``x`` and ``y`` in one forward pass and the batch's Lipschitz bound (inputs checked first)."""
    backbone, prep = prepare_call({"x": x, "y": y}, weights, certify=certify, **options)  # type: ignore[arg-type]
    features = features_of(backbone, torch.cat([x, y]), prep, network_dtype(backbone))
    features_x, features_y = features.chunk(2)
    return features_x, features_y, lipschitz_constant(backbone, prep, x)


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
    in one forward pass. Guarantee: see :func:`certified_distance_interval`.
    """
    distance, reduction = check_distance(distance), check_reduction(reduction)
    normalization = check_normalization(normalization)
    options = {"data_range": data_range, "grayscale": grayscale, "interpolation": interpolation, "antialias": antialias}
    features_x, features_y, _ = _pair_features(x, y, weights, options)
    update = _lipsim_distance_update(features_x, features_y, distance=distance, normalization=normalization)
    return reduce(update.distance, reduction)


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
    :func:`~lipsim_tm.functional.certificates.intervals.distance_interval` (l2 form: ``u +- L eps``; cosine form on
    the sphere: within ``d +- L eps``, tighter near 0 and 2), clipped to ``[0, 2]`` and widened by a
    floating-point slack. ``certificate="norm_aware"`` (default) replaces each embedding's move ``L eps``
    by the smaller norm-aware bound of :func:`~lipsim_tm.functional.certificates.intervals.distance_shift`; with
    ``normalization="plain"`` only that rule applies (``L eps >= ||f||`` gives the trivial interval).
    A bfloat16/float16 network raises ``ValueError`` (see
    :func:`~lipsim_tm.functional.certificates.policy.check_certifiable`).
    """
    normalization = check_normalization(normalization)
    certificate = check_certificate(certificate, normalization)
    distance, eps = check_distance(distance), check_number("eps", eps, minimum=0.0)
    perturbed = check_choice("perturbed", perturbed, PERTURBED)
    options = {"data_range": data_range, "grayscale": grayscale, "interpolation": interpolation, "antialias": antialias}
    features_x, features_y, lipschitz = _pair_features(x, y, weights, options, certify=True)
    update = _lipsim_distance_update(
        features_x,
        features_y,
        distance=distance,
        normalization=normalization,
        certificate=certificate,
        lipschitz=lipschitz,
        epsilons=(eps,),
        perturbed=perturbed,
    )
    return DistanceInterval(update.distance, update.lower[:, 0], update.upper[:, 0])
