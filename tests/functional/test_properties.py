"""Hypothesis properties of the functional 2AFC API and the metrics' accumulation."""

from __future__ import annotations

import math
import warnings

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lipsim_tm.functional import two_afc
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import triplets

W = "random:tiny32"


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), distance=st.sampled_from(["cosine", "l2"]))
def test_swapping_the_candidates_flips_the_decision_and_keeps_the_radii(seed: int, distance: str) -> None:
    ref, img0, img1, _ = triplets(seed, n=3, size=(20, 28), noise=0.03)
    a = two_afc(ref, img0, img1, weights=W, distance=distance)
    b = two_afc(ref, img1, img0, weights=W, distance=distance)
    assert torch.equal(a.tie, b.tie)
    assert torch.equal(a.prefers_img1 | a.tie, ~b.prefers_img1 | b.tie)
    torch.testing.assert_close(a.radius_reference, b.radius_reference, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(a.radius_all, b.radius_all, rtol=1e-4, atol=1e-6)
    assert (a.radius_reference >= 2 * a.radius_all * (1 - 1e-6)).all()


@settings(max_examples=8)
@given(seed=st.integers(0, 10_000), split=st.integers(1, 5))
def test_result_does_not_depend_on_how_the_data_is_batched(seed: int, split: int) -> None:
    ref, img0, img1, target = triplets(seed, n=6, noise=0.03)
    whole, parts = Certified2AFCAccuracy(W, epsilons=(0.0, 0.05)), Certified2AFCAccuracy(W, epsilons=(0.0, 0.05))
    whole.update(ref, img0, img1, target)
    parts.update(ref[:split], img0[:split], img1[:split], target[:split])
    parts.update(ref[split:], img0[split:], img1[split:], target[split:])
    a, b = whole.compute(), parts.compute()
    for key in a:
        assert math.isclose(float(a[key]), float(b[key]), abs_tol=1e-6), key
    d_whole, d_parts = LipSimDistance(W), LipSimDistance(W)
    d_whole.update(ref, img1)
    d_parts.update(ref[:split], img1[:split])
    d_parts.update(ref[split:], img1[split:])
    torch.testing.assert_close(d_whole.compute(), d_parts.compute(), rtol=1e-5, atol=1e-7)


def test_certified_accuracy_before_any_update_is_nan() -> None:
    metric = Certified2AFCAccuracy(W)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = metric.compute()
    assert all(math.isnan(float(v)) for v in result.values())


def test_certified_accuracy_never_exceeds_natural_accuracy_and_decreases_with_eps() -> None:
    metric = Certified2AFCAccuracy(W, epsilons=(0.0, 0.03, 0.06, 0.09, 0.12))
    ref, img0, img1, target = triplets(11, n=10, noise=0.02)
    hard = (target > 0.5).float()
    metric.update(ref, img0, img1, hard)
    result = metric.compute()
    values = [float(result[k]) for k in metric.keys]
    values_all = [float(result[k]) for k in metric.keys_all]
    assert values == sorted(values, reverse=True)
    assert values_all == sorted(values_all, reverse=True)
    assert all(v_all <= v for v_all, v in zip(values_all, values, strict=True))
    assert values[0] <= float(result["score_2afc"]) + 1e-6  # with hard labels the natural score is the accuracy
