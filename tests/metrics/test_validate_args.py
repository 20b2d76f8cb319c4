"""``validate_args=False``: no look at the data (no device-to-host transfer), same numbers, metadata still checked."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import images, triplets

W = "random:tiny32"


@pytest.mark.parametrize("metric_class", [LipSimDistance, Certified2AFCAccuracy])
def test_validate_args_must_be_a_bool(metric_class: type) -> None:
    with pytest.raises(TypeError, match="validate_args must be a bool, got 'no'"):
        metric_class(W, validate_args="no")


def test_unvalidated_metrics_give_the_validated_numbers(device: torch.device) -> None:
    batch = [t.to(device) for t in triplets(3, n=5, noise=0.02)]
    x, y = images(1, n=3).to(device), images(2, n=3).to(device)
    for make in (
        lambda **kw: Certified2AFCAccuracy(W, per_sample=True, **kw),
        lambda **kw: LipSimDistance(W, certify_eps=0.1, reduction="none", **kw),
    ):
        checked, unchecked = make().to(device), make(validate_args=False).to(device)
        args = batch if isinstance(checked, Certified2AFCAccuracy) else (x, y)
        for metric in (checked, unchecked):
            metric.update(*args)
        expected, got = checked.compute(), unchecked.compute()
        for key in expected if isinstance(expected, dict) else [None]:
            pick = (lambda r: r) if key is None else (lambda r, key=key: r[key])
            torch.testing.assert_close(pick(got), pick(expected), rtol=0, atol=0)


def test_unvalidated_values_pass_but_metadata_is_still_checked() -> None:
    metric = LipSimDistance(W, validate_args=False)
    x = images(1, n=2)
    metric.update(x * 3, x)  # out of data_range: accepted without a look at the values
    with pytest.raises(ValueError, match="must have 3 channels"):
        metric.update(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="must have the same shape"):
        metric.update(x, x[:1])
    afc = Certified2AFCAccuracy(W, validate_args=False)
    ref, img0, img1, _ = triplets(4, n=2)
    afc.update(ref, img0, img1, torch.tensor([1.5, -1.0]))  # targets outside [0, 1]: not read
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        afc.update(ref, img0, img1, torch.ones(3))
    with pytest.raises(ValueError, match="values must lie in"):
        LipSimDistance(W).update(x * 3, x)  # the default still reads them


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_unvalidated_update_never_synchronises_cuda() -> None:
    device = torch.device("cuda")
    batch = [t.to(device) for t in triplets(5, n=4, noise=0.02)]
    x, y = images(6, n=4).to(device), images(7, n=4).to(device)
    afc = Certified2AFCAccuracy(W, validate_args=False).to(device)
    distance = LipSimDistance(W, certify_eps=0.1, validate_args=False).to(device)
    afc.update(*batch)  # first update: the rescaling cache and the budgets reach the device
    distance.update(x, y)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        afc.update(*batch)
        distance.update(x, y)
    finally:
        torch.cuda.set_sync_debug_mode(0)
