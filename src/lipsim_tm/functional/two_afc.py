"""The 2AFC decision with its certified radii: its core and the functional form :func:`two_afc`.

The core has torchmetrics' shape: :func:`_two_afc_update` takes the backbone features of ``(ref, img0, img1)``
and their Lipschitz bounds and gives each triplet's decision, distances and radii (:class:`TwoAFCResult`);
:func:`_two_afc_counts` turns those and the human targets into the sums a metric accumulates
(:class:`TwoAFCCounts`); :func:`_two_afc_compute` and :func:`_two_afc_summary` turn the sums into the reported
numbers. Every entry point calls them: :func:`two_afc`, :class:`~lipsim_tm.metrics.Certified2AFCAccuracy`, the
command line, robustness reports and audits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from lipsim_tm.checks import check_range, check_tensor
from lipsim_tm.functional.certificates.margins import triplet_margins
from lipsim_tm.functional.certificates.norm_aware import NORM_FLOORS, norm_and_floor, norm_aware_radii
from lipsim_tm.functional.certificates.plain import plain_radii
from lipsim_tm.functional.certificates.policy import check_certificate
from lipsim_tm.functional.confidence import Estimate, mean_interval, wilson
from lipsim_tm.functional.distance import Bound, check_distance, embedding_distance, largest
from lipsim_tm.functional.embedding import features_of, lipschitz_constant, network_dtype, prepare_call
from lipsim_tm.functional.normalization import apply_normalization, check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.functional.text import describe_eps
from lipsim_tm.models.weights import Weights


class TwoAFCResult(NamedTuple):
    """Outcome of :func:`two_afc` for ``N`` triplets.

    Attributes:
        prefers_img1: bool ``(N,)``, ``d1 < d0`` (compared in float64 from the embeddings), never on a tie.
        tie: bool ``(N,)``, ``d1 == d0`` up to the floating-point slack (see
            :class:`~lipsim_tm.functional.certificates.margins.TripletMargins`).
        d0, d1: ``(N,)`` distances reference-img0 and reference-img1 (at least float32, differentiable).
        radius_reference: float64 ``(N,)`` l2 radius in user pixels: no perturbation of the reference of
            smaller norm changes the decision.
        radius_all: float64 ``(N,)`` the same when each of the three images may be perturbed by that much.
        certificate: the rule that produced the radii, ``"norm_aware"`` or ``"plain"``.
    """

    prefers_img1: Tensor
    tie: Tensor
    d0: Tensor
    d1: Tensor
    radius_reference: Tensor
    radius_all: Tensor
    certificate: str


def _two_afc_update(
    features_ref: Tensor,
    features_0: Tensor,
    features_1: Tensor,
    *,
    distance: str,
    normalization: str,
    certificate: str,
    lipschitz: Bound | Sequence[Bound],
) -> TwoAFCResult:
    """Decision, distances and certified radii of ``N`` triplets from their backbone features ``(N, D)`` each.

    ``lipschitz``: the bound ``L`` of the map from user pixels to the embedding, one for all three images or one
    per image batch ``(L_ref, L_0, L_1)`` (files of different sizes): the reference radius uses ``L_ref`` (only the
    reference moves), the all-images radius the largest. ``"plain"`` certificate: the 1-Lipschitz radii
    (:func:`~lipsim_tm.functional.certificates.plain.plain_radii`); ``"norm_aware"``: the larger of those and the
    norm-aware radii (:func:`~lipsim_tm.functional.certificates.norm_aware.norm_aware_radii`; only the norm-aware
    ones for the ``"plain"`` map, which is not 1-Lipschitz). The margins are computed once for the decision and
    every radius. Arguments are trusted (the entry points check them).
    """
    bounds = tuple(lipschitz) if isinstance(lipschitz, (tuple, list)) else (lipschitz,)
    lipschitz_reference, lipschitz_all = bounds[0], largest(*bounds)
    phi_r, phi_0, phi_1 = (apply_normalization(f, normalization) for f in (features_ref, features_0, features_1))
    margins = triplet_margins(phi_r, phi_0, phi_1)
    reference, every = plain_radii(margins, lipschitz_reference, lipschitz_all)
    if certificate == "norm_aware":
        features = torch.cat([features_ref, features_0, features_1])
        norms = norm_and_floor(features, normalization)[0].view(3, -1).t()  # (N, 3)
        aware_ref, aware_all = norm_aware_radii(
            margins, norms, NORM_FLOORS[normalization], lipschitz_reference, lipschitz_all
        )
        if normalization == "plain":  # v/||v|| is not 1-Lipschitz: the norm-aware radii alone
            reference, every = aware_ref, aware_all
        else:
            reference, every = torch.maximum(aware_ref, reference), torch.maximum(aware_all, every)
    return TwoAFCResult(
        prefers_img1=margins.prefers_img1,
        tie=margins.tie,
        d0=embedding_distance(phi_r, phi_0, distance),
        d1=embedding_distance(phi_r, phi_1, distance),
        radius_reference=reference,
        radius_all=every,
        certificate=certificate,
    )


class TwoAFCCounts(NamedTuple):
    """Float64 sums over triplets that a 2AFC metric accumulates (``K`` budgets); fields are the metric's states.

    - ``score_sum``, ``score_sq_sum``: sum and sum of squares of the soft score (``p`` when the metric prefers
      img1, ``1 - p`` when img0, 0.5 on a tie);
    - ``total``: triplets; ``decided_total``: those with ``p != 0.5``; ``correct_total``: decided ones where the
      metric prefers the image of ``round(p)`` (ties wrong);
    - ``certified_reference``, ``certified_all``: ``(K,)`` correct triplets whose radius (reference only; each
      image) exceeds each budget.
    """

    score_sum: Tensor
    score_sq_sum: Tensor
    total: Tensor
    decided_total: Tensor
    correct_total: Tensor
    certified_reference: Tensor
    certified_all: Tensor

    @classmethod
    def zeros(cls, budgets: int, device: torch.device | str = "cpu") -> TwoAFCCounts:
        """No triplets yet: float64 zeros (``(budgets,)`` for the certified counts)."""
        return cls.from_flat(torch.zeros(5 + 2 * budgets, dtype=torch.float64, device=device), budgets)

    def plus(self, other: TwoAFCCounts) -> TwoAFCCounts:
        """Field-wise sum (float64 where either is)."""
        return TwoAFCCounts(*(a + b for a, b in zip(self, other, strict=True)))

    def flat(self) -> Tensor:
        """All counts in one float64 vector (e.g. for one ``all_reduce``); :meth:`from_flat` inverts it."""
        return torch.cat([value.double().reshape(-1) for value in self])

    @classmethod
    def from_flat(cls, values: Tensor, budgets: int) -> TwoAFCCounts:
        """The counts of a :meth:`flat` vector of ``budgets`` budgets."""
        return cls(*values[:5], values[5 : 5 + budgets], values[5 + budgets : 5 + 2 * budgets])


def _two_afc_agreement(result: TwoAFCResult, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(score, decided, correct)`` ``(N,)`` of triplets with float64 targets ``p`` (see :class:`TwoAFCCounts`)."""
    score = torch.where(result.tie, 0.5, torch.where(result.prefers_img1, target, 1 - target))
    decided = target != 0.5
    correct = decided & ~result.tie & (result.prefers_img1 == (target > 0.5))
    return score, decided, correct


