"""``Certified2AFCAccuracy``: natural and certified 2AFC agreement with human judgments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lipsim_tm.checks import check_bool, check_numbers
from lipsim_tm.functional.certificates.policy import PAPER_EPSILONS, check_certificate
from lipsim_tm.functional.distance import check_distance
from lipsim_tm.functional.normalization import check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.functional.two_afc import (
    TwoAFCCounts,
    TwoAFCSummary,
    _two_afc_compute,
    _two_afc_counts,
    _two_afc_summary,
    _two_afc_update,
    check_target,
    two_afc_keys,
)
from lipsim_tm.metrics.base import LipSimMetricBase, cat_state
from lipsim_tm.models.weights import Weights

PER_SAMPLE_KEYS: tuple[str, ...] = ("d0", "d1", "target", "radius_reference", "radius_all")


class Certified2AFCAccuracy(LipSimMetricBase):
    """2AFC score and certified 2AFC accuracy of LipSim against human judgments.

    ``update(ref, img0, img1, target)``: three ``(N, C, H, W)`` batches of one shape in ``data_range``
    (one batched forward pass) and ``target`` ``(N,)`` in ``[0, 1]``, the fraction of people who judged
    ``img1`` closer to ``ref`` (NIGHTS/BAPPS convention; 0/1 labels, int or bool, are accepted).

    ``compute()`` returns a dict of scalars:

    - ``"score_2afc"``: the soft 2AFC score over all triplets, mean of ``p`` when the metric prefers ``img1``
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
      :func:`~lipsim_tm.functional.certificates.plain.plain_radii`).
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
        self.per_sample = check_bool("per_sample", per_sample)
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
        span = self.prep.span
        default = tuple(eps * span for eps in PAPER_EPSILONS)
        self.epsilons = default if epsilons is None else check_numbers("epsilons", epsilons)
        self._epsilon_tensors: dict[torch.device, Tensor] = {}
        self.keys, self.keys_all = two_afc_keys(self.epsilons)
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"epsilons must differ in their first 4 significant digits, got {self.epsilons}")
        for name in TwoAFCCounts._fields:  # float64 sums: one per count, (K,) for the certified ones
            size = (len(self.epsilons),) if name.startswith("certified") else ()
            self.add_state(name, torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")
        if per_sample:
            for key in PER_SAMPLE_KEYS:
                self.add_state(key, [], dist_reduce_fx="cat")
        self._add_views(("score_2afc", "natural_accuracy", *self.keys, *self.keys_all))

    def update(self, ref: Tensor, img0: Tensor, img1: Tensor, target: Tensor) -> None:
        """Add triplets; bad input raises and leaves the state unchanged."""
        self._check_certifiable()
        self._check_images(ref=ref, img0=img0, img1=img1)
        p = check_target(target, ref.shape[0], ref.device, values=self.validate_args)
        with torch.no_grad():
            result = _two_afc_update(
                *self._features(ref, img0, img1).chunk(3),
                distance=self.distance,
                normalization=self.normalization,
                certificate=self.certificate,
                lipschitz=self._lipschitz(ref),
            )
        counts = _two_afc_counts(result, p, self._epsilons_on(ref.device))
        for name, value in zip(counts._fields, counts, strict=True):
            setattr(self, name, getattr(self, name) + value)
        if self.per_sample:
            values = (result.d0, result.d1, p, result.radius_reference, result.radius_all)
            for key, value in zip(PER_SAMPLE_KEYS, values, strict=True):
                getattr(self, key).append(value.detach().float())

    def _epsilons_on(self, device: torch.device) -> Tensor:
        """The budgets as float64 ``(K,)`` on ``device``, copied there once (a copy per update would synchronise)."""
        if device not in self._epsilon_tensors:
            self._epsilon_tensors[device] = torch.tensor(self.epsilons, dtype=torch.float64, device=device)
        return self._epsilon_tensors[device]

    def _counts(self) -> TwoAFCCounts:
        return TwoAFCCounts(*(getattr(self, name) for name in TwoAFCCounts._fields))

    def compute(self) -> dict[str, Tensor]:
        """``{"score_2afc", "natural_accuracy", "certified_2afc@<eps>"..., "certified_2afc_all@<eps>"...}`` (see the
        class docstring)."""
        result = _two_afc_compute(self._counts(), self.epsilons)
        if self.per_sample:
            for key in PER_SAMPLE_KEYS:
                result[key] = cat_state(getattr(self, key), self.total.device)
        return result

    def _settings(self) -> dict[str, object]:
        return {
            **super()._settings(),
            "certificate": self.certificate,
            "distance": self.distance,
            "epsilons": self.epsilons,
            "per_sample": self.per_sample,
        }

    def summary(self) -> TwoAFCSummary:
        """Counts, rates and 95% intervals of every number of :meth:`compute`
        (:class:`~lipsim_tm.functional.two_afc.TwoAFCSummary`), synced across processes like ``compute()``: Wilson
        intervals for the accuracies, a normal one for the score."""
        with self.sync_context():
            return _two_afc_summary(self._counts(), self.epsilons)
