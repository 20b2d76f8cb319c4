"""The hard natural accuracy: its definition against a direct count, and the property that no certified accuracy
ever exceeds it (every budget, rule and normalisation), with 95% intervals that contain the values."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lipsim_tm.functional import two_afc
from lipsim_tm.functional.confidence import mean_interval, wilson
from lipsim_tm.metrics import Certified2AFCAccuracy
from metrics_helpers import triplets

W = "random:tiny32"
RULES = [
    ("augment", "norm_aware"),
    ("augment", "plain"),
    ("ball", "norm_aware"),
    ("ball", "plain"),
    ("plain", "norm_aware"),
]


def _batch(seed: int, n: int, ties: int, halves: int) -> tuple[torch.Tensor, ...]:
    """Triplets with ``ties`` identical candidates (a tie: never correct) and ``halves`` targets of 0.5."""
    ref, img0, img1, target = triplets(seed, n=n, noise=0.03)
    img1[:ties] = img0[:ties]
    target[ties : ties + halves] = 0.5
    return ref, img0, img1, target


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rule=st.sampled_from(RULES),
    epsilons=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=4, unique_by=lambda e: f"{e:.4g}"),
    ties=st.integers(0, 2),
    halves=st.integers(0, 2),
)
def test_certified_accuracy_never_exceeds_the_natural_accuracy(seed, rule, epsilons, ties, halves) -> None:
    normalization, certificate = rule
    metric = Certified2AFCAccuracy(W, epsilons=epsilons, normalization=normalization, certificate=certificate)
    batch = _batch(seed, 6, ties, halves)
    metric.update(*batch)
    result = metric.compute()
    natural = result["natural_accuracy"]
    for key in (*metric.keys, *metric.keys_all):
        if not torch.isnan(natural):
            assert result[key] <= natural, key
    summary = metric.summary()
    for row in summary.rows:
        assert row.reference.count <= summary.natural_accuracy.count
        assert row.all.count <= summary.natural_accuracy.count


@pytest.mark.parametrize(("normalization", "certificate"), RULES)
def test_natural_accuracy_is_the_share_of_decided_triplets_predicted_right(normalization, certificate) -> None:
    ref, img0, img1, target = _batch(3, 8, ties=1, halves=2)
    metric = Certified2AFCAccuracy(W, epsilons=(0.01,), normalization=normalization, certificate=certificate)
    metric.update(ref, img0, img1, target)
    decision = two_afc(ref, img0, img1, weights=W, normalization=normalization, certificate=certificate)
    decided = target != 0.5
    correct = decided & ~decision.tie & (decision.prefers_img1 == (target > 0.5))
    expected = correct.sum() / decided.sum()
    torch.testing.assert_close(metric.compute()["natural_accuracy"], expected.float())
    summary = metric.summary()
    assert (summary.triplets, summary.decided) == (8, int(decided.sum()))
    assert summary.natural_accuracy.count == int(correct.sum())


def test_wilson_interval_against_closed_forms() -> None:
    estimate = wilson(0, 10)
    assert estimate.value == 0.0
    assert estimate.low == 0.0
    assert estimate.high == pytest.approx(1.96**2 / (10 + 1.96**2), rel=1e-4)  # k = 0: z^2 / (n + z^2)
    symmetric = wilson(50, 100)
    assert symmetric.low == pytest.approx(1 - symmetric.high)
    assert symmetric.low == pytest.approx(0.4038, abs=1e-4)  # the textbook value for 50 of 100
    empty = wilson(0, 0)
    assert empty.total == 0
    assert empty.value != empty.value  # NaN


def test_mean_interval_uses_the_sample_variance() -> None:
    values = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3], dtype=torch.float64)
    estimate = mean_interval(float(values.sum()), float(values.pow(2).sum()), len(values))
    half = 1.959963984540054 * float(values.std(unbiased=True)) / len(values) ** 0.5
    assert estimate.value == pytest.approx(0.5)
    assert estimate.low == pytest.approx(0.5 - half)
    assert estimate.high == pytest.approx(0.5 + half)


def test_merged_subsets_equal_one_metric_on_all_data_and_other_settings_are_refused() -> None:
    first, second = _batch(1, 5, ties=1, halves=1), _batch(2, 4, ties=0, halves=1)
    whole = Certified2AFCAccuracy(W, epsilons=(0.01, 0.05), per_sample=True)
    parts = [Certified2AFCAccuracy(W, epsilons=(0.01, 0.05), per_sample=True) for _ in range(2)]
    for part, batch in zip(parts, (first, second), strict=True):
        whole.update(*batch)
        part.update(*batch)
    assert parts[0].compute()["natural_accuracy"] != whole.compute()["natural_accuracy"]  # a cached value is dropped
    merged = parts[1]
    merged.merge_state(parts[0])  # torchmetrics puts the incoming per-sample states first: first batch, then second
    for key, value in whole.compute().items():
        torch.testing.assert_close(merged.compute()[key], value, msg=key)
    assert merged.summary() == whole.summary()
    with pytest.raises(ValueError, match="same class and settings"):
        parts[0].merge_state(Certified2AFCAccuracy(W, epsilons=(0.02,)))
