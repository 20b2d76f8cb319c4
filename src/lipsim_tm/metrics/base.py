"""What both LipSim metrics share: the frozen network, the preprocessing and input checks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from lipsim_tm.functional.certificates import check_certifiable
from lipsim_tm.functional.embedding import check_same_shape, features_of, lipschitz_constant, preprocessing_for
from lipsim_tm.functional.normalization import apply_normalization, at_least_float32, check_normalization
from lipsim_tm.functional.preprocessing import DataRange
from lipsim_tm.metrics.views import ResultView
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.compiling import compiled_forward
from lipsim_tm.models.frozen import FrozenBackbone, unwrap_frozen
from lipsim_tm.models.weights import Weights, resolve_backbone


def cat_state(state: list[Tensor] | Tensor, device: torch.device) -> Tensor:
    """A ``"cat"`` state as one 1-D tensor: a list before a sync (empty: a 0-length float32 tensor), a tensor after."""
    if isinstance(state, Tensor):
        return state
    return dim_zero_cat(state) if state else torch.zeros(0, device=device)


#: torchmetrics' bookkeeping that ``update``/``forward`` change besides the states, restored when they raise.
_CONTEXT: tuple[str, ...] = (
    "_update_count",
    "_computed",
    "_forward_cache",
    "_to_sync",
    "_should_unsync",
    "_enable_grad",
    "_is_synced",
    "compute_on_cpu",
)


class LipSimMetricBase(Metric):
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
    ``ValueError`` (see :func:`~lipsim_tm.functional.certificates.check_certifiable`).

    ``validate_args=False`` (torchmetrics' convention) skips the checks that read the data (finite values
    within ``data_range``; 2AFC targets in ``[0, 1]``), which cost one device-to-host transfer per update:
    ``update`` then makes no host-device transfer, and bad values give wrong numbers instead of an error.
    Types, dtypes, shapes and devices are always checked.

    ``compile=True`` runs the network through ``torch.compile`` (inductor; the network only, never the
    Metric; see :func:`~lipsim_tm.models.compiling.compiled_forward`). It raises ``RuntimeError`` at
    construction when no C++ compiler is usable. A metric with a compiled forward cannot be pickled.
    """

    feature_network: str = "net"

    def _snapshot(self) -> dict[str, Any]:
        """The states (lists copied: ``update`` appends in place; tensors are replaced, never written) and context."""
        states = {name: getattr(self, name) for name in self._defaults}
        snapshot = {name: list(value) if isinstance(value, list) else value for name, value in states.items()}
        snapshot.update({name: getattr(self, name) for name in _CONTEXT})
        return snapshot

    def _restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            setattr(self, name, value)

    def _wrap_update(self, update: Callable) -> Callable:
        """torchmetrics' wrapped ``update``, made atomic: if it raises, states and counters are as before."""
        wrapped = super()._wrap_update(update)

        @functools.wraps(update)
        def atomic_update(*args: Any, **kwargs: Any) -> None:
            snapshot = self._snapshot()
            try:
                wrapped(*args, **kwargs)
            except BaseException:
                self._restore(snapshot)
                raise

        return atomic_update

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """torchmetrics' ``forward`` (batch value, accumulated state), made atomic: a rejected batch (or any error,
        Ctrl-C included) leaves every state, counter and the value of a later ``compute()`` as they were.
        (torchmetrics resets the states before the batch's ``update`` and would otherwise lose them.)"""
        snapshot = self._snapshot()
        try:
            return super().forward(*args, **kwargs)
        except BaseException:
            self._restore(snapshot)
            raise

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
        for name, flag in (("compile", compile), ("validate_args", validate_args)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        self.validate_args = validate_args
        backbone = resolve_backbone(weights)
        self.net = FrozenBackbone(backbone, owned=not isinstance(weights, LipSimBackbone))
        # A plain function (not a submodule): the metric's modules, state_dict and FeatureShare are unchanged.
        self._compiled_forward = compiled_forward(self.net) if compile else None
        self.prep = preprocessing_for(
            backbone, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
        )

    def merge(self, *others: LipSimMetricBase) -> LipSimMetricBase:
        """Add the states of ``others`` (same class and settings, evaluated on other data) to this metric's;
        returns ``self``. Sums add and per-sample lists concatenate, so the result equals one metric updated with
        all the data (e.g. a whole dataset from its subsets, counts weighted by size). ``others`` are unchanged."""
        for other in others:
            if type(other) is not type(self) or other._settings() != self._settings():
                raise ValueError(f"merge needs metrics of the same class and settings: {self!r} and {other!r} differ")
        for name in self._defaults:
            for other in others:
                mine, theirs = getattr(self, name), getattr(other, name)
                if isinstance(mine, list):
                    setattr(self, name, [*mine, *(t.to(mine[0].device if mine else t.device) for t in theirs)])
                else:
                    setattr(self, name, mine + theirs.to(mine.device))
        self._update_count += sum(other._update_count for other in others)
        self._computed = None
        return self

    def _settings(self) -> tuple[object, ...]:
        """What must agree for :meth:`merge`: everything that shapes a state's meaning (subclasses add theirs)."""
        return (self.extra_repr(), self.prep)

    def _add_views(self, keys: tuple[str, ...]) -> None:
        """Register a :class:`~lipsim_tm.metrics.views.ResultView` per scalar entry of ``compute()`` (see
        :meth:`loggable`); registered at construction, so a ``LightningModule`` finds them among its modules."""
        self.result_views = nn.ModuleDict({key.replace(".", "_"): ResultView(self, key) for key in keys})

    def loggable(self, prefix: str = "") -> dict[str, Metric]:
        """Every scalar of ``compute()`` as a ``Metric`` Lightning can log by object, keyed ``prefix + key``.

        ``self.log_dict(metric.loggable("val/"))`` in a ``LightningModule`` logs each number, with Lightning
        owning compute, distributed sync (one sync of the shared state) and reset; no ``sync_dist`` needed.
        A metric whose ``compute()`` is a tensor is returned as itself, under ``prefix + "distance"``.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        views = list(self.result_views.values())
        if not views:
            return {f"{prefix}{self._scalar_name()}": self}
        return {f"{prefix}{view.key}": view for view in views}

    def _scalar_name(self) -> str:
        """The log name of a tensor-valued ``compute()``; subclasses with per-sample results raise instead."""
        raise NotImplementedError

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
        device = unwrap_frozen(self.net).device
        for name, value in images.items():
            if isinstance(value, Tensor) and value.device != device:
                raise ValueError(
                    f"{name} is on {value.device} but the metric's network is on {device};"
                    f" call metric.to({name}.device)"
                )
            self.prep.check(value, name, values=self.validate_args)
        check_same_shape(**images)

    def _features(self, *images: Tensor) -> Tensor:
        """Backbone features ``(N, D)`` (before normalisation) of validated image batches, concatenated along
        ``N``, in one forward pass. The batches go to the network as given (a ``FeatureShare`` cache hit when
        another metric just ran the same batches with the same preprocessing)."""
        if self._compiled_forward is not None:
            return features_of(self._compiled_forward, torch.cat(images), self.prep, unwrap_frozen(self.net).dtype)
        return at_least_float32(self.net(*images, prep=self.prep))

    def _embed(self, *images: Tensor) -> Tensor:
        """Normalised embeddings ``(N, D')`` of validated image batches (concatenated), in one forward pass."""
        return apply_normalization(self._features(*images), self.normalization)

    def _check_certifiable(self) -> None:
        """Raise ``ValueError`` if the network's dtype cannot give sound certificates (bfloat16, float16)."""
        check_certifiable(unwrap_frozen(self.net).dtype)

    def _lipschitz(self, images: Tensor) -> float:
        """Lipschitz bound (user pixels) of the embedding for this batch's size."""
        return lipschitz_constant(self.backbone, self.prep, images)

    def _result_dtype(self) -> torch.dtype:
        return torch.promote_types(unwrap_frozen(self.net).dtype, torch.float32)
