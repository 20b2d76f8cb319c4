"""Maps from embeddings to (at most) unit vectors, with their exact Lipschitz bounds.

Certificates need the normalised embedding ``phi`` to be 1-Lipschitz in the embedding. Two maps
are sound everywhere (:class:`ConstantAugmentNormalize`, :class:`UnitBallProjection`); plain
``v / ||v||`` (:class:`PlainNormalize`) is not and is offered only for compatibility.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ConstantAugmentNormalize(nn.Module):
    """``phi(v) = [v; c] / ||[v; c]||``: ``(N, D) -> (N, D + 1)``, unit norm.

    Lipschitz bound: 1 for ``c >= 1``. Appending a constant is an isometry, and every augmented
    vector has norm ``>= c >= 1``. For ``a, b != 0``,
    ``||a/|a| - b/|b|||^2 = (||a - b||^2 - (|a| - |b|)^2) / (|a| |b|) <= ||a - b||^2 / (|a| |b|)``,
    which is ``<= ||a - b||^2`` when both norms are ``>= 1``. The norm is never below ``c``, so
    gradients are finite everywhere. This is the official ``requires_bias`` option (``c = 1``).
    """

    def __init__(self, constant: float = 1.0) -> None:
        super().__init__()
        if not (math.isfinite(constant) and constant >= 1.0):
            raise ValueError(f"constant must be finite and >= 1 for a 1-Lipschitz map, got {constant}")
        self.constant = float(constant)

    def forward(self, v: Tensor) -> Tensor:
        augmented = torch.cat([v, v.new_full((v.shape[0], 1), self.constant)], dim=1)
        return augmented / augmented.norm(dim=1, keepdim=True)

    def extra_repr(self) -> str:
        return f"constant={self.constant}"


class UnitBallProjection(nn.Module):
    """Euclidean projection onto the unit ball, ``v / max(1, ||v||)``: ``(N, D) -> (N, D)``.

    Lipschitz bound: 1 everywhere; the projection onto a closed convex set is non-expansive.
    Outputs have norm ``<= 1`` (exactly 1 when ``||v|| >= 1``). The squared norm is clamped before
    the square root, so the gradient at ``v = 0`` is finite.
    """

    def forward(self, v: Tensor) -> Tensor:
        scale = v.pow(2).sum(dim=1, keepdim=True).clamp_min(1.0).sqrt()
        return v / scale


class PlainNormalize(nn.Module):
    """``v / ||v||`` (the official default): ``(N, D) -> (N, D)``. NOT 1-Lipschitz.

    Its local Lipschitz constant at ``v`` is ``1 / ||v||``, unbounded near 0, so a certificate that
    treats it as 1-Lipschitz is a proof only where embedding norms stay above 1. Offered only for
    compatibility with the released checkpoints; norm-aware certificates account for it soundly.
    ``eps`` keeps the output finite at ``v = 0``.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, v: Tensor) -> Tensor:
        return v / v.norm(dim=1, keepdim=True).clamp_min(self.eps)
