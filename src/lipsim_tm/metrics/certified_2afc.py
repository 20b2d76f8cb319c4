"""``Certified2AFCAccuracy``: natural and certified 2AFC agreement with human judgments."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lipsim_tm.functional.certificates import PAPER_EPSILONS, certify_triplets, check_certificate
from lipsim_tm.functional.confidence import mean_interval, wilson
from lipsim_tm.functional.distance import check_distance, distance_from_embeddings
from lipsim_tm.functional.normalization import apply_normalization, check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.metrics.base import LipSimMetricBase, cat_state
from lipsim_tm.metrics.summary import CertifiedRow, TwoAFCSummary
from lipsim_tm.models.weights import Weights

PER_SAMPLE_KEYS: tuple[str, ...] = ("d0", "d1", "target", "radius_reference", "radius_all")


class Certified2AFCAccuracy(LipSimMetricBase):
    """2AFC score and certified 2AFC accuracy of LipSim against human judgments.

    ``update(ref, img0, img1, target)``: three ``(N, C, H, W)`` batches of one shape in ``data_range``
    (one batched forward pass) and ``target`` ``(N,)`` in ``[0, 1]``, the fraction of people who judged
    ``img1`` closer to ``ref`` (NIGHTS/BAPPS convention; 0/1 labels, int or bool, are accepted).

    ``compute()`` returns a dict of scalars:

    - ``"2afc"``: the soft 2AFC score over all triplets, mean of ``p`` when the metric prefers ``img1``
      (``d1 < d0``), ``1 - p`` when it prefers ``img0``, ``0.5`` on a tie (the LPIPS/DreamSim convention).
    - ``"natural_accuracy"``: the hard natural accuracy, the fraction of the triplets with ``target != 0.5``
      where the metric prefers the image most people chose (``round(target)``; ties count as wrong). This is
      the certified accuracies' own population and rule, so each of them is at most this number (compare
      certified accuracies with it, not with the soft score).
    - ``"certified_2afc@<eps>"`` for each ``eps`` of ``epsilons`` (key formatted with ``:.4g``): the
      fraction of triplets that are predicted correctly (the metric prefers the image most people
      chose) AND whose reference-only radius exceeds ``eps``: no l2 perturbation of the reference of
      norm ``<= eps`` (user pixel units) can change the prediction. Ties are never certified (radius 0).
      Triplets with ``target == 0.5`` have no correct answer and are excluded from this fraction
      (numerator and denominator); it is NaN if every triplet so far has ``target == 0.5``.
    - ``"certified_2afc_all@<eps>"``: the same when each of the three images may be perturbed by
      ``<= eps`` (a per-image budget; smaller radius, see
      :func:`~lipsim_tm.functional.certificates.all_images_radius`).
    - with ``per_sample=True`` also ``"d0"``, ``"d1"``, ``"target"``, ``"radius_reference"``,
      ``"radius_all"``: float32 ``(N_total,)`` (``"cat"`` states; rank-major order after a sync).

    All values are NaN before the first update. States are float64 sums (O(1) memory) unless
    ``per_sample``. The network must be float32 or float64: a bfloat16/float16 network raises ``ValueError``
    in ``update`` (its rounding error is not covered by the certificates' slack). Not differentiable:
    ``update`` and ``forward`` run the network without gradients.

    Args:
        weights: see :mod:`lipsim_tm.models.weights`; a trainer may pass its model's backbone (shared, see
            :class:`~lipsim_tm.metrics.base.LipSimMetricBase`).
        epsilons: budgets (user pixel units). ``None``: 36/255, 72/255, 108/255 of the data range's span.
        distance: ``"cosine"`` or ``"l2"`` (same decisions and radii; affects ``d0``/``d1``).
        normalization: ``"augment"``, ``"ball"`` or ``"plain"`` (``v / ||v||``, the released checkpoints'
            map; certified by the norm-aware rule only).
        certificate: ``"norm_aware"`` (default): the larger of the plain and the norm-aware radius (see
            :mod:`~lipsim_tm.functional.certificates`); ``"plain"``: the 1-Lipschitz radius only (the
            published rule, for comparison). Shown in the metric's repr.
        per_sample: also keep per-sample distances, targets and radii.
        data_range, grayscale, interpolation, antialias: see
            :class:`~lipsim_tm.functional.preprocessing.Preprocessing`.
        compile: ``torch.compile`` the network's forward (see :class:`~lipsim_tm.metrics.base.LipSimMetricBase`).
        validate_args: check the input values (one device-to-host transfer per update); ``False`` skips that
            (see :class:`~lipsim_tm.metrics.base.LipSimMetricBase`).
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    def __init__(
        self,
        weights: Weights = "default",
        *,
        epsilons: Sequence[float] | None = None,
        distance: str = "cosine",
        normalization: str = "augment",
        certificate: str = "norm_aware",
        per_sample: bool = False,
        data_range: DataRange = 1.0,
        grayscale: bool = False,
        interpolation: str = "bicubic",
        antialias: bool = True,
        compile: bool = False,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        self.distance = check_distance(distance)
        self.certificate = check_certificate(certificate, check_normalization(normalization))
        if not isinstance(per_sample, bool):
            raise TypeError(f"per_sample must be a bool, got {per_sample!r}")
        self.per_sample = per_sample
        super().__init__(
            weights,
            normalization=normalization,
            data_range=data_range,
            grayscale=grayscale,
            interpolation=interpolation,
            antialias=antialias,
            compile=compile,
            validate_args=validate_args,
            **kwargs,
        )
        self.epsilons = _check_epsilons(epsilons, self.prep.span)
        self._epsilon_tensors: dict[torch.device, Tensor] = {}
        self.keys = tuple(f"certified_2afc@{eps:.4g}" for eps in self.epsilons)
        self.keys_all = tuple(f"certified_2afc_all@{eps:.4g}" for eps in self.epsilons)
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"epsilons must differ in their first 4 significant digits, got {self.epsilons}")
        zero, zeros = torch.tensor(0.0, dtype=torch.float64), torch.zeros(len(self.epsilons), dtype=torch.float64)
        self.add_state("score_sum", zero.clone(), dist_reduce_fx="sum")
        self.add_state("score_sq_sum", zero.clone(), dist_reduce_fx="sum")
        self.add_state("total", zero.clone(), dist_reduce_fx="sum")
        self.add_state("decided_total", zero.clone(), dist_reduce_fx="sum")
        self.add_state("correct_total", zero.clone(), dist_reduce_fx="sum")
        self.add_state("certified_reference", zeros.clone(), dist_reduce_fx="sum")
        self.add_state("certified_all", zeros.clone(), dist_reduce_fx="sum")
        if per_sample:
            for key in PER_SAMPLE_KEYS:
                self.add_state(key, [], dist_reduce_fx="cat")
        self._add_views(("2afc", "natural_accuracy", *self.keys, *self.keys_all))

    def update(self, ref: Tensor, img0: Tensor, img1: Tensor, target: Tensor) -> None:
        """Add triplets; bad input raises and leaves the state unchanged."""
        self._check_certifiable()
        self._check_images(ref=ref, img0=img0, img1=img1)
        p = _check_target(target, ref.shape[0], ref.device, values=self.validate_args)
        with torch.no_grad():
            features = self._features(ref, img0, img1)
            phi_r, phi_0, phi_1 = apply_normalization(features, self.normalization).chunk(3)
        prefers, tie, radius_ref, radius_all = certify_triplets(
            phi_r,
            phi_0,
            phi_1,
            features.chunk(3),
            normalization=self.normalization,
            certificate=self.certificate,
            lipschitz=self._lipschitz(ref),
        )
        score = torch.where(tie, 0.5, torch.where(prefers, p, 1 - p))
        decided = p != 0.5
        correct = decided & ~tie & (prefers == (p > 0.5))
        eps = self._epsilons_on(ref.device)
        self.score_sum = self.score_sum + score.sum()
        self.score_sq_sum = self.score_sq_sum + score.pow(2).sum()
        self.total = self.total + p.shape[0]
        self.decided_total = self.decided_total + decided.sum()
        self.correct_total = self.correct_total + correct.sum()
        self.certified_reference = self.certified_reference + (correct[:, None] & (radius_ref[:, None] > eps)).sum(0)
        self.certified_all = self.certified_all + (correct[:, None] & (radius_all[:, None] > eps)).sum(0)
        if self.per_sample:
            d0 = distance_from_embeddings(phi_r, phi_0, self.distance)
            d1 = distance_from_embeddings(phi_r, phi_1, self.distance)
            for key, value in zip(PER_SAMPLE_KEYS, (d0, d1, p, radius_ref, radius_all), strict=True):
                getattr(self, key).append(value.detach().float())

    def _epsilons_on(self, device: torch.device) -> Tensor:
        """The budgets as float64 ``(K,)`` on ``device``, copied there once (a copy per update would synchronise)."""
        if device not in self._epsilon_tensors:
            self._epsilon_tensors[device] = torch.tensor(self.epsilons, dtype=torch.float64, device=device)
        return self._epsilon_tensors[device]

    def extra_repr(self) -> str:
        """The certificate rule, normalisation and distance (shown in ``repr``)."""
        return f"certificate={self.certificate!r}, normalization={self.normalization!r}, distance={self.distance!r}"

    def compute(self) -> dict[str, Tensor]:
        """``{"2afc", "natural_accuracy", "certified_2afc@<eps>"..., "certified_2afc_all@<eps>"...}`` (see the class
        docstring)."""
        result = {
            "2afc": (self.score_sum / self.total).float(),
            "natural_accuracy": (self.correct_total / self.decided_total).float(),
        }
        reference = (self.certified_reference / self.decided_total).float()
        everything = (self.certified_all / self.decided_total).float()
        result.update({key: reference[i] for i, key in enumerate(self.keys)})
        result.update({key: everything[i] for i, key in enumerate(self.keys_all)})
        if self.per_sample:
            for key in PER_SAMPLE_KEYS:
                result[key] = cat_state(getattr(self, key), self.total.device)
        return result

    def _settings(self) -> tuple[object, ...]:
        return (*super()._settings(), self.epsilons, self.per_sample)

    def summary(self) -> TwoAFCSummary:
        """Counts, rates and 95% intervals of every number of :meth:`compute` (:class:`TwoAFCSummary`), synced
        across processes like ``compute()``: Wilson intervals for the accuracies, a normal one for the score."""
        with self.sync_context():
            decided = round(float(self.decided_total))
            reference, everything = self.certified_reference.tolist(), self.certified_all.tolist()
            rows = tuple(
                CertifiedRow(eps, wilson(reference[i], decided), wilson(everything[i], decided))
                for i, eps in enumerate(self.epsilons)
            )
            total = round(float(self.total))
            return TwoAFCSummary(
                triplets=total,
                decided=decided,
                score=mean_interval(float(self.score_sum), float(self.score_sq_sum), total),
                natural=wilson(float(self.correct_total), decided),
                rows=rows,
            )


