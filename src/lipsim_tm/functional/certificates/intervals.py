"""Certified distance intervals: the embeddings' move under the rule (plain | norm-aware) -> the interval.

A perturbation of user-pixel norm ``eps`` moves an embedding by ``s = L eps`` at most under the plain rule
(1-Lipschitz normalisation), by ``min(s, B(s, n, m))`` under the norm-aware rule (:mod:`.norm_aware`;
``B`` alone for the ``"plain"`` map, which is not 1-Lipschitz). :func:`distance_shift` gives that move for
a pair, :func:`distance_interval` the interval it implies.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lipsim_tm.functional.certificates.norm_aware import NORM_FLOORS, norm_and_floor, normalization_shift
from lipsim_tm.functional.certificates.policy import embedding_slack
from lipsim_tm.functional.normalization import ON_SPHERE

#: Which images a budget applies to: ``"one"`` (either of the two) or ``"both"`` (each).
PERTURBED: tuple[str, ...] = ("one", "both")


def embedding_shift(s: float | Tensor, norm: Tensor, floor: float, certificate: str, normalization: str) -> Tensor:
    """Certified move ``(N,)`` of ``phi`` for a ``g``-move ``s``: ``s`` (plain rule), ``min(s, B)`` (norm-aware rule,
    1-Lipschitz maps) or ``B`` (the ``"plain"`` map)."""
    # A number is filled in on the device (no host-to-device copy, which would synchronise CUDA).
    s = torch.full_like(norm, s) if not isinstance(s, Tensor) else s.to(norm).expand_as(norm)
    if certificate == "plain":
        return s.clone()
    bound = normalization_shift(s, norm, floor)
    return bound if normalization == "plain" else torch.minimum(s, bound)


def distance_shift(
    features_a: Tensor, features_b: Tensor, s: float, *, perturbed: str, normalization: str, certificate: str
) -> Tensor:
    """Certified total move ``(N,)`` of ``phi_a, phi_b`` when one (``"one"``: either) or both images move by ``s``.

    ``features_a``, ``features_b``: ``(N, D)`` pre-normalisation backbone outputs; ``s``: ``L eps``.
    """
    floor = NORM_FLOORS[normalization]
    norm_a, norm_b = (norm_and_floor(f, normalization)[0] for f in (features_a, features_b))
    shift_a = embedding_shift(s, norm_a, floor, certificate, normalization)
    shift_b = embedding_shift(s, norm_b, floor, certificate, normalization)
    return shift_a + shift_b if perturbed == "both" else torch.maximum(shift_a, shift_b)


def distance_interval(
    phi_a: Tensor, phi_b: Tensor, *, shift: float | Tensor, distance: str, normalization: str
) -> tuple[Tensor, Tensor]:
    """``(lower, upper)`` float64 ``(N,)`` bounds on the distance when the embeddings move by ``shift`` in total.

    ``shift`` (a number or float64 ``(N,)``, possibly ``inf``) bounds ``||phi_a' - phi_a|| + ||phi_b' - phi_b||``
    (``L eps`` when one image moves by ``eps``, ``2 L eps`` when both do, or the norm-aware bounds of
    :func:`distance_shift`); the floating-point slack is added to it.
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
