"""One-call attacks for the two goals: flip 2AFC decisions, and move a distance."""

from __future__ import annotations

import torch
from torch import Tensor

from lipsim_tm.attacks.apgd import apgd
from lipsim_tm.attacks.budget import check_bounds, check_images
from lipsim_tm.attacks.objectives import DistanceChange, DistanceFn, TwoAFCFlip
from lipsim_tm.attacks.pgd import pgd
from lipsim_tm.attacks.problem import AttackResult, Objective
from lipsim_tm.checks import check_choice

#: Attack algorithms by name.
METHODS: tuple[str, ...] = ("apgd", "pgd")
#: Which 2AFC images an attack may perturb.
TWO_AFC_TARGETS: tuple[str, ...] = ("reference", "all")


def _run(
    method: str,
    objective: Objective,
    images: tuple[Tensor, ...],
    perturb: tuple[bool, ...],
    options: dict[str, object],
) -> AttackResult:
    check_choice("method", method, METHODS)
    attack = apgd if method == "apgd" else pgd
    return attack(objective, images, perturb, **options)  # type: ignore[arg-type]


def attack_2afc(
    distance_fn: DistanceFn,
    reference: Tensor,
    x0: Tensor,
    x1: Tensor,
    *,
    eps: float | Tensor,
    norm: str = "l2",
    perturb: str = "reference",
    method: str = "apgd",
    steps: int = 50,
    restarts: int = 1,
    lo: float = 0.0,
    hi: float = 1.0,
    generator: torch.Generator | int | None = None,
    **options: object,
) -> AttackResult:
    """Try to flip each 2AFC decision "x1 closer iff d(reference, x1) < d(reference, x0)".

    Args:
        distance_fn: ``(x, y) -> (N,)`` differentiable distance between image batches.
        reference, x0, x1: image batches ``(N, C, H, W)`` in ``[lo, hi]``.
        eps: budget per perturbed image in pixel units (number or ``(N,)`` tensor).
        norm: ``"l2"`` or ``"linf"``.
        perturb: ``"reference"`` (the certified threat model) or ``"all"`` (each image its own budget).
        method: ``"apgd"`` (default) or ``"pgd"``; ``options`` go to that function (e.g. ``relative_step``).

    Returns:
        :class:`AttackResult` with images ``(reference, x0, x1)``; ``success`` marks flipped decisions.
    """
    check_choice("perturb", perturb, TWO_AFC_TARGETS)
    check_images((reference, x0, x1), ("reference", "x0", "x1"), *check_bounds(lo, hi))
    objective = TwoAFCFlip(distance_fn, reference, x0, x1)
    mask = (True, False, False) if perturb == "reference" else (True, True, True)
    common = {"eps": eps, "norm": norm, "steps": steps, "restarts": restarts, "lo": lo, "hi": hi}
    return _run(method, objective, (reference, x0, x1), mask, {**common, "generator": generator, **options})


def attack_distance(
    distance_fn: DistanceFn,
    x: Tensor,
    y: Tensor,
    *,
    eps: float | Tensor,
    maximize: bool = True,
    threshold: float | Tensor | None = None,
    norm: str = "l2",
    method: str = "apgd",
    steps: int = 50,
    restarts: int = 1,
    lo: float = 0.0,
    hi: float = 1.0,
    generator: torch.Generator | int | None = None,
    **options: object,
) -> AttackResult:
    """Maximise (or minimise) ``distance_fn(x + delta, y)`` over ``||delta|| <= eps`` with ``x + delta`` in range.

    ``result.objective`` is the best distance (negated when minimising); ``success`` as in
    :class:`~lipsim_tm.attacks.objectives.DistanceChange`. Other arguments as in :func:`attack_2afc`.
    Without a threshold the attack runs all its steps (any improvement counts as success, so stopping at the
    first one would waste the budget); with one it stops once every sample reaches it. The cosine-form
    distance has zero gradient at ``x == y``: use ``restarts >= 2`` there (random starts).
    """
    check_images((x, y), ("x", "y"), *check_bounds(lo, hi))
    objective = DistanceChange(distance_fn, x, y, maximize=maximize, threshold=threshold)
    common = {"eps": eps, "norm": norm, "steps": steps, "restarts": restarts, "lo": lo, "hi": hi}
    options = {"stop_on_success": threshold is not None, **options}
    return _run(method, objective, (x,), (True,), {**common, "generator": generator, **options})