def _check_epsilons(epsilons: Sequence[float] | None, span: float) -> tuple[float, ...]:
    if epsilons is None:
        return tuple(eps * span for eps in PAPER_EPSILONS)
    if isinstance(epsilons, (str, bytes)) or not isinstance(epsilons, Sequence) or len(epsilons) == 0:
        raise TypeError(f"epsilons must be a non-empty sequence of numbers or None, got {epsilons!r}")
    values = []
    for eps in epsilons:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"epsilons must hold finite numbers >= 0, got {epsilons!r}")
        values.append(float(eps))
    return tuple(values)


def _check_target(target: object, n: int, device: torch.device, *, values: bool = True) -> Tensor:
    """``target`` as float64 ``(n,)`` on ``device``; raises on wrong type, shape, device or (``values``) values."""
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},) (one judgment per triplet), got {tuple(target.shape)}")
    if target.is_complex():
        raise TypeError(f"target must be real (fractions in [0, 1] or 0/1 labels), got {target.dtype}")
    if target.device != device:
        raise ValueError(f"target is on {target.device} but the images are on {device}")
    p = target.double()
    if not values:
        return p
    lo, hi = torch.stack(torch.aminmax(p)).tolist()  # one device-to-host transfer; NaN propagates
    finite = math.isfinite(lo) and math.isfinite(hi)
    if not finite or lo < 0 or hi > 1:
        raise ValueError(
            f"target must hold fractions in [0, 1] (share of people judging img1 closer), got values in"
            f" [{lo:g}, {hi:g}]" + ("" if finite else " including NaN/inf")
        )
    return p
