"""Natural, certified and empirical (under attack) 2AFC accuracy of LipSim at each l2 budget."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lipsim_tm.attacks.api import METHODS, attack_2afc
from lipsim_tm.checks import check_bool, check_callable, check_choice, check_int, check_numbers
from lipsim_tm.data.sharding import ShardedBatches
from lipsim_tm.files import atomic_write_text
from lipsim_tm.functional.certificates.policy import check_certificate
from lipsim_tm.functional.confidence import wilson
from lipsim_tm.functional.distance import check_distance, lipsim_distance
from lipsim_tm.functional.normalization import check_normalization
from lipsim_tm.functional.two_afc import (
    TwoAFCCounts,
    TwoAFCResult,
    _two_afc_agreement,
    _two_afc_compute,
    _two_afc_counts,
    _two_afc_summary,
    check_target,
    two_afc,
)
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.weights import Weights, resolve_backbone

#: Default budgets (l2, pixels in [0, 1]): 0 and the paper's 36/255, 72/255, 108/255.
DEFAULT_EPSILONS: tuple[float, ...] = (0.0, 36 / 255, 72 / 255, 108 / 255)


@dataclass(frozen=True)
class RobustnessRow:
    """Accuracies (fractions of the decided triplets) at one l2 budget ``eps`` (pixels in [0, 1]).

    ``certified``/``empirical``: only the reference is perturbed; ``*_all``: each of the three images
    by ``eps`` (``None`` when that attack was not run).
    """

    eps: float
    certified: float
    empirical: float
    certified_all: float
    empirical_all: float | None


@dataclass(frozen=True)
class RobustnessReport:
    """What :func:`robustness_report` measured.

    Attributes:
        triplets: triplets evaluated; ``decided``: those with a majority (``p != 0.5``), the denominator
            of every accuracy.
        natural_accuracy: fraction of decided triplets where the metric prefers the majority's image (ties wrong).
        score_2afc: the soft 2AFC score (mean agreement with ``p``, ties 0.5) over all triplets.
        rows: one :class:`RobustnessRow` per budget, in increasing ``eps``.
        attack: the attack's settings; certificate, normalization: the certificate rule and embedding
            normalisation evaluated.
        image_size: ``(height, width)`` of the images as read, whose [0, 1] pixels every eps is measured in.
        intervals: 95% intervals of every number (Wilson for the accuracies, normal for the soft score; see
            :mod:`lipsim_tm.functional.confidence`), with counts.
    """

    triplets: int
    decided: int
    natural_accuracy: float
    score_2afc: float
    rows: tuple[RobustnessRow, ...]
    attack: dict[str, object] = field(default_factory=dict)
    certificate: str = "norm_aware"
    normalization: str = "augment"
    intervals: dict[str, object] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable dict (NaN written as ``null``)."""
        data = asdict(self)
        data["rows"] = [{k: _finite(v) for k, v in row.items()} for row in data["rows"]]
        data["natural_accuracy"], data["score_2afc"] = _finite(self.natural_accuracy), _finite(self.score_2afc)
        data["image_size"] = None if self.image_size is None else list(self.image_size)
        return data

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``; returns the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n", "robustness report")
        return path

    def table(self) -> str:
        """The report as a fixed-width text table (percentages)."""
        natural, score = self.intervals.get("natural_accuracy", {}), self.intervals.get("score_2afc", {})
        lines = [
            f"triplets: {self.triplets} (decided: {self.decided}); natural accuracy {_pct(self.natural_accuracy)}"
            f"{_ci(natural)}; 2AFC score (soft) {_pct(self.score_2afc)}{_ci(score)};"
            f" normalization {self.normalization}, certificate {self.certificate}"
            + (f"; images {self.image_size[0]}x{self.image_size[1]}, eps in their pixels" if self.image_size else ""),
            f"attack: {', '.join(f'{k}={v}' for k, v in self.attack.items())}",
            f"{'eps (l2)':>10} {'certified':>10} {'empirical':>10} {'cert. all':>10} {'emp. all':>10}",
        ]
        for row in self.rows:
            values = (row.certified, row.empirical, row.certified_all, row.empirical_all)
            lines.append(f"{row.eps:>10.4f} " + " ".join(f"{_pct(v):>10}" for v in values))
        return "\n".join(lines)


