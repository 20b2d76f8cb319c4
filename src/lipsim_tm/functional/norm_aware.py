"""Norm-aware certificates: a long pre-normalisation embedding moves its normalised image less.

Bound. For ``a, b != 0``:
``||a/|a| - b/|b|||^2 = (||a - b||^2 - (|a| - |b|)^2) / (|a| |b|) <= ||a - b||^2 / (|a| |b|)``.
Let ``g`` be the embedding before normalisation (network units), ``n = ||g(x)||`` and ``m`` a global lower
bound on ``||g||``. A user-pixel perturbation of norm ``<= eps`` moves ``g`` by at most ``s = L eps``
(``L`` = backbone Lipschitz bound x preprocessing operator norm), so ``||g(x')|| >= max(n - s, m)`` and::

    ||phi(x') - phi(x)|| <= B(s, n, m) = s / sqrt(n * max(n - s, m))      (infinite when m = 0 and s >= n).

Per normalisation (:func:`norm_and_floor`):

- ``"augment"`` (``g = [f; 1]``): ``n = ||[f; 1]|| >= 1``, ``m = 1``.
- ``"ball"`` (``phi = v / max(1, ||v||)``, not a sphere map): with ``M(v) = max(1, ||v||)``,
  ``||P(a) - P(b)|| <= ||a - b|| / sqrt(M(a) M(b))``. Both outside the ball: the sphere identity above.
  Both inside: ``P`` is the identity. ``|a| = n > 1 >= |b|``: ``||a - b||^2 / n - ||a/n - b||^2 =
  (n - 1)(1 - |b|^2 / n) >= 0``. Since ``M(b) >= max(1, n - s)``, the bound is ``B`` with ``n`` replaced by
  ``max(1, ||f||)`` and ``m = 1``.
- ``"plain"`` (``v / ||v||``): ``n = ||f||``, ``m = 0``; ``s >= n`` certifies nothing (``v`` may reach 0).

With ``m = 1`` and ``n >= 1`` (augment, ball) ``B <= s``, so the norm-aware radius is never smaller than the
plain one; the radii below still take the larger of both for ``certificate="norm_aware"``.

Floating point. The norm is shrunk by the relative slack of :func:`~lipsim_tm.functional.certificates.embedding_slack`
(``B`` decreases in ``n``), embedding-space margins keep their absolute slack, radii are multiplied by
``1 - RELATIVE_SLACK`` and bisection returns its lower end (which satisfies the condition).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lipsim_tm.functional.certificates import (
    RELATIVE_SLACK,
    _pairwise,
    all_images_radius,
    embedding_slack,
    reference_radius,
)

#: ``"norm_aware"`` (default): the larger of the plain and norm-aware radius; ``"plain"``: 1-Lipschitz only.
CERTIFICATES: tuple[str, ...] = ("norm_aware", "plain")
#: Lower bound ``m`` on the pre-normalisation norm of each normalisation.
NORM_FLOORS: dict[str, float] = {"augment": 1.0, "ball": 1.0, "plain": 0.0}
#: Candidates per round of the search in :func:`all_images_radius_norm_aware` and the number of rounds:
#: the bracket shrinks by 256**9 = 2**72, below float64 resolution of the root.
_SEARCH_POINTS = 256
_SEARCH_ROUNDS = 9


def check_certificate(certificate: object, normalization: str) -> str:
    """Return ``certificate`` if it is one of :data:`CERTIFICATES` and usable with ``normalization``, else raise."""
    if not isinstance(certificate, str) or certificate not in CERTIFICATES:
        raise ValueError(f"certificate must be one of {CERTIFICATES}, got {certificate!r}")
    if certificate == "plain" and normalization == "plain":
        raise ValueError(
            "certificate='plain' needs a 1-Lipschitz normalization ('augment' or 'ball'), got normalization='plain'"
            " (v/||v|| is certifiable only with certificate='norm_aware')"
        )
    return certificate


def norm_and_floor(features: Tensor, normalization: str) -> tuple[Tensor, float]:
    """``(n, m)``: float64 ``(N,)`` effective pre-normalisation norms (shrunk by the slack) and the floor ``m``.

    ``features``: ``(N, D)`` backbone outputs ``f`` in network units (before normalisation).
    """
    slack = embedding_slack(features.dtype)
    norm = features.detach().double().norm(dim=1) * (1 - slack)
    if normalization == "augment":
        norm = torch.sqrt(norm.pow(2) + 1.0)
    floor = NORM_FLOORS[normalization]
    return (norm.clamp_min(1.0) if floor > 0 else norm), floor


def normalization_shift(s: float | Tensor, norm: Tensor, floor: float) -> Tensor:
    """``B(s, n, m)``, float64 (``s``, ``norm`` broadcast): bound on the move of ``phi`` when ``g`` moves by ``s``."""
    s = torch.as_tensor(s, dtype=torch.float64, device=norm.device)
    low = torch.maximum(norm - s, torch.as_tensor(floor, dtype=torch.float64, device=norm.device))
    positive = low > 0
    safe = torch.where(positive, low, torch.ones_like(low))
    return torch.where(positive, s / torch.sqrt(norm * safe), torch.full_like(low, math.inf))


def embedding_shift(s: float | Tensor, norm: Tensor, floor: float, certificate: str, normalization: str) -> Tensor:
    """Certified move of ``phi`` for a ``g``-move ``s``.

    ``min(s, B)`` (norm-aware rule, 1-Lipschitz maps), ``s`` (plain rule), ``B`` (the ``"plain"`` map).
    """
    s = torch.as_tensor(s, dtype=torch.float64, device=norm.device).expand_as(norm)
    if certificate == "plain":
        return s.clone()
    bound = normalization_shift(s, norm, floor)
    return bound if normalization == "plain" else torch.minimum(s, bound)


def invert_shift(target: Tensor, norm: Tensor, floor: float) -> Tensor:
    """Largest ``s`` with ``B(s, n, m) <= target`` (closed form), float64 ``(N,)``; 0 where ``target <= 0``.

    ``B`` is continuous and increasing in ``s``. Branch ``n - s >= m``: ``s^2 = t^2 n (n - s)``, so
    ``s = 2 n t / (t + sqrt(t^2 + 4))``; valid when ``s <= n - m``. Otherwise (``m > 0``): ``s = t sqrt(n m)``.
    """
    t = target.clamp_min(0.0)
    first = 2 * norm * t / (t + torch.sqrt(t * t + 4))
    if floor > 0:
        first = torch.where(first <= norm - floor, first, t * torch.sqrt(norm * floor))
    return first


def reference_radius_norm_aware(
    phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor, norm_ref: Tensor, floor: float, lipschitz: float
) -> Tensor:
    """Norm-aware certified radius ``(N,)`` (float64, user pixels) of the 2AFC decision, only the reference moving.

    The decision holds while ``phi(ref)`` moves by less than its distance ``H`` to the bisecting hyperplane
    of ``phi_0, phi_1`` (see :func:`~lipsim_tm.functional.certificates.reference_radius`), i.e. while
    ``B(L eps, n_ref, m) < H``: ``R = invert_shift(H - slack) / L``.
    """
    u0, u1, gap, slack = _pairwise(phi_ref, phi_0, phi_1)
    numerator = (u0.pow(2) - u1.pow(2)).abs() / 2
    hyperplane = torch.where(gap > 0, numerator / torch.where(gap > 0, gap, torch.ones_like(gap)), 0.0)
    return invert_shift(hyperplane - slack, norm_ref, floor) / lipschitz * (1 - RELATIVE_SLACK)


def all_images_radius_norm_aware(
    phi_ref: Tensor,
    phi_0: Tensor,
    phi_1: Tensor,
    norms: tuple[Tensor, Tensor, Tensor],
    floor: float,
    lipschitz: float,
    normalization: str,
) -> Tensor:
    """Norm-aware certified radius ``(N,)`` (float64, user pixels) when each image may move by that much.

    Each embedding moves by its own bound ``b_i = B(L eps, n_i, m)`` (``min(L eps, B)`` for the 1-Lipschitz
    maps); ``u_0`` changes by at most ``b_ref + b_0``, ``u_1`` by ``b_ref + b_1``, so the sign of
    ``u_0 - u_1`` holds while ``F(s) = 2 b_ref + b_0 + b_1 < D = |u_0 - u_1| - slack``. ``F`` is continuous
    and increasing in ``s``; since ``B(s, n, m) >= s / n`` (``m <= n``; all ``n >= 1`` when ``m = 1``),
    ``F(s) >= D`` at ``s = D / (2/n_ref + 1/n_0 + 1/n_1)``, which brackets the root; a 256-ary search
    (float64, :data:`_SEARCH_ROUNDS` rounds, a fixed amount of work and no host synchronisation) returns
    the largest evaluated point with ``F < D``, so the radius is sound whatever the rounding.
    """
    u0, u1, _, slack = _pairwise(phi_ref, phi_0, phi_1)
    margin = ((u0 - u1).abs() - slack).clamp_min(0.0)
    n_r, n_0, n_1 = norms
    points = _SEARCH_POINTS - 1
    columns = [n[:, None].expand(-1, points) for n in norms]

    def total(s: Tensor) -> Tensor:
        b_r, b_0, b_1 = (embedding_shift(s, n, floor, "norm_aware", normalization) for n in columns)
        return 2 * b_r + b_0 + b_1

    lo = torch.zeros_like(margin)
    hi = margin / (2 / n_r + 1 / n_0 + 1 / n_1)
    fractions = torch.arange(1, _SEARCH_POINTS, dtype=torch.float64, device=margin.device) / _SEARCH_POINTS
    rank = torch.arange(1, _SEARCH_POINTS, device=margin.device)
    for _ in range(_SEARCH_ROUNDS):
        candidates = lo[:, None] + (hi - lo)[:, None] * fractions  # (N, 255), increasing
        last_ok = torch.where(total(candidates) < margin[:, None], rank, 0).amax(dim=1)  # 0: none
        below = candidates.gather(1, (last_ok - 1).clamp_min(0)[:, None])[:, 0]
        above = candidates.gather(1, last_ok.clamp_max(points - 1)[:, None])[:, 0]
        lo, hi = torch.where(last_ok > 0, below, lo), torch.where(last_ok < points, above, hi)
    return lo / lipschitz * (1 - RELATIVE_SLACK)


def certified_radii(
    phi_ref: Tensor,
    phi_0: Tensor,
    phi_1: Tensor,
    features: tuple[Tensor, Tensor, Tensor],
    *,
    normalization: str,
    certificate: str,
    lipschitz: float,
) -> tuple[Tensor, Tensor]:
    """``(radius_reference, radius_all)`` float64 ``(N,)`` in user pixels under the chosen certificate rule.

    ``features``: the pre-normalisation backbone outputs ``(N, D)`` of ref, img0, img1. ``"plain"``
    certificate: the 1-Lipschitz radii; ``"norm_aware"``: the larger of those and the norm-aware radii
    (only the norm-aware ones for the ``"plain"`` map, which is not 1-Lipschitz).
    """
    floor = NORM_FLOORS[normalization]
    if certificate == "plain":
        return reference_radius(phi_ref, phi_0, phi_1, lipschitz), all_images_radius(phi_ref, phi_0, phi_1, lipschitz)
    norms = tuple(norm_and_floor(f, normalization)[0] for f in features)
    ref = reference_radius_norm_aware(phi_ref, phi_0, phi_1, norms[0], floor, lipschitz)
    every = all_images_radius_norm_aware(phi_ref, phi_0, phi_1, norms, floor, lipschitz, normalization)
    if normalization != "plain":
        ref = torch.maximum(ref, reference_radius(phi_ref, phi_0, phi_1, lipschitz))
        every = torch.maximum(every, all_images_radius(phi_ref, phi_0, phi_1, lipschitz))
    return ref, every


def distance_shift(
    features_a: Tensor, features_b: Tensor, s: float, *, perturbed: str, normalization: str, certificate: str
) -> Tensor:
    """Certified total move ``(N,)`` of ``phi_a, phi_b`` when one (``"one"``: either) or both images move by ``s``."""
    floor = NORM_FLOORS[normalization]
    norm_a, norm_b = (norm_and_floor(f, normalization)[0] for f in (features_a, features_b))
    shift_a = embedding_shift(s, norm_a, floor, certificate, normalization)
    shift_b = embedding_shift(s, norm_b, floor, certificate, normalization)
    return shift_a + shift_b if perturbed == "both" else torch.maximum(shift_a, shift_b)
