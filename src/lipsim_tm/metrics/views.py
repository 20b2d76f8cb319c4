"""Every number of a dict-valued metric as a stateless ``Metric`` of its own, so Lightning can log it by object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torchmetrics import Metric


class ResultView(Metric):
    """``source.compute()[key]`` as a metric of its own, sharing the source's state (it holds none).

    Lightning logs a ``Metric`` by object only when its ``compute()`` returns a tensor; the LipSim metrics return
    dicts. A view makes each entry loggable while the source keeps the one state, the one forward pass per batch
    and the one distributed sync (``compute()`` syncs and caches in the source, once for all its views).
    ``reset()`` resets the source (Lightning resets every logged view at the end of an epoch: the first one
    resets, the others find it reset). ``_forward_cache`` is the source's batch value's entry, so
    ``self.log(..., on_step=True)`` after ``source(batch)`` logs the batch value. ``update``/``forward`` are
    refused: update the source.

    Args:
        source: the metric viewed (not registered as a submodule: it is this view's parent).
        key: the entry of ``source.compute()``.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, source: Metric, key: str) -> None:
        super().__init__(sync_on_compute=False, compute_with_cache=False)
        object.__setattr__(self, "_source", source)
        self.key = key

    def _wrap_update(self, update: Callable) -> Callable:
        return update  # no counters: the source counts its updates

    def _wrap_compute(self, compute: Callable) -> Callable:
        return compute  # no sync or cache here: the source does both

    @property
    def _forward_cache(self) -> Tensor | None:
        cache = getattr(self._source, "_forward_cache", None)
        return None if cache is None else cache[self.key]

    @_forward_cache.setter
    def _forward_cache(self, value: Any) -> None:
        """Ignored: the batch value lives in the source."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"a ResultView of {type(self._source).__name__} holds no state; update the metric itself"
            f" ({type(self._source).__name__}.update/forward) and log its views"
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.update(*args, **kwargs)

    def compute(self) -> Tensor:
        return self._source.compute()[self.key]

    def reset(self) -> None:
        self._source.reset()

    def extra_repr(self) -> str:
        return f"key={self.key!r}"


class Loggable:
    """Mixin of the LipSim metrics: :meth:`loggable` gives every scalar of ``compute()`` as a :class:`ResultView`."""

    result_views: nn.ModuleDict

    def _add_views(self, keys: tuple[str, ...]) -> None:
        """Register a :class:`ResultView` per scalar entry of ``compute()``; registered at construction, so a
        ``LightningModule`` finds them among its modules."""
        self.result_views = nn.ModuleDict({key.replace(".", "_"): ResultView(self, key) for key in keys})  # type: ignore[arg-type]

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
            return {f"{prefix}{self._scalar_name()}": self}  # type: ignore[dict-item]
        return {f"{prefix}{view.key}": view for view in views}

    def _scalar_name(self) -> str:
        """The log name of a tensor-valued ``compute()``; subclasses with per-sample results raise instead."""
        raise NotImplementedError
