"""LipSimDistance: accumulation against a float64 reference, the Metric contract, freezing and bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lipsim_tm.functional import lipsim_distance
from lipsim_tm.metrics import LipSimDistance
from metrics_helpers import images, reference_phi, tiny

W = "random:tiny32"
BATCHES = [
    (images(0, n=3, size=(32, 32)), images(1, n=3, size=(32, 32))),
    (images(2, 2, (20, 45)), images(3, 2, (20, 45))),
]


def _states(metric: LipSimDistance) -> dict:
    return {k: [t.clone() for t in v] if isinstance(v, list) else v.clone() for k, v in metric.metric_state.items()}


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("normalization", ["augment", "ball"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_accumulation_over_batches_equals_a_float64_reference(distance: str, normalization: str, reduction: str):
    metric = LipSimDistance(W, distance=distance, normalization=normalization, reduction=reduction)
    per_sample = []
    for x, y in BATCHES:
        metric.update(x, y)
        gap = reference_phi(tiny(), x, 32, normalization) - reference_phi(tiny(), y, 32, normalization)
        squared = gap.pow(2).sum(dim=1)
        per_sample.append(squared / 2 if distance == "cosine" else squared.sqrt())
    expected = torch.cat(per_sample)
    expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
    result = metric.compute()
    assert result.dtype == torch.float32
    torch.testing.assert_close(result.double(), expected, rtol=2e-5, atol=1e-7)


def test_forward_returns_the_batch_value_and_accumulates() -> None:
    metric = LipSimDistance(W)
    (x0, y0), (x1, y1) = BATCHES
    first = metric(x0, y0)
    torch.testing.assert_close(first, lipsim_distance(x0, y0, weights=W).mean())
    fresh = LipSimDistance(W)
    fresh.update(x0, y0)
    torch.testing.assert_close(first, fresh.compute())
    metric(x1, y1)
    all_values = torch.cat([lipsim_distance(x, y, weights=W) for x, y in BATCHES])
    torch.testing.assert_close(metric.compute(), all_values.mean(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradients_reach_inputs_never_the_network(reduction: str) -> None:
    metric = LipSimDistance(W, reduction=reduction)
    x, y = (t.clone().requires_grad_() for t in BATCHES[0])
    metric(x, y).sum().backward()
    assert x.grad is not None
    assert y.grad is not None
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None for p in metric.backbone.parameters())
    assert all(not p.requires_grad for p in metric.backbone.parameters())
    # per-sample and sum states hold no autograd graph after forward (memory stays flat)
    for value in metric.metric_state.values():
        for t in value if isinstance(value, list) else [value]:
            assert t.grad_fn is None


def test_shared_instance_stays_trainable_and_gets_no_gradient() -> None:
    net = tiny()
    net.train()
    metric = LipSimDistance(net)
    assert metric.backbone is net
    x = BATCHES[0][0].clone().requires_grad_()
    metric(x, BATCHES[0][1]).backward()
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    assert net.training
    assert x.grad is not None


def test_a_shared_instance_is_converted_with_the_metric_as_the_readme_says() -> None:
    """README: a network passed as ``weights=`` is shared, not copied; ``.to(torch.float64)`` and ``set_dtype`` on
    the metric convert it, ``.double()`` changes nothing (torchmetrics)."""
    for convert, converted in [
        (lambda m: m.to(torch.float64), True),
        (lambda m: m.set_dtype(torch.float64), True),
        (lambda m: m.double(), False),
    ]:
        net = tiny()
        metric = convert(LipSimDistance(net))
        assert metric.backbone is net
        assert all((p.dtype == torch.float64) == converted for p in net.parameters())


def test_frozen_network_stays_in_eval_inside_a_training_parent() -> None:
    parent = nn.Module()
    parent.metric = LipSimDistance(W)
    parent.train()
    assert parent.metric.net.training  # the wrapper's own flag follows (Lightning warns about eval modules)
    assert not parent.metric.backbone.training  # the network itself stays in eval
    parent.requires_grad_(True)
    assert not any(p.requires_grad for p in parent.metric.backbone.parameters())
    assert list(parent.parameters()) == []


def test_state_dict_policy_backbone_weights_are_excluded() -> None:
    parent = nn.Module()
    parent.layer = nn.Linear(2, 2)
    parent.metric = LipSimDistance(W)
    keys = set(parent.state_dict())
    assert keys == {"layer.weight", "layer.bias"}
    other = nn.Module()
    other.layer = nn.Linear(2, 2)
    other.metric = LipSimDistance(W)
    other.load_state_dict(parent.state_dict(), strict=True)


BAD_INPUTS = [
    (lambda x, y: (x.long(), y), TypeError, "x must be a floating-point tensor"),
    (lambda x, y: (x[0], y[0]), ValueError, r"x must have shape \(N, C, H, W\)"),
    (lambda x, y: (x[:, :2], y[:, :2]), ValueError, "x must have 3 channels"),
    (lambda x, y: (x[:, :1], y[:, :1]), ValueError, "pass grayscale=True"),
    (lambda x, y: (x, y * float("nan")), ValueError, "y contains NaN or infinite values"),
    (lambda x, y: (x, y + float("inf")), ValueError, "y contains NaN or infinite values"),
    (lambda x, y: (x * 255, y * 255), ValueError, r"x values must lie in \[0, 1\].*data_range=255.0"),
    (lambda x, y: (x * 2 - 1, y), ValueError, r"x values must lie in \[0, 1\].*data_range=\(-1.0, 1.0\)"),
    (lambda x, y: (x, y[:2]), ValueError, r"x and y must have the same shape"),
    (lambda x, y: (x[:, :, :20], y), ValueError, r"x and y must have the same shape"),
    (lambda x, y: (x[:0], y[:0]), ValueError, r"x must hold at least one image, got an empty batch"),
    (lambda x, y: (x.tolist(), y), TypeError, r"x must be a torch\.Tensor"),
    (lambda x, y: (x.to("meta"), y.to("meta")), ValueError, "x is on meta but the metric's network is on cpu"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_INPUTS)
def test_bad_input_raises_and_leaves_state_untouched(make, error: type[Exception], match: str) -> None:
    metric = LipSimDistance(W, reduction="none", certify_eps=0.1)
    metric.update(*BATCHES[0])
    before = _states(metric)
    x, y = BATCHES[0]
    with pytest.raises(error, match=match):
        metric.update(*make(x, y))
    after = _states(metric)
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, list):
            assert len(value) == len(after[key])
            assert all(torch.equal(a, b) for a, b in zip(value, after[key], strict=True))
        else:
            assert torch.equal(value, after[key])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="distance must be one of"):
        LipSimDistance(W, distance="cos")
    with pytest.raises(ValueError, match="reduction must be one of"):
        LipSimDistance(W, reduction="avg")
    with pytest.raises(ValueError, match=r"certificate='plain' needs a 1-Lipschitz normalization"):
        LipSimDistance(W, normalization="plain", certify_eps=0.1, certificate="plain")
    with pytest.raises(ValueError, match="certificate must be one of"):
        LipSimDistance(W, certificate="loose")
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        LipSimDistance(W, certify_eps=float("nan"))
    with pytest.raises(ValueError, match=r"[Uu]nexpected keyword"):
        LipSimDistance(W, not_an_option=1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype: torch.dtype) -> None:
    metric = LipSimDistance(W)
    x, y = BATCHES[0]
    metric.update(x.to(dtype), y.to(dtype))
    result = metric.compute()
    assert result.dtype == torch.float32
    assert torch.isfinite(result)
    torch.testing.assert_close(result, lipsim_distance(x, y, weights=W).mean(), atol=1e-3, rtol=0.05)


def test_set_dtype_converts_the_network_and_the_result() -> None:
    metric = LipSimDistance(W)
    metric.set_dtype(torch.float64)
    assert next(metric.backbone.parameters()).dtype == torch.float64
    metric.update(*BATCHES[0])
    assert metric.compute().dtype == torch.float64


def test_compute_before_update_warns_and_is_nan() -> None:
    metric = LipSimDistance(W)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(metric.compute())
    metric_none = LipSimDistance(W, reduction="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert metric_none.compute().shape == (0,)


def test_grayscale_and_data_range_options() -> None:
    x, y = BATCHES[0]
    grey = LipSimDistance(W, grayscale=True, data_range=255.0)
    grey.update(x[:, :1] * 255, y[:, :1] * 255)
    expected = lipsim_distance(x[:, :1].expand(-1, 3, -1, -1), y[:, :1].expand(-1, 3, -1, -1), weights=W).mean()
    torch.testing.assert_close(grey.compute(), expected, rtol=1e-5, atol=1e-6)


def test_memory_stays_flat_over_many_updates() -> None:
    metric = LipSimDistance(W)
    x, y = images(9, n=1, size=(16, 16)), images(10, n=1, size=(16, 16))
    x.requires_grad_()
    for _ in range(50):
        metric(x, y)
    sizes = {k: v.numel() for k, v in metric.metric_state.items()}
    assert sizes == {"sum_distance": 1, "total": 1, "sum_half_width": 1}
    assert all(v.grad_fn is None for v in metric.metric_state.values())


def test_frozen_network_takes_user_batches_with_their_preprocessing() -> None:
    metric = LipSimDistance(W, data_range=255.0)
    x, y = images(1, n=2) * 255, images(2, n=2) * 255
    net = metric.net
    expected = net(metric.prep(torch.cat([x, y]), net.dtype))
    torch.testing.assert_close(net(x, y, prep=metric.prep), expected, rtol=0, atol=0)
    with pytest.raises(TypeError, match="without prep, forward takes one batch of backbone inputs, got 2"):
        net(x, y)
