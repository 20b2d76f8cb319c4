"""Attack goals as objectives to maximise: flip a 2AFC decision, move a distance, change a top-1 neighbour.

``distance_fn(x, y) -> (N,)`` is any differentiable distance between image batches: a LipSim functional,
torchmetrics' LPIPS with ``reduction="none"`` wrapped in a lambda, or a plain lambda.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

DistanceFn = Callable[[Tensor, Tensor], Tensor]


def call_distance(distance_fn: DistanceFn, x: Tensor, y: Tensor) -> Tensor:
    """``distance_fn(x, y)``, checked to be a floating-point ``(N,)`` tensor."""
    value = distance_fn(x, y)
    if not isinstance(value, Tensor) or value.shape != (x.shape[0],) or not value.is_floating_point():
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"distance_fn must return a floating-point tensor of shape ({x.shape[0]},), got {got}")
    return value


def _check_callable(name: str, fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


class TwoAFCFlip:
    """Flip the 2AFC decision on images ``(reference, x0, x1)``.

    The decision is "x1 is closer" iff ``d(reference, x1) < d(reference, x0)``. The score is the margin
    towards the other decision: ``d1 - d0`` where x1 was preferred on the clean images (success when
    ``>= 0``: the tie goes to x0), ``d0 - d1`` where x0 was preferred (success when ``> 0``). Perturb the
    reference only (``perturb=(True, False, False)``) or all three images.
    """

    def __init__(self, distance_fn: DistanceFn, reference: Tensor, x0: Tensor, x1: Tensor) -> None:
        _check_callable("distance_fn", distance_fn)
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
        _check_callable("distance_fn", distance_fn)
        if not isinstance(maximize, bool):
            raise TypeError(f"maximize must be a bool, got {type(maximize).__name__}")
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


class TopOneChange:
    """Change the nearest gallery item of queries ``(x,)``: ``embed_fn(x) -> (N, D)`` against ``gallery (M, D)``.

    Distances are ``||embed_fn(x) - g||^2 / 2``. The score is ``d(clean top-1) - min over other items of d``:
    success when it is ``> 0`` (another item strictly closer).
    """

    def __init__(self, embed_fn: Callable[[Tensor], Tensor], gallery: Tensor, x: Tensor) -> None:
        _check_callable("embed_fn", embed_fn)
        if not isinstance(gallery, Tensor) or gallery.ndim != 2 or gallery.shape[0] < 2:
            raise ValueError("gallery must be a tensor of shape (M, D) with M >= 2")
        self.embed_fn, self.gallery = embed_fn, gallery
        with torch.no_grad():
            #: ``(N,)`` index of each query's clean nearest gallery item.
            self.top1 = self._distances(x).argmin(dim=1)

    def _distances(self, x: Tensor) -> Tensor:
        phi = self.embed_fn(x)
        if not isinstance(phi, Tensor) or phi.ndim != 2 or phi.shape != (x.shape[0], self.gallery.shape[1]):
            got = tuple(phi.shape) if isinstance(phi, Tensor) else type(phi).__name__
            raise ValueError(f"embed_fn must return shape ({x.shape[0]}, {self.gallery.shape[1]}), got {got}")
        gallery = self.gallery.to(device=phi.device, dtype=phi.dtype)
        return torch.cdist(phi, gallery, compute_mode="donot_use_mm_for_euclid_dist").pow(2) / 2

    def __call__(self, images: tuple[Tensor, ...]) -> Tensor:
        (x,) = images
        distances = self._distances(x)
        own = distances.gather(1, self.top1.view(-1, 1)).squeeze(1)
        others = distances.scatter(1, self.top1.view(-1, 1), torch.inf).amin(dim=1)
        return own - others

    def succeeded(self, scores: Tensor) -> Tensor:
        return scores > 0
