"""Attacks are strong: they reach closed-form optima of linear distances and flip an unconstrained network metric."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lipsim_tm.attacks import attack_2afc, attack_distance
from lipsim_tm.attacks.apgd import checkpoints

pytestmark = pytest.mark.usefixtures("single_thread")


def _linear(weights: torch.Tensor):
    def distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((x - y) * weights).flatten(1).sum(dim=1)

    return distance


@pytest.mark.parametrize("method", ["pgd", "apgd"])
@pytest.mark.parametrize("maximize", [True, False])
def test_l2_reaches_the_closed_form_optimum(method, maximize):
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64)
    x = 0.4 + 0.2 * torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)  # the box stays inactive
    y = torch.rand(3, 2, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.tensor([0.05, 0.1, 0.3], dtype=torch.float64)
    result = attack_distance(_linear(weights), x, y, eps=eps, maximize=maximize, method=method, steps=20)
    clean = ((x - y) * weights).flatten(1).sum(dim=1)
    # max over ||delta|| <= eps of +-w.delta is eps ||w||.
    optimum = eps * weights.flatten(1).norm(dim=1)
    sign = 1.0 if maximize else -1.0
    torch.testing.assert_close(result.objective, sign * clean + optimum, rtol=1e-7, atol=0)
    assert result.success.all()


@pytest.mark.parametrize("method", ["pgd", "apgd"])
def test_linf_reaches_the_closed_form_optimum_with_the_range_active(method):
    g = torch.Generator().manual_seed(1)
    weights = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    x = torch.rand(4, 3, 5, 5, generator=g, dtype=torch.float64)
    x[:, 0] = 1.0  # saturated pixels: the optimum is cut by the range there
    y = torch.zeros_like(x)
    eps = 0.1
    result = attack_distance(_linear(weights), x, y, eps=eps, norm="linf", method=method, steps=20)
    # Separable: each pixel moves by eps towards sign(w), clipped to [0, 1].
    best = (x + eps * weights.sign()).clamp(0, 1)
    optimum = (best * weights).flatten(1).sum(dim=1)
    torch.testing.assert_close(result.objective, optimum, rtol=1e-9, atol=1e-12)


def _unconstrained_distance() -> nn.Module:
    """A random-init conv net with large weights (far from 1-Lipschitz), LPIPS-like squared feature distance."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Flatten()
    )
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(5.0)
    return net.requires_grad_(False)


@pytest.mark.parametrize(("norm", "eps"), [("l2", 0.1), ("linf", 2 / 255)])
@pytest.mark.parametrize("method", ["pgd", "apgd"])
def test_attacks_flip_an_unconstrained_network_metric_at_small_budgets(norm, eps, method):
    net = _unconstrained_distance()

    def distance(x, y):
        return (net(x) - net(y)).pow(2).mean(dim=1)

    g = torch.Generator().manual_seed(2)
    reference = torch.rand(8, 3, 16, 16, generator=g)
    x0 = (reference + 0.1 * torch.randn(reference.shape, generator=g)).clamp(0, 1)
    x1 = (reference + 0.1 * torch.randn(reference.shape, generator=g)).clamp(0, 1)
    result = attack_2afc(distance, reference, x0, x1, eps=eps, norm=norm, method=method, steps=20)
    # l2 0.1 over 768 pixels is an RMS change of 0.0036 per pixel; l_inf 2/255 is under one 8-bit level per side.
    assert result.success.float().mean() >= 0.875
    all_three = attack_2afc(distance, reference, x0, x1, eps=eps, norm=norm, perturb="all", method=method, steps=20)
    assert all_three.success.float().mean() >= 0.875


def test_apgd_checkpoints_follow_the_paper():
    # Croce & Hein (2020): p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) from p_1 = 0.22, times the step count.
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(2) == [1]
    for steps in (5, 37, 500):
        marks = checkpoints(steps)
        assert marks == sorted(set(marks))
        assert marks[0] > 0
        assert marks[-1] < steps