def _two_afc_counts(result: TwoAFCResult, target: Tensor, epsilons: Tensor) -> TwoAFCCounts:
    """The sums of ``N`` triplets: float64 targets ``(N,)`` and budgets ``(K,)`` on the results' device."""
    score, decided, correct = _two_afc_agreement(result, target)
    return TwoAFCCounts(
        score_sum=score.sum(),
        score_sq_sum=score.pow(2).sum(),
        total=torch.tensor(float(target.shape[0]), dtype=torch.float64, device=target.device),
        decided_total=decided.sum(),
        correct_total=correct.sum(),
        certified_reference=(correct[:, None] & (result.radius_reference[:, None] > epsilons)).sum(0),
        certified_all=(correct[:, None] & (result.radius_all[:, None] > epsilons)).sum(0),
    )


def two_afc_keys(epsilons: Sequence[float]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The result keys of the certified accuracies at ``epsilons``: ``certified_2afc@<eps>`` and
    ``certified_2afc_all@<eps>`` (``eps`` formatted with ``:.4g``)."""
    return (
        tuple(f"certified_2afc@{eps:.4g}" for eps in epsilons),
        tuple(f"certified_2afc_all@{eps:.4g}" for eps in epsilons),
    )


class TwoAFCScores(dict):
    """The numbers of a 2AFC evaluation by name. ``"2afc"``, the earlier name of ``"score_2afc"``, still reads (with
    a ``FutureWarning``) until the next release."""

    def __missing__(self, key: str) -> Any:
        if key == "2afc":
            warnings.warn('the key "2afc" is now "score_2afc"', FutureWarning, stacklevel=2)
            return self["score_2afc"]
        raise KeyError(key)


def _two_afc_compute(counts: TwoAFCCounts, epsilons: Sequence[float]) -> dict[str, Tensor]:
    """``{"score_2afc", "natural_accuracy", "certified_2afc@<eps>"..., "certified_2afc_all@<eps>"...}`` (float32)
    from the sums (NaN where a denominator is 0)."""
    result = TwoAFCScores(
        {
            "score_2afc": (counts.score_sum / counts.total).float(),
            "natural_accuracy": (counts.correct_total / counts.decided_total).float(),
        }
    )
    reference = (counts.certified_reference / counts.decided_total).float()
    everything = (counts.certified_all / counts.decided_total).float()
    keys, keys_all = two_afc_keys(epsilons)
    result.update({key: reference[i] for i, key in enumerate(keys)})
    result.update({key: everything[i] for i, key in enumerate(keys_all)})
    return result


@dataclass(frozen=True)
class CertifiedRow:
    """Certified accuracy at one l2 budget ``eps`` (user pixels): the reference perturbed, or all three images."""

    eps: float
    reference: Estimate
    all: Estimate


@dataclass(frozen=True)
class TwoAFCSummary:
    """Counts, rates and 95% intervals of a 2AFC evaluation (:func:`_two_afc_summary`).

    - ``score_2afc``: the soft 2AFC score over all ``triplets`` (``p`` when the metric prefers img1, ``1 - p`` when
      it prefers img0, 0.5 on a tie), normal interval;
    - ``natural_accuracy``: the hard natural accuracy over the ``decided`` triplets (``p != 0.5``): the metric
      prefers the image most people chose, ties wrong; Wilson interval. The certified accuracies' population and
      rule, so each certified accuracy is at most this;
    - ``rows``: certified accuracy per budget (correct AND radius > eps, over the decided triplets), Wilson.
    """

    triplets: int
    decided: int
    score_2afc: Estimate
    natural_accuracy: Estimate
    rows: tuple[CertifiedRow, ...]

    def __str__(self) -> str:
        """The summary as a text table (:func:`two_afc_table`)."""
        return "\n".join(two_afc_table([("all", self)]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as ``None``)."""
        return {
            "triplets": self.triplets,
            "decided": self.decided,
            "score_2afc": self.score_2afc.to_dict(),
            "natural_accuracy": self.natural_accuracy.to_dict(),
            "certified": [
                {"eps": row.eps, "reference": row.reference.to_dict(), "all": row.all.to_dict()} for row in self.rows
            ],
        }


def two_afc_table(parts: Sequence[tuple[str, TwoAFCSummary]], paper: Mapping[str, Any] | None = None) -> list[str]:
    """The lines of a table of 2AFC summaries ``(name, summary)`` evaluated at the same budgets: counts, soft score
    and natural accuracy, then certified accuracy per eps (each with its 95% interval); ``paper`` (numbers a paper
    reports: ``score``, ``certified`` ``{eps: value}``, ``note``) beside them."""
    paper = paper or {}
    lines = [
        f"{'subset':<14}{'triplets':>9}{'decided':>9}  {'2AFC score (soft) [95%]':<26}  {'natural accuracy [95%]':<26}"
    ]
    for name, s in parts:
        lines.append(f"{name:<14}{s.triplets:>9}{s.decided:>9}  {s.score_2afc!s:<26}  {s.natural_accuracy!s:<26}")
    if "score" in paper:
        lines.append(f"{'paper':<14}{'':>9}{'':>9}  {paper['score']:<26.4f}")
    lines.append("certified accuracy (decided triplets predicted correctly with certified radius > eps) [95%]:")
    lines.append(
        f"{'eps (l2, [0, 1] pixels)':<24}{'subset':<14}{'reference perturbed':<26}  {'all three perturbed':<26}"
    )
    certified_paper = paper.get("certified", {})
    for i, row in enumerate(parts[0][1].rows if parts else ()):
        for name, s in parts:
            r = s.rows[i]
            lines.append(f"{describe_eps(r.eps):<24}{name:<14}{r.reference!s:<26}  {r.all!s:<26}")
        match = [v for eps, v in certified_paper.items() if abs(eps - row.eps) < 1e-9]
        if match:
            lines.append(f"{'':<24}{'paper':<14}{match[0]:<26.4f}")
    if "note" in paper:
        lines.append(f"paper: {paper['note']}")
    return [line.rstrip() for line in lines]


def _two_afc_summary(counts: TwoAFCCounts, epsilons: Sequence[float]) -> TwoAFCSummary:
    """Counts, rates and 95% intervals from the sums: Wilson intervals for the accuracies, a normal one for the
    soft score (:mod:`~lipsim_tm.functional.confidence`)."""
    decided = round(float(counts.decided_total))
    reference, everything = counts.certified_reference.tolist(), counts.certified_all.tolist()
    rows = tuple(
        CertifiedRow(eps, wilson(reference[i], decided), wilson(everything[i], decided))
        for i, eps in enumerate(epsilons)
    )
    total = round(float(counts.total))
    return TwoAFCSummary(
        triplets=total,
        decided=decided,
        score_2afc=mean_interval(float(counts.score_sum), float(counts.score_sq_sum), total),
        natural_accuracy=wilson(float(counts.correct_total), decided),
        rows=rows,
    )


def check_target(target: object, n: int, device: torch.device, *, values: bool = True) -> Tensor:
    """``target`` as float64 ``(n,)`` on ``device``: the share of people judging img1 closer, in ``[0, 1]``
    (0/1 labels, int or bool, accepted). ``values=False`` skips the look at the data (no host transfer)."""
    target = check_tensor("target", target)
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},) (one judgment per triplet), got {tuple(target.shape)}")
    if target.is_complex():
        raise TypeError(f"target must be real (fractions in [0, 1] or 0/1 labels), got {target.dtype}")
    if target.device != device:
        raise ValueError(f"target is on {target.device} but the images are on {device}")
    p = target.double()
    if values:
        check_range("target", p, 0.0, 1.0, context=" (the share of people judging img1 closer)")
    return p


