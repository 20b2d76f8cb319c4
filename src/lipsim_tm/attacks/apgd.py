"""APGD (Croce & Hein, 2020): momentum PGD whose step size halves at checkpoints, restarting from the best point."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lipsim_tm.attacks.budget import ascent_direction, per_sample
from lipsim_tm.attacks.problem import AttackResult, Best, Objective, Problem, make_generator
from lipsim_tm.checks import check_int

_MOMENTUM = 0.75  # alpha of the paper: weight of the new projected step against the previous move
_RHO = 0.75  # a step size is kept only if at least this fraction of the steps since the last checkpoint improved


def checkpoints(steps: int) -> list[int]:
    """Iterations ``w_j < steps`` at which APGD may halve its step size.

    The paper's ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``, ``w_j = p_j steps``,
    in integer arithmetic as in the authors' code: first interval ``int(0.22 steps)``, each next one shorter by
    ``int(0.03 steps)`` down to ``int(0.06 steps)`` (each at least 1). For 100 steps: 22, 41, 57, 70, 80, 87, 93, 99.
    """
    interval = max(int(0.22 * steps), 1)
    decrease, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    marks = []
    while (marks[-1] if marks else 0) + interval < steps:
        marks.append((marks[-1] if marks else 0) + interval)
        interval = max(interval - decrease, shortest)
    return marks


def apgd(
    objective: Objective,
    images: Sequence[Tensor],
    perturb: Sequence[bool],
    *,
    eps: float | Tensor,
    norm: str = "l2",
    steps: int = 50,
    restarts: int = 1,
    lo: float = 0.0,
    hi: float = 1.0,
    generator: torch.Generator | int | None = None,
    stop_on_success: bool = True,
) -> AttackResult:
    """Maximise ``objective(images)`` by APGD on the images marked in ``perturb``.

    Per sample: first step size ``2 eps``; each iterate is ``P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))``
    with ``z = P(x_k + eta * direction(grad))`` and ``P`` the feasible projection; at each checkpoint
    (:func:`checkpoints`) the step size is halved and the iterate reset to the best point when fewer than
    75% of the steps since the previous checkpoint increased the score, or when neither the step size nor
    the best score changed since then. Arguments as in :func:`lipsim_tm.attacks.pgd` (``eps`` per perturbed
    image in pixel units; restart 0 starts at the clean images, later restarts at random feasible points).

    Returns:
        The best point over all iterations and restarts.
    """
    problem = Problem(objective, images, perturb, eps=eps, norm=norm, lo=lo, hi=hi)
    check_int("steps", steps, minimum=2)
    check_int("restarts", restarts, minimum=1)
    generator = make_generator(generator)
    best = Best(problem)
    marks = checkpoints(steps)
    for restart in range(restarts):
        if stop_on_success and best.all_succeeded():
            break
        _run(problem, best, problem.start(restart, generator), steps, marks, stop_on_success)
    return best.result()


def _select(mask: Tensor, new: list[Tensor], old: list[Tensor]) -> list[Tensor]:
    return [torch.where(mask.view(-1, *([1] * (a.ndim - 1))), a, b) for a, b in zip(new, old, strict=True)]


def _run(
    problem: Problem, best: Best, start: list[Tensor], steps: int, marks: list[int], stop_on_success: bool
) -> None:
    """One APGD run from ``start``, updating ``best`` at every iterate."""
    norm = problem.norm
    eta = 2.0 * problem.eps
    x, (score, grad) = start, problem.score_and_grad(start)
    best.update(score, x)
    # The restart's own best point, with its gradient, for resets at checkpoints.
    run_best_x, run_best_score, run_best_grad = x, score.clone(), grad
    previous = x
    increases = torch.zeros_like(score, dtype=torch.long)
    last_mark, last_eta, last_best = 0, eta.clone(), run_best_score.clone()
    for k in range(steps - 1):
        z = problem.feasible([a + per_sample(eta, a) * ascent_direction(g, norm) for a, g in zip(x, grad, strict=True)])
        if k == 0:
            new_x = z
        else:
            new_x = problem.feasible(
                [a + _MOMENTUM * (b - a) + (1 - _MOMENTUM) * (a - c) for a, b, c in zip(x, z, previous, strict=True)]
            )
        new_score, new_grad = problem.score_and_grad(new_x)
        best.update(new_score, new_x)
        increases += (new_score > score).long()
        improved = new_score > run_best_score
        run_best_x = _select(improved, new_x, run_best_x)
        run_best_grad = _select(improved, new_grad, run_best_grad)
        run_best_score = torch.where(improved, new_score, run_best_score)
        previous, x, score, grad = x, new_x, new_score, new_grad
        if stop_on_success and best.all_succeeded():
            return
        if k + 1 in marks:
            slow = increases.double() < _RHO * (k + 1 - last_mark)
            stalled = (eta == last_eta) & (run_best_score == last_best)
            halve = slow | stalled
            eta = torch.where(halve, eta / 2, eta)
            x = _select(halve, run_best_x, x)
            previous = _select(halve, run_best_x, previous)
            grad = _select(halve, run_best_grad, grad)
            score = torch.where(halve, run_best_score, score)
            increases.zero_()
            last_mark, last_eta, last_best = k + 1, eta.clone(), run_best_score.clone()
