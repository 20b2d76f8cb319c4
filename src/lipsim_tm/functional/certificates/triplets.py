"""2AFC certificates of a batch of triplets: margins -> the rule (plain | norm-aware) -> user-pixel radii -> result."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from lipsim_tm.functional.certificates.margins import triplet_margins
from lipsim_tm.functional.certificates.norm_aware import NORM_FLOORS, norm_and_floor, norm_aware_radii
from lipsim_tm.functional.certificates.plain import plain_radii


class CertifiedTriplets(NamedTuple):
    """The decision and certified radii of ``N`` triplets (see :func:`certify_triplets`)."""

    prefers_img1: Tensor
    tie: Tensor
    radius_reference: Tensor
    radius_all: Tensor


def certify_triplets(
    phi_ref: Tensor,
    phi_0: Tensor,
    phi_1: Tensor,
    features: tuple[Tensor, Tensor, Tensor],
    *,
    normalization: str,
    certificate: str,
    lipschitz: float,
) -> CertifiedTriplets:
    """The decision (bool ``(N,)`` prefers_img1, tie) and the radii float64 ``(N,)`` in user pixels.

    ``features``: the pre-normalisation backbone outputs ``(N, D)`` of ref, img0, img1. ``"plain"``
    certificate: the 1-Lipschitz radii (:mod:`.plain`); ``"norm_aware"``: the larger of those and the
    norm-aware radii (:mod:`.norm_aware`; only the norm-aware ones for the ``"plain"`` map, which is not
    1-Lipschitz). The margins (:func:`~.margins.triplet_margins`) are computed once for the decision and
    all radii.
    """
    margins = triplet_margins(phi_ref, phi_0, phi_1)
    prefers, tie = margins.prefers_img1, margins.tie
    if certificate == "plain":
        return CertifiedTriplets(prefers, tie, *plain_radii(margins, lipschitz))
    norms = norm_and_floor(torch.cat(features), normalization)[0].view(3, -1).t()  # (N, 3)
    ref, every = norm_aware_radii(margins, norms, NORM_FLOORS[normalization], lipschitz)
    if normalization != "plain":
        plain_ref, plain_all = plain_radii(margins, lipschitz)
        ref, every = torch.maximum(ref, plain_ref), torch.maximum(every, plain_all)
    return CertifiedTriplets(prefers, tie, ref, every)
