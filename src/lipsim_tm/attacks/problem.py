"""What every attack shares: the objective over a tuple of images, which of them move, and the best point found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from lipsim_tm.attacks.budget import NORMS, check_bounds, check_eps, check_images, make_feasible, random_start
from lipsim_tm.checks import check_choice


class Objective(Protocol):
    """A per-sample score to maximise over a tuple of image batches, and when a score counts as success."""

    def __call__(self, images: tuple[Tensor, ...]) -> Tensor:
        """Scores ``(N,)`` for images ``(N, ...)`` each; differentiable in the images."""
        ...

    def succeeded(self, scores: Tensor) -> Tensor:
        """Boolean ``(N,)``: which scores reach the attack's goal."""
        ...


@dataclass(frozen=True)
class AttackResult:
    """Outcome of an attack on a batch of ``N`` samples.

    Attributes:
        images: the adversarial version of every input image batch, in the order given (images that were
            not perturbed are returned as given). Each is within the budget of its clean image and in range.
        success: ``(N,)`` bool, whether ``objective`` reaches the goal (``Objective.succeeded``).
        objective: ``(N,)`` the best score found, attained at ``images``.
        clean_objective: ``(N,)`` the score of the clean images.
    """

    images: tuple[Tensor, ...]
    success: Tensor
    objective: Tensor
    clean_objective: Tensor


def make_generator(generator: torch.Generator | int | None) -> torch.Generator:
    """A CPU generator: the one given, one seeded with the given int, or one seeded with 0."""
    if generator is None or (isinstance(generator, int) and not isinstance(generator, bool)):
        return torch.Generator().manual_seed(0 if generator is None else generator)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator (starts are drawn on the CPU), got {generator.device}")
    return generator


class Problem:
    """The images, which of them are perturbed, the budget and the objective of one attack."""

    def __init__(
        self,
        objective: Objective,
        images: Sequence[Tensor],
        perturb: Sequence[bool],
        *,
        eps: float | Tensor,
        norm: str,
        lo: float,
        hi: float,
    ) -> None:
        if not callable(objective) or not callable(getattr(objective, "succeeded", None)):
            raise TypeError(f"objective must be callable with a succeeded method, got {type(objective).__name__}")
        if isinstance(images, Tensor) or not isinstance(images, Sequence) or len(images) == 0:
            raise TypeError("images must be a non-empty sequence of tensors")
        if isinstance(perturb, Tensor) or not isinstance(perturb, Sequence) or len(perturb) != len(images):
            raise ValueError(f"perturb must be a sequence of {len(images)} bools, one per image batch, got {perturb!r}")
        if not all(isinstance(p, bool) for p in perturb) or not any(perturb):
            raise ValueError(f"perturb must hold bools with at least one True, got {list(perturb)!r}")
        self.norm = check_choice("norm", norm, NORMS)
        self.lo, self.hi = check_bounds(lo, hi)
        self.clean = check_images(images, [f"images[{i}]" for i in range(len(images))], self.lo, self.hi)
        self.clean = tuple(image.detach() for image in self.clean)
        self.batch = self.clean[0].shape[0]
        self.eps = check_eps(eps, self.batch, self.clean[0].device)
        self.perturbed = [i for i, p in enumerate(perturb) if p]
        self.objective = objective

    def full(self, moving: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """All input images, with the perturbed ones replaced by ``moving``."""
        images = list(self.clean)
        for i, image in zip(self.perturbed, moving, strict=True):
            images[i] = image
        return tuple(images)

    def _scores(self, images: tuple[Tensor, ...]) -> Tensor:
        scores = self.objective(images)
        if not isinstance(scores, Tensor) or scores.shape != (self.batch,) or not scores.is_floating_point():
            got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ValueError(f"the objective must return a floating-point tensor of shape ({self.batch},), got {got}")
        return scores

    def score(self, moving: Sequence[Tensor]) -> Tensor:
        """Scores ``(N,)`` at the perturbed images ``moving`` (one per perturbed input), without gradients."""
        with torch.no_grad():
            return self._scores(self.full(moving)).detach()

    def score_and_grad(self, moving: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Scores ``(N,)`` and their gradients with respect to each perturbed image."""
        leaves = [image.detach().requires_grad_(True) for image in moving]
        with torch.enable_grad():
            scores = self._scores(self.full(leaves))
            grads = torch.autograd.grad(scores.sum(), leaves, allow_unused=True)
        grads = [torch.zeros_like(leaf) if g is None else g.detach() for leaf, g in zip(leaves, grads, strict=True)]
        return scores.detach(), grads

    def feasible(self, candidates: Sequence[Tensor]) -> list[Tensor]:
        """Each candidate projected onto its image's budget and the valid range."""
        return [
            make_feasible(self.clean[i], c, self.eps, self.norm, self.lo, self.hi)
            for i, c in zip(self.perturbed, candidates, strict=True)
        ]

    def start(self, restart: int, generator: torch.Generator) -> list[Tensor]:
        """Starting point of a restart: the clean images for restart 0, a uniform draw from the ball after."""
        if restart == 0:
            return [self.clean[i] for i in self.perturbed]
        return [random_start(self.clean[i], self.eps, self.norm, self.lo, self.hi, generator) for i in self.perturbed]


class Best:
    """Per-sample best score and the perturbed images attaining it."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.images = [problem.clean[i] for i in problem.perturbed]
        self.clean_scores = problem.score(self.images)
        self.scores = self.clean_scores.clone()

    def update(self, scores: Tensor, moving: Sequence[Tensor]) -> Tensor:
        """Keep ``moving`` where ``scores`` is strictly better; returns the improved mask ``(N,)``."""
        better = scores > self.scores  # NaN scores never win
        self.scores = torch.where(better, scores, self.scores)
        self.images = [
            torch.where(better.view(-1, *([1] * (image.ndim - 1))), new, image)
            for image, new in zip(self.images, moving, strict=True)
        ]
        return better

    def all_succeeded(self) -> bool:
        return bool(self.problem.objective.succeeded(self.scores).all())

    def result(self) -> AttackResult:
        return AttackResult(
            images=self.problem.full(self.images),
            success=self.problem.objective.succeeded(self.scores),
            objective=self.scores,
            clean_objective=self.clean_scores,
        )
