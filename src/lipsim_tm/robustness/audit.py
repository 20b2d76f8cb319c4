"""Certificate audits: attack certified decisions and distances, and measure how tight the certificates are."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lipsim_tm.attacks import METHODS, TWO_AFC_TARGETS, attack_2afc, attack_distance
from lipsim_tm.functional import certified_distance_interval, lipsim_distance, two_afc
from lipsim_tm.models.weights import Weights
from lipsim_tm.robustness.decide import prefers_img1


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


def _check_positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


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
    :data:`~lipsim_tm.functional.CERTIFICATES`).

    Args:
        ref, img0, img1: ``(N, C, H, W)`` images in [0, 1]; ``weights``: see :mod:`lipsim_tm.models.weights`.
        perturb: ``"reference"`` or ``"all"`` (each image moves by at most the budget).
        method, steps, restarts: the attack, :func:`~lipsim_tm.attacks.attack_2afc`.
    """
    if perturb not in TWO_AFC_TARGETS:
        raise ValueError(f"perturb must be one of {TWO_AFC_TARGETS}, got {perturb!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_positive_int("bisection_steps", bisection_steps, 0)
    if isinstance(max_eps, bool) or not isinstance(max_eps, (int, float)) or not 0 < max_eps < math.inf:
        raise ValueError(f"max_eps must be a positive finite number, got {max_eps!r}")
    options = {"weights": weights, "distance": distance, "normalization": normalization}
    with torch.no_grad():
        clean = two_afc(ref, img0, img1, certificate=certificate, **options)
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
        prefers, tie = prefers_img1(*result.images, weights=weights, normalization=normalization)
        changed = tie | (prefers != clean.prefers_img1[index]) | clean.tie[index]
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
