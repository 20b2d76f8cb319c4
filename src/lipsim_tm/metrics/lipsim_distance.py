"""``LipSimDistance``: the LipSim distance between image pairs as a torchmetrics metric (also a loss)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lipsim_tm.checks import check_choice, check_number
from lipsim_tm.functional.certificates.intervals import PERTURBED
from lipsim_tm.functional.certificates.policy import check_certificate
from lipsim_tm.functional.distance import (
    _lipsim_distance_compute,
    _lipsim_distance_update,
    check_distance,
    check_reduction,
)
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.metrics.base import LipSimMetricBase, cat_state
from lipsim_tm.models.weights import Weights


class LipSimDistance(LipSimMetricBase):
    """LipSim distance between ``x`` and ``y``, accumulated over batches.

    ``update(x, y)``: ``(N, C, H, W)`` batches of one shape in ``data_range``, any ``H, W`` (resized to the
    network's input). ``compute()``: the mean (default), sum, or per-sample values (``reduction="none"``,
    a float32 ``"cat"`` state, in rank-major order after a distributed sync) of the distances. With
    ``certify_eps``, ``compute()`` returns ``{"distance": value, "half_width": h}``: when each ``x``
    (``perturbed="one"``; or each of ``x`` and ``y``, ``"both"``) moves by at most ``certify_eps`` in l2
    (user pixel units), every per-sample distance stays within ``+-h_i`` of its value (see
    :func:`~lipsim_tm.functional.certified_distance_interval`) and the reduced value within ``+-h``
    (mean or sum of the ``h_i``). Certificates need a float32/float64 network (``ValueError`` otherwise);
    without ``certify_eps`` a bfloat16/float16 network is fine.

    ``forward(x, y)`` returns the batch value with gradients to ``x`` and ``y`` (never to the network),
    so the metric works as a loss. Guarantees of the distance forms (``L`` the Lipschitz bound of the
    embedding from user pixels, ``phi`` 1-Lipschitz normalised): ``"l2"``: ``|d(x', y) - d(x, y)| <=
    L ||x' - x||``; ``"cosine"`` with ``"augment"`` (``1 - cos``): the same bound; with ``"ball"``: the
    value stays in ``[max(0, u - L e)^2 / 2, min(2, u + L e)^2 / 2]`` with ``u = sqrt(2 d)``.

    Args:
        weights: see :mod:`lipsim_tm.models.weights` and :class:`~lipsim_tm.metrics.base.LipSimMetricBase`.
        distance: ``"cosine"`` or ``"l2"``.
        normalization: ``"augment"``, ``"ball"`` or ``"plain"`` (with ``certify_eps``: norm-aware rule only).
        certificate: rule for the half-width, ``"norm_aware"`` (default; each embedding moves by the
            smaller of ``L eps`` and the norm-aware bound, see :mod:`~lipsim_tm.functional.certificates`) or
            ``"plain"`` (``L eps``). Shown in the metric's repr.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        certify_eps: optional perturbation budget for the certified half-width.
        perturbed: ``"one"`` or ``"both"`` (which images the budget applies to).
        data_range, grayscale, interpolation, antialias: see
            :class:`~lipsim_tm.functional.preprocessing.Preprocessing`.
        compile: ``torch.compile`` the network's forward (see :class:`~lipsim_tm.metrics.base.LipSimMetricBase`).
        validate_args: check the input values (one device-to-host transfer per update); ``False`` skips that
            (see :class:`~lipsim_tm.metrics.base.LipSimMetricBase`).
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 2.0

    def __init__(
        self,
        weights: Weights = "default",
        *,
        distance: str = "cosine",
        normalization: str = "augment",
        reduction: str = "mean",
        certify_eps: float | None = None,
        perturbed: str = "one",
        certificate: str = "norm_aware",
        data_range: DataRange = 1.0,
        grayscale: bool = False,
        interpolation: str = "bicubic",
        antialias: bool = True,
        compile: bool = False,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        self.distance = check_distance(distance)
        self.reduction = check_reduction(reduction)
        self.certify_eps = None if certify_eps is None else check_number("certify_eps", certify_eps, minimum=0.0)
        self.perturbed = check_choice("perturbed", perturbed, PERTURBED)
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
        self.certificate = check_certificate(certificate, self.normalization)
        zero = torch.tensor(0.0, dtype=torch.float64)
        self.add_state("sum_distance", zero.clone(), dist_reduce_fx="sum")
        self.add_state("total", zero.clone(), dist_reduce_fx="sum")
        self.add_state("sum_half_width", zero.clone(), dist_reduce_fx="sum")
        if self.reduction == "none":
            self.add_state("values", [], dist_reduce_fx="cat")
            self.add_state("half_widths", [], dist_reduce_fx="cat")
        self._add_views(("distance", "half_width") if self.certify_eps is not None and reduction != "none" else ())

    def update(self, x: Tensor, y: Tensor) -> None:
        """Add the distances between the pairs ``(x[i], y[i])``; bad input raises and changes nothing."""
        certified = self.certify_eps is not None
        if certified:
            self._check_certifiable()
        self._check_images(x=x, y=y)
        features_x, features_y = self._features(x, y).chunk(2)
        result = _lipsim_distance_update(
            features_x,
            features_y,
            distance=self.distance,
            normalization=self.normalization,
            certificate=self.certificate,
            lipschitz=self._lipschitz(x) if certified else 1.0,
            epsilons=(self.certify_eps,) if certified else (),
            perturbed=self.perturbed,
        )
        distances = result.distance
        half = result.half_width[:, 0] if certified else torch.zeros_like(distances, dtype=torch.float64).detach()
        self.sum_distance = self.sum_distance + distances.double().sum()
        self.total = self.total + distances.shape[0]
        self.sum_half_width = self.sum_half_width + half.sum()
        if self.reduction == "none":
            self.values.append(distances.float())
            self.half_widths.append(half.float())

    def _settings(self) -> dict[str, object]:
        return {
            **super()._settings(),
            "certificate": self.certificate,
            "distance": self.distance,
            "reduction": self.reduction,
            "certify_eps": self.certify_eps,
            "perturbed": self.perturbed,
        }

    def _scalar_name(self) -> str:
        if self.reduction == "none":
            raise ValueError(
                "reduction='none' gives per-sample values, which cannot be logged as scalars; use reduction='mean'"
                " or 'sum' for logging"
            )
        return "distance"

    def compute(self) -> Tensor | dict[str, Tensor]:
        """The reduced distance, or ``{"distance", "half_width"}`` with ``certify_eps``. NaN (mean) before data."""
        dtype = self._result_dtype()
        if self.reduction == "none":
            value = cat_state(self.values, self.total.device).to(dtype)
            half = cat_state(self.half_widths, self.total.device).to(dtype)
        else:
            value = _lipsim_distance_compute(self.sum_distance, self.total, self.reduction).to(dtype)
            half = _lipsim_distance_compute(self.sum_half_width, self.total, self.reduction).to(dtype)
        if self.certify_eps is None:
            return value
        return {"distance": value, "half_width": half}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Batch value with gradients to the inputs; accumulates the batch (detached) into the global state."""
        value = super().forward(*args, **kwargs)
        if self.reduction == "none" and isinstance(self.values, list):
            # torchmetrics concatenates list states as they are: drop the batch graph so memory stays flat.
            self.values = [v.detach() for v in self.values]
        return value
