"""Triplet margins in embedding space: the first stage of every 2AFC certificate, and the decision itself.

Setting. ``phi = N o f o P``: ``P`` the preprocessing (l2 operator norm ``||P||``, see
:mod:`~lipsim_tm.functional.preprocessing`), ``f`` the backbone (``||f(a) - f(b)|| <= lip_f ||a - b||``),
``N`` the normalisation. With a 1-Lipschitz ``N`` (``"augment"``, ``"ball"``) ``phi`` is ``L``-Lipschitz from
user pixels, ``L = lip_f * ||P||``. The rules (:mod:`.plain`, :mod:`.norm_aware`) turn the margins below into
user-pixel radii.

Write ``u_i = ||phi(ref) - phi(img_i)||``. Both distance forms are increasing in ``u`` (``"cosine"``:
``u^2 / 2``; ``"l2"``: ``u``), so the decision "img1 is closer" is ``u_1 < u_0`` for both, and both
forms get the same radii. A tie, or a margin within the slack (:func:`~.policy.embedding_slack`), is never
a preference and never certified.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from lipsim_tm.functional.certificates.policy import embedding_slack


class TripletMargins(NamedTuple):
    """Float64 ``(N,)`` margins of a triplet's embeddings, computed once by :func:`triplet_margins`.

    With ``u0 = ||phi_ref - phi_0||``, ``u1 = ||phi_ref - phi_1||``, ``gap = ||phi_0 - phi_1||`` and
    ``slack`` from :func:`~.policy.embedding_slack`:

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
