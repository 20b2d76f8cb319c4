"""LipSimLoss: piq conventions, gradients to both inputs only, and optimisation toward a target."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm.functional import lipsim_distance
from lipsim_tm.losses import LipSimLoss
from metrics_helpers import images, tiny

W = "random:tiny32"


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_loss_equals_functional(reduction: str, distance: str) -> None:
    x, y = images(0, n=3, size=(40, 24)), images(1, n=3, size=(40, 24))
    loss = LipSimLoss(W, reduction=reduction, distance=distance)(x, y)
    torch.testing.assert_close(loss, lipsim_distance(x, y, weights=W, reduction=reduction, distance=distance))


def test_gradients_reach_both_inputs_and_never_the_network() -> None:
    net = tiny()
    loss_fn = LipSimLoss(net, data_range=255.0)
    x = (images(2, n=2) * 255).requires_grad_()
    y = (images(3, n=2) * 255).requires_grad_()
    loss_fn(x, y).backward()
    assert x.grad is not None
    assert y.grad is not None
    assert all(p.requires_grad and p.grad is None for p in net.parameters())


def test_optimising_an_image_toward_a_target_lowers_the_distance() -> None:
    loss_fn = LipSimLoss(W)
    target = images(4, n=1, size=(32, 32))
    x = images(5, n=1, size=(32, 32)).requires_grad_()
    optimizer = torch.optim.Adam([x], lr=0.02)
    start = loss_fn(x, target).item()
    for _ in range(40):
        optimizer.zero_grad()
        loss_fn(x, target).backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    assert loss_fn(x, target).item() < 0.3 * start


def test_bad_input_and_arguments() -> None:
    loss_fn = LipSimLoss(W)
    x = images(6, n=2)
    with pytest.raises(TypeError, match="y must be a floating-point tensor"):
        loss_fn(x, (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"x and y must have the same shape"):
        loss_fn(x, x[:1])
    with pytest.raises(ValueError, match=r"x values must lie in \[0, 1\]"):
        loss_fn(x * 2 - 1, x)
    with pytest.raises(ValueError, match="reduction must be one of"):
        LipSimLoss(W, reduction="batchmean")
    with pytest.raises(ValueError, match="x is on meta but the loss's network is on cpu"):
        loss_fn(x.to("meta"), x)


def test_side_by_side_with_piq() -> None:
    piq = pytest.importorskip("piq")
    x, y = images(7, n=2, size=(32, 32)), images(8, n=2, size=(32, 32))
    for loss_fn in (LipSimLoss(W, reduction="none"), piq.SSIMLoss(data_range=1.0, reduction="none")):
        z = x.clone().requires_grad_()
        value = loss_fn(z, y)
        value.sum().backward()
        assert value.shape == (2,)
        assert z.grad is not None
