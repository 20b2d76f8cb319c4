"""LipSim's 2AFC decision alone (no certificate): cheap enough to re-check every adversarial triplet."""

from __future__ import annotations

import torch
from torch import Tensor

from lipsim_tm.functional import lipsim_embedding
from lipsim_tm.functional.certificates import decision
from lipsim_tm.models.weights import Weights


def prefers_img1(
    ref: Tensor, img0: Tensor, img1: Tensor, *, weights: Weights, normalization: str = "augment"
) -> tuple[Tensor, Tensor]:
    """``(prefers_img1, tie)`` bool ``(N,)`` as in :func:`~lipsim_tm.functional.two_afc`, one forward pass.

    Both distance forms give the same decision, so no ``distance`` argument; images ``(N, C, H, W)`` in [0, 1].
    """
    with torch.no_grad():
        phi = lipsim_embedding(torch.cat([ref, img0, img1]), weights=weights, normalization=normalization)
    return decision(*phi.chunk(3))
