"""Precision policy: reduced-precision networks give distances, never certificates (ValueError)."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm.functional import certified_distance_interval, lipsim_distance, two_afc
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import images, tiny, triplets

MESSAGE = r"certificates need a float32 or float64 network, got a torch\.(bfloat16|float16) network"
REDUCED = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", REDUCED)
def test_certified_2afc_refuses_reduced_precision_and_keeps_its_state(dtype: torch.dtype) -> None:
    metric = Certified2AFCAccuracy(tiny(dtype=dtype))
    with pytest.raises(ValueError, match=MESSAGE):
        metric.update(*triplets(0, n=2))
    assert metric.total == 0


@pytest.mark.parametrize("dtype", REDUCED)
def test_distance_certificates_refused_but_distances_allowed(dtype: torch.dtype) -> None:
    x, y = images(1, n=2), images(2, n=2)
    with pytest.raises(ValueError, match=MESSAGE):
        LipSimDistance(tiny(dtype=dtype), certify_eps=0.1).update(x, y)
    with pytest.raises(ValueError, match=MESSAGE):
        certified_distance_interval(x, y, 0.1, weights=tiny(dtype=dtype))
    with pytest.raises(ValueError, match=MESSAGE):
        two_afc(*triplets(0, n=2)[:3], weights=tiny(dtype=dtype))
    if dtype == torch.bfloat16:  # float16 convolutions are not implemented on every CPU build
        metric = LipSimDistance(tiny(dtype=dtype))
        metric.update(x, y)
        reduced = metric.compute()
        assert torch.isfinite(reduced)
        torch.testing.assert_close(reduced, lipsim_distance(x, y, weights=tiny()).mean(), atol=2e-2, rtol=0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_precision_networks_are_certified(dtype: torch.dtype) -> None:
    metric = Certified2AFCAccuracy(tiny(dtype=dtype))
    metric.update(*triplets(0, n=2))
    assert metric.total == 2
    interval = certified_distance_interval(images(1, n=2), images(2, n=2), 0.01, weights=tiny(dtype=dtype))
    assert bool((interval.lower <= interval.upper).all())
