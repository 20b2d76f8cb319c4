"""What the LipSim metrics need from torchmetrics beyond its public API, in one place.

- An atomic ``update``/``forward``: a call that raises (bad input, Ctrl-C) leaves every state and every counter of
  torchmetrics' own bookkeeping as before. torchmetrics changes private attributes (:data:`CONTEXT`) besides the
  states during both calls; they are saved and restored by name.
- ``merge_state`` for torchmetrics < 1.6, which has only the private ``_reduce_states`` (see :func:`merge_states`).

:func:`missing_private_attributes` names whatever the installed torchmetrics lacks of these, so a release that
renames one fails a test with a clear message (``tests/metrics/test_torchmetrics_contract.py``, every tox env)
instead of breaking the atomic update silently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torchmetrics import Metric

#: torchmetrics' bookkeeping that ``update``/``forward`` change besides the states, restored when they raise.
CONTEXT: tuple[str, ...] = (
    "_update_count",
    "_computed",
    "_forward_cache",
    "_to_sync",
    "_should_unsync",
    "_enable_grad",
    "_is_synced",
    "compute_on_cpu",
)
#: Private methods used: the update wrapper made atomic, and the state reduction ``merge_state`` uses.
METHODS: tuple[str, ...] = ("_wrap_update", "_reduce_states")


def missing_private_attributes() -> list[str]:
    """The names of :data:`CONTEXT` and :data:`METHODS` that the installed torchmetrics' ``Metric`` lacks."""

    class _Probe(Metric):
        def update(self) -> None:
            """No state."""

        def compute(self) -> None:
            """No value."""

    probe = _Probe()
    return [name for name in (*CONTEXT, *METHODS) if not hasattr(probe, name)]


class AtomicMetric(Metric):
    """A torchmetrics ``Metric`` whose ``update`` and ``forward`` are atomic: if they raise, every state, counter and
    the value of a later ``compute()`` are as they were (torchmetrics' ``forward`` resets the states before the
    batch's ``update`` and would otherwise lose them)."""

    def _snapshot(self) -> dict[str, Any]:
        """The states (lists copied: ``update`` appends in place; tensors are replaced, never written) and context."""
        snapshot = {name: getattr(self, name) for name in self._defaults}
        snapshot = {name: list(value) if isinstance(value, list) else value for name, value in snapshot.items()}
        snapshot.update({name: getattr(self, name) for name in CONTEXT})
        return snapshot

    def _restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            setattr(self, name, value)

    def _wrap_update(self, update: Callable) -> Callable:
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
        """torchmetrics' ``forward`` (batch value, accumulated state), atomic (see the class docstring)."""
        snapshot = self._snapshot()
        try:
            return super().forward(*args, **kwargs)
        except BaseException:
            self._restore(snapshot)
            raise


def merge_states(metric: Metric, incoming: dict[str, Any] | Metric) -> None:
    """Add ``incoming``'s states (a metric's, or a dict of states) to ``metric``'s as torchmetrics' ``merge_state``
    does (sums add, ``"cat"`` lists join), on every supported torchmetrics, and count a metric's updates:
    ``compute()`` then equals one metric updated with both metrics' data (a cached value is dropped)."""
    if hasattr(Metric, "merge_state"):  # torchmetrics >= 1.6
        Metric.merge_state(metric, incoming)
    else:
        metric._reduce_states(incoming.metric_state if isinstance(incoming, Metric) else incoming)
    if isinstance(incoming, Metric):
        metric._update_count += incoming._update_count
    metric._computed = None
