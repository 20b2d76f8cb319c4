"""Certificates in embedding space, turned into user-pixel radii: the 2AFC decision and distance intervals.

Setting. ``phi = N o f o P``: ``P`` the preprocessing (l2 operator norm ``||P||``, see
:mod:`~lipsim_tm.functional.preprocessing`), ``f`` the backbone (``||f(a) - f(b)|| <= lip_f ||a - b||``),
``N`` a 1-Lipschitz normalisation (``"augment"`` or ``"ball"``). So ``phi`` is ``L``-Lipschitz from user
pixels, ``L = lip_f * ||P||``: a perturbation ``delta`` of an image moves its embedding by at most
``L ||delta||``. Embedding-space radii are divided by ``L`` to give user-pixel radii.

Write ``u_i = ||phi(ref) - phi(img_i)||``. Both distance forms are increasing in ``u`` (``"cosine"``:
``u^2 / 2``; ``"l2"``: ``u``), so the decision "img1 is closer" is ``u_1 < u_0`` for both, and both
forms get the same radii.

Floating point. Embeddings are computed with rounding; every bound below is shrunk by
``slack = 8 * eta`` with ``eta = 64 * finfo(dtype).eps`` of the embedding dtype (float32: ``6.1e-5``),
an allowance for the evaluation error of each of the (at most four) embeddings involved, and radii
are further multiplied by ``1 - 1e-6``. Arithmetic is in float64. Certificates are refused for
reduced-precision (bfloat16/float16) networks (see :func:`check_certifiable`). A tie, or a margin within
the slack, gets radius 0: never certified.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from lipsim_tm.functional.normalization import ON_SPHERE

#: Relative shrink of every radius, on top of the absolute slack.
RELATIVE_SLACK = 1e-6


#: Network dtypes whose embeddings the floating-point slack below accounts for.
CERTIFIABLE_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def check_certifiable(network_dtype: torch.dtype) -> None:
    """Raise ``ValueError`` unless certificates may be computed from a network of ``network_dtype``.

    Precision policy: reduced-precision networks (bfloat16, float16) compute embeddings and distances, but
    never certificates. Their embeddings are upcast to float32 before normalisation, so the slack of
    :func:`embedding_slack` (sized for float32/float64 evaluation) would not bound their rounding error.
    """
    if network_dtype not in CERTIFIABLE_DTYPES:
        raise ValueError(
            f"certificates need a float32 or float64 network, got a {network_dtype} network: its rounding"
            " error is not bounded by the certificates' slack. Use a float32 network for certificates"
            " (reduced precision is supported for distances and embeddings without certificates)"
        )


def embedding_slack(dtype: torch.dtype) -> float:
    """Absolute allowance (embedding-space l2) for the floating-point error of the embeddings of one decision."""
    return 8 * 64 * torch.finfo(dtype).eps


class TripletMargins(NamedTuple):
    """Float64 ``(N,)`` margins of a triplet's embeddings, computed once by :func:`triplet_margins`.

    With ``u0 = ||phi_ref - phi_0||``, ``u1 = ||phi_ref - phi_1||``, ``gap = ||phi_0 - phi_1||`` and
    ``slack`` from :func:`embedding_slack`:

    - ``prefers_img1``: ``u1 < u0`` and not a tie; ``tie``: ``|u0 - u1| <= slack``;
    - ``hyperplane_margin``: ``H - slack`` (may be negative), ``H = |u0^2 - u1^2| / (2 gap)`` the distance of
      ``phi_ref`` to the bisecting hyperplane of ``phi_0, phi_1`` (0 when ``gap = 0``);
    - ``difference_margin``: ``max(0, |u0 - u1| - slack)``, how far ``u0 - u1`` may move before its sign is
      in doubt (0 exactly on a tie).
    """

    prefers_img1: Tensor
    tie: Tensor
    hyperplane_margin: Tensor
    difference_margin: Tensor


def triplet_margins(phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor) -> TripletMargins:
    """The :class:`TripletMargins` of ``(N, D)`` embeddings (computed in float64, detached)."""
    slack = embedding_slack(phi_ref.dtype)
    r, p0, p1 = (t.detach().double() for t in (phi_ref, phi_0, phi_1))
    u0, u1, gap = (r - p0).norm(dim=1), (r - p1).norm(dim=1), (p0 - p1).norm(dim=1)
    difference = (u0 - u1).abs()
    margin = (difference - slack).clamp_min(0.0)
    tie = margin == 0  # exactly |u0 - u1| <= slack: a subtraction of floats is positive iff a > b
    positive = gap > 0
    hyperplane = torch.where(positive, difference * (u0 + u1) / (2 * torch.where(positive, gap, 1.0)), 0.0)
    return TripletMargins((u1 < u0) & ~tie, tie, hyperplane - slack, margin)


def reference_radius(phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor, lipschitz: float) -> Tensor:
    """Certified l2 radius ``(N,)`` (float64, user pixels) of the 2AFC decision when only the reference moves.

    Derivation. ``||r - p_0||^2 - ||r - p_1||^2 = 2 <r, p_1 - p_0> + ||p_0||^2 - ||p_1||^2`` is affine in
    ``r``; the decision flips only when ``phi(ref)`` crosses its zero set, the bisecting hyperplane of
    ``p_0, p_1``. The distance of ``r`` to it is ``H = |u_0^2 - u_1^2| / (2 ||p_0 - p_1||)``, i.e.
    ``|d_0 - d_1| / ||p_0 - p_1||`` for the cosine form (LipSim's formula) and
    ``|d_0^2 - d_1^2| / (2 ||p_0 - p_1||)`` for the l2 form. A reference perturbation of norm ``< H / L``
    moves ``phi(ref)`` by less than ``H``, so the decision holds: ``R = max(0, H - slack) / L``.
    ``R = 0`` when ``p_0 = p_1`` (then ``u_0 = u_1``, a tie). Since ``u_0 + u_1 >= ||p_0 - p_1||``,
    ``R >= 2 * all_images_radius``.

    Args:
        phi_ref, phi_0, phi_1: ``(N, D)`` normalised embeddings (1-Lipschitz normalisation).
        lipschitz: ``L``, the Lipschitz bound of the embedding map from user pixels.
    """
    return plain_radii(triplet_margins(phi_ref, phi_0, phi_1), lipschitz)[0]


def all_images_radius(phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor, lipschitz: float) -> Tensor:
    """Certified l2 radius ``(N,)`` (float64, user pixels) when each of the three images may move by ``< R``.

    Derivation. Each embedding moves by less than ``L R``. By the triangle inequality ``u_0`` changes by
    less than ``2 L R`` (both ends move) and so does ``u_1``, so ``u_0 - u_1`` changes by less than
    ``4 L R`` and keeps its sign when ``4 L R <= |u_0 - u_1|``: ``R = max(0, |u_0 - u_1| - slack) / (4 L)``.
    Tight in embedding space (``p_0, r, p_1`` on a line, ``r`` and ``p_0`` moving toward each other,
    ``p_1`` away). The budget is per image (each ``||delta_i|| < R``), not shared.
    """
    return plain_radii(triplet_margins(phi_ref, phi_0, phi_1), lipschitz)[1]


def plain_radii(margins: TripletMargins, lipschitz: float) -> tuple[Tensor, Tensor]:
    """``(reference_radius, all_images_radius)`` float64 ``(N,)`` of the 1-Lipschitz rule (derivations above)."""
    scale = (1 - RELATIVE_SLACK) / lipschitz
    return margins.hyperplane_margin.clamp_min(0.0) * scale, margins.difference_margin * (scale / 4)


def decision(phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor) -> tuple[Tensor, Tensor]:
    """``(prefers_img1, tie)``, bool ``(N,)``, from the float64 embedding distances ``u_0, u_1``.

    A tie is ``|u_0 - u_1| <= slack``: below the floating-point allowance the order is decided by
    rounding (identical images at different batch positions can differ by ~1e-7), so it counts as a
    tie, never as a preference. Otherwise ``prefers_img1 = u_1 < u_0``.
    """
    margins = triplet_margins(phi_ref, phi_0, phi_1)
    return margins.prefers_img1, margins.tie


def distance_interval(
    phi_a: Tensor, phi_b: Tensor, *, shift: float | Tensor, distance: str, normalization: str
) -> tuple[Tensor, Tensor]:
    """``(lower, upper)`` float64 ``(N,)`` bounds on the distance when the embeddings move by ``shift`` in total.

    ``shift`` (a number or float64 ``(N,)``, possibly ``inf``) bounds ``||phi_a' - phi_a|| + ||phi_b' - phi_b||``
    (``L eps`` when one image moves by ``eps``, ``2 L eps`` when both do, or the norm-aware bounds of
    :func:`~lipsim_tm.functional.norm_aware.distance_shift`); the floating-point slack is added to it.
    With ``u = ||phi_a - phi_b||`` and ``t = shift + slack``, the triangle inequality gives
    ``u' in [max(0, u - t), min(2, u + t)]`` (2 is the diameter of the unit ball). ``"l2"``: that
    interval. ``"cosine"`` (``u^2 / 2``): its image
    ``[max(0, u - t)^2 / 2, min(2, u + t)^2 / 2]``; on the unit sphere (``"augment"``) additionally
    ``d = 1 - <a, b>`` and ``|<a, b> - <a', b'>| <= ||a - a'|| ||b|| + ||a'|| ||b - b'|| <= t``, so the
    interval is intersected with ``[d - t, d + t]``.
    """
    slack = embedding_slack(phi_a.dtype)
    a, b = phi_a.detach().double(), phi_b.detach().double()
    u = (a - b).norm(dim=1)
    t = shift + slack
    low_u, high_u = (u - t).clamp_min(0.0), (u + t).clamp_max(2.0)
    if distance == "l2":
        return low_u, high_u
    d = u.pow(2) / 2
    lower, upper = low_u.pow(2) / 2, high_u.pow(2) / 2
    if normalization in ON_SPHERE:
        lower, upper = torch.maximum(lower, d - t), torch.minimum(upper, d + t)
    return lower, upper
