"""One number of a dict-valued metric as a stateless ``Metric``, so Lightning can log it by object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor
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
