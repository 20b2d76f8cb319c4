"""Projected gradient ascent (PGD) in l2 or l_inf with random restarts and a step-size schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lipsim_tm.attacks.budget import ascent_direction, per_sample
from lipsim_tm.attacks.problem import AttackResult, Best, Objective, Problem, make_generator
from lipsim_tm.checks import check_choice, check_int, check_number

#: Step-size schedules: ``"constant"``, or ``"cosine"`` (decays from the first step to 0 over the steps).
SCHEDULES: tuple[str, ...] = ("constant", "cosine")


def step_factor(schedule: str, step: int, steps: int) -> float:
    """Multiplier of the first step size at ``step`` (0-based) of ``steps``."""
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * step / steps))


def pgd(
    objective: Objective,
    images: Sequence[Tensor],
    perturb: Sequence[bool],
    *,
    eps: float | Tensor,
    norm: str = "l2",
    steps: int = 50,
    restarts: int = 1,
    relative_step: float = 0.25,
    schedule: str = "cosine",
    lo: float = 0.0,
    hi: float = 1.0,
    generator: torch.Generator | int | None = None,
    stop_on_success: bool = True,
) -> AttackResult:
    """Maximise ``objective(images)`` by PGD on the images marked in ``perturb``.

    Args:
        objective: per-sample score ``(N,)`` to maximise, with ``succeeded(scores)`` (see ``objectives``).
        images: the clean image batches ``(N, ...)``, float32/float64, values in ``[lo, hi]``.
        perturb: one bool per image batch: which ones the attack may change.
        eps: budget per perturbed image, in pixel units: a positive number or an ``(N,)`` tensor.
        norm: ``"l2"`` (over all of an image's pixels) or ``"linf"``.
        steps: gradient steps per restart.
        restarts: restart 0 starts at the clean images, later ones at a uniform draw from the ball.
        relative_step: first step length as a multiple of ``eps`` (l2 step ``a * g/||g||``, l_inf ``a * sign g``).
        schedule: ``"cosine"`` (default) or ``"constant"`` step size, see :func:`step_factor`.
        lo, hi: valid pixel range; every iterate stays inside it.
        generator: CPU ``torch.Generator`` or int seed for the random starts (None: seed 0). Deterministic.
        stop_on_success: stop as soon as every sample has succeeded.

    Returns:
        The best point over all steps and restarts (the clean images where nothing improved on them).
    """
    problem = Problem(objective, images, perturb, eps=eps, norm=norm, lo=lo, hi=hi)
    check_int("steps", steps, minimum=1)
    check_int("restarts", restarts, minimum=1)
    check_number("relative_step", relative_step, minimum=0.0, open_minimum=True)
    check_choice("schedule", schedule, SCHEDULES)
    generator = make_generator(generator)
    norm = problem.norm
    best = Best(problem)
    for restart in range(restarts):
        if stop_on_success and best.all_succeeded():
            break
        current = problem.start(restart, generator)
        for step in range(steps):
            scores, grads = problem.score_and_grad(current)
            best.update(scores, current)
            if stop_on_success and best.all_succeeded():
                break
            size = problem.eps * (relative_step * step_factor(schedule, step, steps))
            moved = [x + per_sample(size, x) * ascent_direction(g, norm) for x, g in zip(current, grads, strict=True)]
            current = problem.feasible(moved)
        else:
            best.update(problem.score(current), current)
    return best.result()