def two_afc(
    ref: Tensor,
    img0: Tensor,
    img1: Tensor,
    *,
    weights: Weights = "default",
    distance: str = "cosine",
    normalization: str = "augment",
    certificate: str = "norm_aware",
    data_range: DataRange = 1.0,
    grayscale: bool = False,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> TwoAFCResult:
    """Which of ``img0``, ``img1`` is closer to ``ref``, with certified radii (see :class:`TwoAFCResult`).

    ``ref, img0, img1``: ``(N, C, H, W)`` of one shape, in ``data_range``; one batched forward pass.
    Radii are stated in the user's pixel units (the units of ``data_range``) and derived in
    :func:`~lipsim_tm.functional.certificates.plain.plain_radii`: with ``L`` the Lipschitz bound of the embedding
    from user pixels, ``R_ref = |u_0^2 - u_1^2| / (2 L ||phi_0 - phi_1||)`` (cosine form:
    ``|d_0 - d_1| / (L ||phi_0 - phi_1||)``) and ``R_all = |u_0 - u_1| / (4 L)`` with ``u_i`` the l2
    embedding distances, each shrunk by a floating-point slack; ties get 0. Both distance forms give
    the same decision and radii. ``certificate="norm_aware"`` (default) takes the larger of these and the
    norm-aware radii of :func:`~lipsim_tm.functional.certificates.norm_aware.norm_aware_radii` (which use the
    pre-normalisation norms); ``"plain"`` uses the 1-Lipschitz radii only (the published rule).
    ``normalization="plain"`` (``v / ||v||``) is certified by the norm-aware rule only. A bfloat16/float16
    network raises ``ValueError`` (see :func:`~lipsim_tm.functional.certificates.policy.check_certifiable`).
    """
    normalization = check_normalization(normalization)
    certificate = check_certificate(certificate, normalization)
    distance = check_distance(distance)
    options = {"data_range": data_range, "grayscale": grayscale, "interpolation": interpolation, "antialias": antialias}
    images = {"ref": ref, "img0": img0, "img1": img1}
    backbone, prep = prepare_call(images, weights, certify=True, **options)  # type: ignore[arg-type]
    features = features_of(backbone, torch.cat([ref, img0, img1]), prep, network_dtype(backbone))
    return _two_afc_update(
        *features.chunk(3),
        distance=distance,
        normalization=normalization,
        certificate=certificate,
        lipschitz=lipschitz_constant(backbone, prep, ref),
    )
