"""A rejected input never costs accumulated work: states, counters and later ``compute()`` values are unchanged
after ``update``, ``forward`` or ``__call__`` raise, for every input class, with ``dist_sync_on_step`` and
``compute_on_cpu``; the next good batch accumulates as if the bad one never came."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import images, triplets

W = "random:tiny32"
SETTINGS = {"default": {}, "dist_sync_on_step": {"dist_sync_on_step": True}, "compute_on_cpu": {"compute_on_cpu": True}}
ENTRIES = ("update", "forward", "__call__")


def _with(tensor: Tensor, index: tuple[int, ...], value: float) -> Tensor:
    out = tensor.clone()
    out[index] = value
    return out


def _image_cases(good: tuple[Tensor, ...]) -> dict[str, tuple[tuple[Any, ...], type[Exception]]]:
    """Bad variants of ``good`` (image batches first, then maybe a target), changing the first image batch."""
    x, rest = good[0], good[1:]
    return {
        "nan": ((_with(x, (0, 0, 0, 0), float("nan")), *rest), ValueError),
        "inf": ((_with(x, (1, 2, 3, 4), float("inf")), *rest), ValueError),
        "range": ((x * 2 - 0.5, *rest), ValueError),
        "dtype": (((x * 255).to(torch.uint8), *rest), TypeError),
        "rank": ((x[0], *rest), ValueError),
        "channels": ((x[:, :1], *rest), ValueError),
        "batch": ((x[:2], *rest), ValueError),
        "shape": ((x[..., :16], *rest), ValueError),
        "empty": ((x[:0], *(r[:0] for r in rest)), ValueError),
        "device": ((torch.empty(x.shape, device="meta"), *rest), ValueError),
        "type": ((x.tolist(), *rest), TypeError),
    }


def _distance_cases() -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], dict]:
    return (images(1), images(2)), (images(3), images(4)), _image_cases((images(5), images(6)))


def _afc_cases() -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], dict]:
    good, other, bad = triplets(0, n=4), triplets(1, n=4), triplets(2, n=4)
    cases = _image_cases(bad)
    ref, img0, img1, target = bad
    cases["target_range"] = ((ref, img0, img1, _with(target, (1,), 1.5)), ValueError)
    cases["target_nan"] = ((ref, img0, img1, _with(target, (0,), float("nan"))), ValueError)
    cases["target_shape"] = ((ref, img0, img1, target[:3]), ValueError)
    cases["target_type"] = ((ref, img0, img1, target.tolist()), TypeError)
    return good, other, cases


METRICS: dict[str, tuple[Callable[..., Any], Callable[[], tuple]]] = {
    "distance": (lambda **kw: LipSimDistance(W, **kw), _distance_cases),
    "distance_none_certified": (
        lambda **kw: LipSimDistance(W, reduction="none", certify_eps=0.05, **kw),
        _distance_cases,
    ),
    "afc": (lambda **kw: Certified2AFCAccuracy(W, epsilons=(0.01, 0.1), **kw), _afc_cases),
    "afc_per_sample": (lambda **kw: Certified2AFCAccuracy(W, epsilons=(0.01,), per_sample=True, **kw), _afc_cases),
}


def _states(metric: Any) -> dict[str, Any]:
    out = {}
    for name in metric._defaults:
        value = getattr(metric, name)
        out[name] = [v.clone() for v in value] if isinstance(value, list) else value.clone()
    out["_update_count"] = metric._update_count
    return out


def _value(result: Any) -> Any:
    if isinstance(result, dict):
        return {k: _value(v) for k, v in result.items()}
    return result.detach().clone()


def _call(metric: Any, entry: str, args: tuple) -> Any:
    if entry == "__call__":
        return metric(*args)
    return getattr(metric, entry)(*args)


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", list(METRICS))
def test_rejected_input_leaves_state_and_results_unchanged(name: str, entry: str, setting: str) -> None:
    factory, cases = METRICS[name]
    good, other, bad_cases = cases()
    metric = factory(**SETTINGS[setting])
    reference = factory(**SETTINGS[setting])
    _call(metric, entry, good)
    reference.update(*good)
    before_states, before_value = _states(metric), _value(metric.compute())
    for case, (bad, error) in bad_cases.items():
        with pytest.raises(error):
            _call(metric, entry, bad)
        torch.testing.assert_close(_states(metric), before_states, msg=f"{case}: state changed")
        torch.testing.assert_close(_value(metric.compute()), before_value, equal_nan=True, msg=f"{case}: value")
    # The next good batch accumulates as if no bad batch had come.
    _call(metric, entry, other)
    reference.update(*other)
    torch.testing.assert_close(_value(metric.compute()), _value(reference.compute()), equal_nan=True)
    assert metric._update_count == reference._update_count == 2


def test_a_keyboard_interrupt_inside_forward_restores_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    metric = LipSimDistance(W)
    metric.update(images(1), images(2))
    before = _value(metric.compute())

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(metric, "_features", interrupted)
    with pytest.raises(KeyboardInterrupt):
        metric(images(3), images(4))
    monkeypatch.undo()
    torch.testing.assert_close(_value(metric.compute()), before)
    assert metric._update_count == 1
