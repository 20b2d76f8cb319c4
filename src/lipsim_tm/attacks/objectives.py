"""Attack goals as objectives to maximise: flip a 2AFC decision, move a distance.

``distance_fn(x, y) -> (N,)`` is any differentiable distance between image batches: a LipSim functional,
torchmetrics' LPIPS with ``reduction="none"`` wrapped in a lambda, or a plain lambda.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lipsim_tm.checks import check_bool, check_callable

DistanceFn = Callable[[Tensor, Tensor], Tensor]


def call_distance(distance_fn: DistanceFn, x: Tensor, y: Tensor) -> Tensor:
    """``distance_fn(x, y)``, checked to be a floating-point ``(N,)`` tensor."""
    value = distance_fn(x, y)
    if not isinstance(value, Tensor) or value.shape != (x.shape[0],) or not value.is_floating_point():
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"distance_fn must return a floating-point tensor of shape ({x.shape[0]},), got {got}")
    return value


class TwoAFCFlip:
    """Flip the 2AFC decision on images ``(reference, x0, x1)``.

    The decision is "x1 is closer" iff ``d(reference, x1) < d(reference, x0)``. The score is the margin
    towards the other decision: ``d1 - d0`` where x1 was preferred on the clean images (success when
    ``>= 0``: the tie goes to x0), ``d0 - d1`` where x0 was preferred (success when ``> 0``). Perturb the
    reference only (``perturb=(True, False, False)``) or all three images.
    """

    def __init__(self, distance_fn: DistanceFn, reference: Tensor, x0: Tensor, x1: Tensor) -> None:
        check_callable("distance_fn", distance_fn)
        with torch.no_grad():
            d0 = call_distance(distance_fn, reference, x0)
            d1 = call_distance(distance_fn, reference, x1)
        self.distance_fn = distance_fn
        #: ``(N,)`` bool, the clean decision: True where x1 is closer to the reference.
        self.prefers_x1 = d1 < d0

    def __call__(self, images: tuple[Tensor, ...]) -> Tensor:
        reference, x0, x1 = images
        margin = call_distance(self.distance_fn, reference, x1) - call_distance(self.distance_fn, reference, x0)
        return torch.where(self.prefers_x1.to(margin.device), margin, -margin)

    def succeeded(self, scores: Tensor) -> Tensor:
        return torch.where(self.prefers_x1.to(scores.device), scores >= 0, scores > 0)


class DistanceChange:
    """Maximise (or minimise) ``d(x + delta, y)`` over images ``(x,)`` against the fixed ``y``.

    The score is ``d`` when maximising and ``-d`` when minimising. Success: with a ``threshold`` (a number
    or ``(N,)`` tensor), ``d >= threshold`` (maximising) or ``d <= threshold`` (minimising); without one,
    any strict improvement over the clean distance.
    """

    def __init__(
        self,
        distance_fn: DistanceFn,
        x: Tensor,
        y: Tensor,
        *,
        maximize: bool = True,
        threshold: float | Tensor | None = None,
    ) -> None:
        check_callable("distance_fn", distance_fn)
        check_bool("maximize", maximize)
        self.distance_fn, self.y, self.sign = distance_fn, y, 1.0 if maximize else -1.0
        with torch.no_grad():
            self.clean_scores = self.sign * call_distance(distance_fn, x, y)
        if threshold is None:
            self.target = self.clean_scores
            self.strict = True
        else:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float, Tensor)):
                raise TypeError(f"threshold must be a number, a (N,) tensor or None, got {type(threshold).__name__}")
            target = torch.as_tensor(threshold, dtype=self.clean_scores.dtype, device=self.clean_scores.device)
            if target.ndim > 1 or (target.ndim == 1 and target.shape != self.clean_scores.shape):
                raise ValueError(f"threshold must be a number or of shape {tuple(self.clean_scores.shape)}")
            self.target = self.sign * target.expand_as(self.clean_scores)
            self.strict = False

    def __call__(self, images: tuple[Tensor, ...]) -> Tensor:
        (x,) = images
        return self.sign * call_distance(self.distance_fn, x, self.y)

    def succeeded(self, scores: Tensor) -> Tensor:
        target = self.target.to(scores.device)
        return scores > target if self.strict else scores >= target
