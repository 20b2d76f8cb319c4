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

Floating point. The norm is shrunk by the relative slack of :func:`~.policy.embedding_slack`
(``B`` decreases in ``n``), embedding-space margins keep their absolute slack, radii are multiplied by
``1 - RELATIVE_SLACK`` and bisection returns its lower end (which satisfies the condition).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lipsim_tm.functional.certificates.margins import TripletMargins
from lipsim_tm.functional.certificates.policy import RELATIVE_SLACK, embedding_slack

#: Lower bound ``m`` on the pre-normalisation norm of each normalisation.
NORM_FLOORS: dict[str, float] = {"augment": 1.0, "ball": 1.0, "plain": 0.0}
#: Intervals per round of the search in :func:`_largest_shift_below` and the number of rounds: the bracket
#: shrinks by 256**4 = 2**32, so the result is below the root by at most 2.3e-10 of the initial upper end
#: (at most ``margin * largest norm / 4``, while the root is at least ``margin / 4`` for the 1-Lipschitz maps):
#: a relative loss of at most ``2.3e-10 * largest norm``, negligible next to ``RELATIVE_SLACK`` = 1e-6.
_SEARCH_POINTS = 256
_SEARCH_ROUNDS = 4


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
    low = (norm - s).clamp_min(floor)
    positive = low > 0
    safe = torch.where(positive, low, torch.ones_like(low))
    return torch.where(positive, s / torch.sqrt(norm * safe), torch.full_like(low, math.inf))


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


def norm_aware_radii(
    margins: TripletMargins,
    norms: Tensor,
    floor: float,
    lipschitz_reference: float | Tensor,
    lipschitz_all: float | Tensor,
) -> tuple[Tensor, Tensor]:
    """``(reference_radius, all_images_radius)`` float64 ``(N,)`` in user pixels of the norm-aware rule.

    ``norms``: ``(N, 3)`` effective norms of ref, img0, img1 (:func:`norm_and_floor`); ``lipschitz_reference``,
    ``lipschitz_all``: as in :func:`~.plain.plain_radii`.

    Reference. The decision holds while ``phi(ref)`` moves by less than its distance ``H`` to the bisecting
    hyperplane of ``phi_0, phi_1`` (see :func:`~.plain.plain_radii`), i.e. while ``B(L eps, n_ref, m) < H``:
    ``R = invert_shift(H - slack, n_ref, m) / L``.

    All images. Each embedding moves by its own bound ``b_i = B(L eps, n_i, m)``; ``u_0`` changes by at most
    ``b_ref + b_0``, ``u_1`` by ``b_ref + b_1``, so the sign of ``u_0 - u_1`` holds while
    ``F(s) = 2 b_ref + b_0 + b_1 < D = |u_0 - u_1| - slack``: ``R`` is the largest such ``s``
    (:func:`_largest_shift_below`) divided by ``L``. For the 1-Lipschitz maps (``m = 1``, all ``n >= 1``)
    ``B <= s``, so ``B`` is already ``min(s, B)``.
    """
    reference = invert_shift(margins.hyperplane_margin, norms[:, 0], floor) * (
        (1 - RELATIVE_SLACK) / lipschitz_reference
    )
    every = _largest_shift_below(margins.difference_margin, norms, floor) * ((1 - RELATIVE_SLACK) / lipschitz_all)
    return reference, every


def _largest_shift_below(margin: Tensor, norms: Tensor, floor: float) -> Tensor:
    """Largest evaluated ``s >= 0`` with ``F(s) = s sum_i w_i / sqrt(n_i max(n_i - s, m)) < margin``, float64 (N,).

    ``margin``: ``(N,)``; ``norms``: ``(N, 3)`` effective norms of ref, img0, img1 (weights ``w = 2, 1, 1``);
    ``F(s) = 2 B(s, n_ref, m) + B(s, n_0, m) + B(s, n_1, m)``, continuous and increasing in ``s`` (infinite
    once ``s >= n_i`` when ``m = 0``). Since ``B(s, n, m) >= s / n`` (``m <= n``), ``F(s) >= margin`` at
    ``s = margin / (2/n_ref + 1/n_0 + 1/n_1)``, which brackets the root. Each of :data:`_SEARCH_ROUNDS`
    rounds evaluates ``F`` at :data:`_SEARCH_POINTS` + 1 evenly spaced points of the bracket (both ends
    included) and keeps the last point with ``F < margin`` as the new lower end (the next point as the upper
    end). The result is 0 or a point at which the computed ``F`` is below ``margin``; the callers' factor
    ``1 - RELATIVE_SLACK`` covers the float64 rounding of ``F`` (``F(s) / s`` increases, so
    ``F((1 - r) s) <= (1 - r) F(s)``). Fixed work, no host synchronisation.
    """
    # Constants are made on the device (no host-to-device copy, which would synchronise CUDA).
    n = norms[:, :, None]  # (N, 3, 1)
    fractions = torch.linspace(0.0, 1.0, _SEARCH_POINTS + 1, dtype=torch.float64, device=margin.device)
    index = torch.arange(_SEARCH_POINTS + 1, device=margin.device)
    ends = torch.arange(2, device=margin.device)[None]  # the last point below and the next one
    lo = torch.zeros_like(margin)
    inverse = norms.reciprocal()
    hi = margin / (inverse.sum(dim=1) + inverse[:, 0])  # margin / (2 / n_ref + 1 / n_0 + 1 / n_1)
    for _ in range(_SEARCH_ROUNDS):
        candidates = torch.addcmul(lo[:, None], (hi - lo)[:, None], fractions)  # (N, P + 1), increasing
        denominator = (n - candidates[:, None, :]).clamp_min_(floor).mul_(n).rsqrt_()  # (N, 3, P + 1)
        weighted = denominator.sum(dim=1).add_(denominator[:, 0])  # weights 2, 1, 1
        total = weighted.mul_(candidates)  # (N, P + 1); NaN (never below) at s = 0, n = 0
        last = torch.where(total < margin[:, None], index, 0).amax(dim=1, keepdim=True)
        bracket = candidates.gather(1, (last + ends).clamp_max_(_SEARCH_POINTS))
        lo, hi = bracket.unbind(1)
    return lo