def _ci(estimate: dict[str, object]) -> str:
    low, high = estimate.get("low"), estimate.get("high")
    return "" if low is None or high is None else f" [95%: {_pct(low)}, {_pct(high)}]"


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def robustness_report(
    dataset: Dataset,
    *,
    weights: Weights,
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    distance: str = "cosine",
    normalization: str = "augment",
    certificate: str = "norm_aware",
    method: str = "apgd",
    steps: int = 20,
    restarts: int = 1,
    attack_all: bool = False,
    batch_size: int = 16,
    max_triplets: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> RobustnessReport:
    """Evaluate LipSim on 2AFC triplets: natural, certified and empirical accuracy at each l2 budget.

    Args:
        dataset: items ``(ref, img0, img1, p)``, images ``(3, H, W)`` in [0, 1] and ``p`` the fraction
            judging ``img1`` closer (:class:`~lipsim_tm.data.NightsDataset`,
            :class:`~lipsim_tm.data.BAPPS2AFCDataset`, :class:`~lipsim_tm.data.Synthetic2AFCDataset`).
        weights: see :mod:`lipsim_tm.models.weights` (a checkpoint/export path, ``"random:<config>"`` or a backbone).
        epsilons: l2 budgets per image, pixel units (sorted, duplicates dropped; 0 allowed).
        distance, normalization, certificate: as in :class:`~lipsim_tm.metrics.Certified2AFCAccuracy`.
        method, steps, restarts: the attack (:func:`~lipsim_tm.attacks.attack_2afc`), run on the
            triplets the metric gets right; ``attack_all`` also attacks all three images.
        max_triplets: evaluate only the first ``max_triplets`` items.
        seed: the attack's random starts (the same for every batch).
        workers: DataLoader worker processes decoding images.
        progress: called with the number of triplets of each batch once it is done.

    Inside an initialised ``torch.distributed`` process group (``torchrun``) each process evaluates the batches
    :class:`~lipsim_tm.data.sharding.ShardedBatches` deals it (the single-process batches, in turn), the
    counts are summed over processes and every process returns the same report, equal to one process's: a
    batch holds the same triplets and gets the same attack starts however many processes run. Call it on every
    process of the group (as the metric's own sync requires).

    Certified accuracy comes from :class:`~lipsim_tm.metrics.Certified2AFCAccuracy`. A triplet counts as
    empirically robust at ``eps`` when it is correct and no attack at a budget ``<= eps`` (smaller budgets
    are feasible at larger ones) made the decision wrong or a tie, re-evaluated on the adversarial images.
    So ``empirical <= natural_accuracy`` and the empirical curve decreases with ``eps``; ``certified <= empirical``
    holds whenever the certificates are sound.
    """
    eps_values = tuple(sorted(set(check_numbers("epsilons", epsilons))))
    check_choice("method", method, METHODS)
    steps, restarts = check_int("steps", steps, minimum=2), check_int("restarts", restarts, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_bool("attack_all", attack_all)
    if max_triplets is not None:
        check_int("max_triplets", max_triplets, minimum=1)
        dataset = Subset(dataset, range(min(max_triplets, len(dataset))))
    if len(dataset) == 0:
        raise ValueError("dataset must hold at least one triplet, got an empty dataset")
    workers = check_int("workers", workers, minimum=0)
    check_callable("progress", progress, optional=True)
    normalization = check_normalization(normalization)
    options = {"distance": check_distance(distance), "normalization": normalization}
    options["certificate"] = check_certificate(certificate, normalization)
    backbone = resolve_backbone(weights)
    if not isinstance(weights, LipSimBackbone):
        backbone.requires_grad_(False).eval()
    backbone = backbone.to(device)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    batches = ShardedBatches(len(dataset), batch_size, rank=rank, world_size=world_size)
    budgets = torch.tensor(eps_values, dtype=torch.float64, device=device)

    def decide(ref: Tensor, x0: Tensor, x1: Tensor) -> TwoAFCResult:
        with torch.no_grad():
            return two_afc(ref, x0, x1, weights=backbone, **options)

    def distance_fn(x: Tensor, y: Tensor) -> Tensor:
        return lipsim_distance(x, y, weights=backbone, distance=options["distance"], normalization=normalization)

    sums = TwoAFCCounts.zeros(len(eps_values), device)
    robust = torch.zeros(2, len(eps_values), dtype=torch.float64, device=device)  # per budget: reference, all
    targets = ("reference", "all") if attack_all else ("reference",)
    for ref, x0, x1, p in DataLoader(dataset, batch_sampler=batches, num_workers=workers):
        ref, x0, x1, p = (t.to(device) for t in (ref, x0, x1, p))
        target = check_target(p, ref.shape[0], ref.device)
        result = decide(ref, x0, x1)
        sums = sums.plus(_two_afc_counts(result, target, budgets))
        majority = target > 0.5
        correct = _two_afc_agreement(result, target)[2]
        for row, name in enumerate(targets):
            alive = correct.clone()  # correct and not broken at any smaller budget
            for k, eps in enumerate(eps_values):
                index = alive.nonzero().squeeze(1)
                if eps > 0 and index.numel() > 0:
                    images = (ref[index], x0[index], x1[index])
                    attacked = attack_2afc(
                        distance_fn, *images, eps=eps, perturb=name, method=method,
                        steps=steps, restarts=restarts, generator=seed,
                    )  # fmt: skip
                    again = decide(*attacked.images)
                    alive[index] = ~again.tie & (again.prefers_img1 == majority[index])
                robust[row, k] += alive.sum()
        if progress is not None:
            progress(int(p.shape[0]))
    if world_size > 1:  # one collective: the sums, then the robust counts
        flat = torch.cat([sums.flat(), robust.reshape(-1)])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        sums = TwoAFCCounts.from_flat(flat, len(eps_values))
        robust = flat[-robust.numel() :].view_as(robust)
    summary = _two_afc_summary(sums, eps_values)
    decided = summary.decided

    def fraction(count: float) -> float:
        return count / decided if decided else math.nan

    rows = tuple(
        RobustnessRow(
            eps=eps,
            certified=fraction(float(sums.certified_reference[k])),
            empirical=fraction(float(robust[0, k])),
            certified_all=fraction(float(sums.certified_all[k])),
            empirical_all=fraction(float(robust[1, k])) if attack_all else None,
        )
        for k, eps in enumerate(eps_values)
    )
    rates = {"certified": sums.certified_reference, "empirical": robust[0], "certified_all": sums.certified_all}
    if attack_all:
        rates["empirical_all"] = robust[1]
    intervals = {
        "method": "95%: Wilson score intervals for accuracies, normal (CLT) interval for the soft 2AFC score",
        "natural_accuracy": wilson(round(float(sums.correct_total)), decided).to_dict(),
        "score_2afc": summary.score_2afc.to_dict(),
        "rows": [
            {"eps": eps, **{key: wilson(float(values[k]), decided).to_dict() for key, values in rates.items()}}
            for k, eps in enumerate(eps_values)
        ],
    }
    height, width = dataset[0][0].shape[-2:]
    return RobustnessReport(
        intervals=intervals,
        image_size=(int(height), int(width)),
        triplets=len(dataset),
        decided=decided,
        natural_accuracy=fraction(round(float(sums.correct_total))),
        score_2afc=float(_two_afc_compute(sums, eps_values)["score_2afc"]),
        rows=rows,
        attack={"method": method, "steps": steps, "restarts": restarts, "norm": "l2", "seed": seed},
        certificate=options["certificate"],
        normalization=normalization,
    )
