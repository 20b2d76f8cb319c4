"""Certificate audits: attack certified decisions and distances, and measure how tight the certificates are."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lipsim_tm.attacks.api import METHODS, TWO_AFC_TARGETS, attack_2afc, attack_distance
from lipsim_tm.checks import check_choice, check_int, check_number
from lipsim_tm.functional.distance import certified_distance_interval, lipsim_distance
from lipsim_tm.functional.two_afc import TwoAFCResult, two_afc
from lipsim_tm.models.weights import Weights


@dataclass(frozen=True)
class AuditResult:
    """Per-triplet outcome of :func:`audit` (``N`` triplets, float64 unless stated).

    Attributes:
        radius: ``(N,)`` certified l2 radius (user pixels) for the audited threat model; 0 = not certified.
        smallest_flip: ``(N,)`` l2 norm of the smallest perturbation found that changes the decision (or
            makes it a tie); for ``perturb="all"`` the largest of the three images' norms. ``inf`` when
            no attack up to ``max_eps`` changed it.
        violations: bool ``(N,)``, ``smallest_flip < radius``: a broken certificate (never expected).
    """

    radius: Tensor
    smallest_flip: Tensor
    violations: Tensor

    @property
    def certified(self) -> Tensor:
        """bool ``(N,)``: triplets with a positive radius."""
        return self.radius > 0

    @property
    def ratio(self) -> Tensor:
        """``(N,)`` tightness ``smallest_flip / radius`` (``>= 1`` for sound certificates; NaN if not certified)."""
        return torch.where(self.certified, self.smallest_flip / self.radius.clamp_min(1e-300), math.nan)


def audit(
    ref: Tensor,
    img0: Tensor,
    img1: Tensor,
    *,
    weights: Weights,
    perturb: str = "reference",
    distance: str = "cosine",
    normalization: str = "augment",
    certificate: str = "norm_aware",
    method: str = "apgd",
    steps: int = 50,
    restarts: int = 3,
    bisection_steps: int = 8,
    max_eps: float = 8.0,
    seed: int = 0,
) -> AuditResult:
    """Search, per triplet, for the smallest l2 perturbation that changes LipSim's 2AFC decision.

    Budgets are first doubled from ``max(radius, 1e-3)`` until an attack changes the decision (or the
    budget passes ``max_eps``), then bisected ``bisection_steps`` times between the largest budget that
    failed and the smallest flipping norm found. A change is verified by re-evaluating the decision on
    the adversarial images (:func:`~lipsim_tm.functional.two_afc`), and its size is the actual norm of
    the perturbation, not the budget. The radius is the certificate of ``two_afc`` (``radius_reference``
    or ``radius_all`` for ``perturb="all"``) under the rule ``certificate`` (see
    :data:`~lipsim_tm.functional.certificates.policy.CERTIFICATES`).

    Args:
        ref, img0, img1: ``(N, C, H, W)`` images in [0, 1]; ``weights``: see :mod:`lipsim_tm.models.weights`.
        perturb: ``"reference"`` or ``"all"`` (each image moves by at most the budget).
        method, steps, restarts: the attack, :func:`~lipsim_tm.attacks.attack_2afc`.
    """
    check_choice("perturb", perturb, TWO_AFC_TARGETS)
    check_choice("method", method, METHODS)
    check_int("bisection_steps", bisection_steps, minimum=0)
    check_number("max_eps", max_eps, minimum=0.0, open_minimum=True)
    options = {"weights": weights, "distance": distance, "normalization": normalization}

    def decide(*images: Tensor) -> TwoAFCResult:
        with torch.no_grad():
            return two_afc(*images, certificate=certificate, **options)

    clean = decide(ref, img0, img1)
    radius = clean.radius_reference if perturb == "reference" else clean.radius_all
    originals = (ref, img0, img1)

    def distance_fn(x: Tensor, y: Tensor) -> Tensor:
        return lipsim_distance(x, y, **options)

    def flip_norms(index: Tensor, eps: Tensor) -> Tensor:
        """Norm of a verified decision-changing perturbation per attacked triplet, ``inf`` where none."""
        images = tuple(t[index] for t in originals)
        result = attack_2afc(
            distance_fn, *images, eps=eps, perturb=perturb, method=method, steps=steps, restarts=restarts,
            generator=seed,
        )  # fmt: skip
        again = decide(*result.images)
        changed = again.tie | (again.prefers_img1 != clean.prefers_img1[index]) | clean.tie[index]
        norms = torch.stack(
            [(a - b).double().flatten(1).norm(dim=1) for a, b in zip(result.images, images, strict=True)]
        ).amax(dim=0)
        return torch.where(changed, norms, math.inf)

    n = ref.shape[0]
    found = torch.full((n,), math.inf, dtype=torch.float64, device=ref.device)
    low = torch.zeros(n, dtype=torch.float64, device=ref.device)
    eps = radius.clamp_min(1e-3)
    pending = torch.ones(n, dtype=torch.bool, device=ref.device)
    while pending.any():
        index = pending.nonzero().squeeze(1)
        norms = flip_norms(index, eps[index])
        found[index] = norms
        failed = torch.isinf(norms)
        low[index[failed]] = eps[index[failed]]
        pending[index[~failed]] = False
        eps = torch.where(pending, 2 * eps, eps)
        pending &= eps <= max_eps
    for _ in range(bisection_steps):
        index = torch.isfinite(found).nonzero().squeeze(1)
        if index.numel() == 0:
            break
        mid = (low[index] + found[index]) / 2
        norms = flip_norms(index, mid)
        found[index] = torch.minimum(found[index], norms)
        low[index] = torch.where(torch.isinf(norms), mid, low[index])
    return AuditResult(radius=radius, smallest_flip=found, violations=found < radius)


@dataclass(frozen=True)
class DistanceAudit:
    """Outcome of :func:`audit_distance`: float64 ``(N,)`` certified bounds and the extremes attacks reached."""

    lower: Tensor
    upper: Tensor
    attacked_min: Tensor
    attacked_max: Tensor

    @property
    def inside(self) -> Tensor:
        """bool ``(N,)``: both attacked extremes lie within ``[lower, upper]``."""
        return (self.lower <= self.attacked_min) & (self.attacked_max <= self.upper)


def audit_distance(
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    weights: Weights,
    distance: str = "cosine",
    normalization: str = "augment",
    method: str = "apgd",
    steps: int = 50,
    restarts: int = 3,
    seed: int = 0,
) -> DistanceAudit:
    """Push ``d(x + delta, y)`` up and down over ``||delta|| <= eps`` and compare with its certified interval.

    The interval is :func:`~lipsim_tm.functional.certified_distance_interval` (``perturbed="one"``).
    """
    options = {"weights": weights, "distance": distance, "normalization": normalization}
    with torch.no_grad():
        interval = certified_distance_interval(x, y, eps, **options)

    def distance_fn(a: Tensor, b: Tensor) -> Tensor:
        return lipsim_distance(a, b, **options)

    common = {"eps": eps, "method": method, "steps": steps, "restarts": restarts, "generator": seed}
    up = attack_distance(distance_fn, x, y, maximize=True, **common)
    down = attack_distance(distance_fn, x, y, maximize=False, **common)
    with torch.no_grad():
        highest = distance_fn(up.images[0], y).double()
        lowest = distance_fn(down.images[0], y).double()
    return DistanceAudit(interval.lower, interval.upper, lowest, highest)
