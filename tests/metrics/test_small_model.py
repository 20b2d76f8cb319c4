"""The released architecture (``small``, 63M parameters) through the metrics: slow, deselected by default."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm.functional import two_afc
from lipsim_tm.metrics import Certified2AFCAccuracy
from metrics_helpers import triplets

pytestmark = pytest.mark.slow


def test_small_architecture_end_to_end() -> None:
    ref, img0, img1, target = triplets(0, n=2, size=(256, 256), noise=0.02)
    metric = Certified2AFCAccuracy("random:small", per_sample=True)
    metric.update(ref, img0, img1, target)
    result = metric.compute()
    expected = two_afc(ref, img0, img1, weights="random:small")
    torch.testing.assert_close(result["radius_reference"], expected.radius_reference.float())
    assert all(torch.isfinite(v).all() for v in result.values())
