"""What both LipSim metrics share: the frozen network, the preprocessing, the input checks and the merge rule."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from lipsim_tm.checks import check_bool
from lipsim_tm.functional.certificates.policy import check_certifiable
from lipsim_tm.functional.embedding import features_of, lipschitz_constant, preprocessing_for
from lipsim_tm.functional.normalization import at_least_float32, check_normalization
from lipsim_tm.functional.preprocessing import DataRange, check_image_batches
from lipsim_tm.metrics.atomic import AtomicMetric, merge_states
from lipsim_tm.metrics.views import Loggable
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.compiling import compiled_forward
from lipsim_tm.models.frozen import FrozenBackbone, unwrap_frozen
from lipsim_tm.models.weights import Weights, resolve_backbone


def cat_state(state: list[Tensor] | Tensor, device: torch.device) -> Tensor:
    """A ``"cat"`` state as one 1-D tensor: a list before a sync (empty: a 0-length float32 tensor), a tensor after."""
    if isinstance(state, Tensor):
        return state
    return dim_zero_cat(state) if state else torch.zeros(0, device=device)


class LipSimMetricBase(Loggable, AtomicMetric):
    """Base of the LipSim metrics: network in ``self.net``, a :class:`~lipsim_tm.models.frozen.FrozenBackbone`.

    Weights policy (see :mod:`lipsim_tm.models.weights`): a path or ``"random:<config>"`` builds a network owned
    by the metric and frozen in place. A :class:`~lipsim_tm.models.backbone.LipSimBackbone` instance is shared,
    not copied: the metric always evaluates its current weights, never changes its ``requires_grad`` or
    training mode, and no gradient from the metric reaches its parameters (e.g. a trainer can pass its
    model's backbone for end-of-epoch evaluation). ``metric.to(...)`` moves/converts that instance too.

    ``state_dict`` policy: the backbone's weights are never part of the metric's ``state_dict`` (they are
    defined by ``weights``), so adding the metric to a model adds no checkpoint keys.

    Inputs must be on the metric's device (``metric.to(device)``); they are cast to the network's dtype,
    and states accumulate in float64. Precision policy: a bfloat16/float16 network (e.g. after
    ``metric.net.to(torch.bfloat16)``) computes distances, but certificates are refused with a
    ``ValueError`` (see :func:`~lipsim_tm.functional.certificates.policy.check_certifiable`).

    ``validate_args=False`` (torchmetrics' convention) skips the checks that read the data (finite values
    within ``data_range``; 2AFC targets in ``[0, 1]``), which cost one device-to-host transfer per update:
    ``update`` then makes no host-device transfer, and bad values give wrong numbers instead of an error.
    Types, dtypes, shapes and devices are always checked.

    ``compile=True`` runs the network through ``torch.compile`` (inductor; the network only, never the
    Metric; see :func:`~lipsim_tm.models.compiling.compiled_forward`). It raises ``RuntimeError`` at
    construction when no C++ compiler is usable. A metric with a compiled forward cannot be pickled.
    """

    feature_network: str = "net"

    def __init__(
        self,
        weights: Weights,
        *,
        normalization: str,
        data_range: DataRange,
        grayscale: bool,
        interpolation: str,
        antialias: bool,
        compile: bool = False,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.normalization = check_normalization(normalization)
        check_bool("compile", compile)
        self.validate_args = check_bool("validate_args", validate_args)
        backbone = resolve_backbone(weights)
        #: What ``weights=`` named (a registered name or a path, as given); None for a network passed in.
        self.weights_name = os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else None
        self.net = FrozenBackbone(backbone, owned=not isinstance(weights, LipSimBackbone))
        # A plain function (not a submodule): the metric's modules, state_dict and FeatureShare are unchanged.
        self._compiled_forward = compiled_forward(self.net) if compile else None
        self.prep = preprocessing_for(
            backbone, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
        )

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add the states of ``incoming_state`` (a metric of the same class and settings, evaluated on other data, or
        a dict of states) to this metric's: sums add and per-sample lists join, so ``compute()`` equals one metric
        updated with all the data (a dataset from its subsets, counts weighted by size). A metric of another class
        or with other settings is refused (``ValueError``): its states mean something else."""
        if isinstance(incoming_state, Metric) and (
            type(incoming_state) is not type(self) or incoming_state._settings() != self._settings()
        ):
            raise ValueError(
                f"merge_state needs a metric of the same class and settings: {self!r} and {incoming_state!r} differ"
            )
        merge_states(self, incoming_state)

    def _settings(self) -> dict[str, object]:
        """The settings that change results, by argument name: what must agree for :meth:`merge_state`, and what
        ``repr`` shows (subclasses add theirs)."""
        prep = self.prep
        return {
            "input_size": prep.size,
            "data_range": prep.data_range,
            "grayscale": prep.grayscale,
            "interpolation": prep.interpolation,
            "antialias": prep.antialias,
            "normalization": self.normalization,
        }

    def extra_repr(self) -> str:
        """The weights' name and every setting that changes results (:meth:`_settings`)."""
        weights = repr(self.weights_name) if self.weights_name is not None else f"<{type(self.backbone).__name__}>"
        return ", ".join([f"weights={weights}", *(f"{name}={value!r}" for name, value in self._settings().items())])

    def __repr__(self) -> str:
        """One line, e.g. ``LipSimDistance(weights='default', input_size=224, ..., distance='cosine')``: the metric's
        network and result views are internals (``metric.backbone`` shows the network)."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """``(figure, axes)``: a value or a list of values (default: ``compute()``) drawn by torchmetrics'
        ``_plot``; needs matplotlib. A dict's legend goes to the right of the axes, and a figure drawn here is
        laid out so the legend stays inside it (torchmetrics places it above the axes, clipped at the edges)."""
        figure, axes = self._plot(val, ax)
        legend = axes.get_legend()
        if legend is not None:
            handles, labels = axes.get_legend_handles_labels()
            legend.remove()
            axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
            if ax is None:
                figure.tight_layout()
        return figure, axes

    @property
    def backbone(self) -> LipSimBackbone:
        """The network in use (also when a ``FeatureShare`` wrapper shares it)."""
        return unwrap_frozen(self.net).backbone

    def _check_images(self, **images: Tensor) -> None:
        """Validate named image batches (device, type, shape, values) before any state changes."""
        check_image_batches(
            images,
            self.prep,
            device=unwrap_frozen(self.net).device,
            owner="the metric's network",
            fix="call metric.to({name}.device)",
            values=self.validate_args,
        )

    def _features(self, *images: Tensor) -> Tensor:
        """Backbone features ``(N, D)`` (before normalisation) of validated image batches, concatenated along
        ``N``, in one forward pass. The batches go to the network as given (a ``FeatureShare`` cache hit when
        another metric just ran the same batches with the same preprocessing)."""
        if self._compiled_forward is not None:
            return features_of(self._compiled_forward, torch.cat(images), self.prep, unwrap_frozen(self.net).dtype)
        return at_least_float32(self.net(*images, prep=self.prep))

    def _check_certifiable(self) -> None:
        """Raise ``ValueError`` if the network's dtype cannot give sound certificates (bfloat16, float16)."""
        check_certifiable(unwrap_frozen(self.net).dtype)

    def _lipschitz(self, images: Tensor) -> float:
        """Lipschitz bound (user pixels) of the embedding for this batch's size."""
        return lipschitz_constant(self.backbone, self.prep, images)

    def _result_dtype(self) -> torch.dtype:
        return torch.promote_types(unwrap_frozen(self.net).dtype, torch.float32)
