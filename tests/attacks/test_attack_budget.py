"""Budgets and the valid range hold exactly for every returned image, and attacks are deterministic."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm.attacks.apgd import apgd
from lipsim_tm.attacks.budget import make_feasible
from lipsim_tm.attacks.objectives import DistanceChange, TwoAFCFlip
from lipsim_tm.attacks.pgd import pgd

pytestmark = pytest.mark.usefixtures("single_thread")


def _within(x: torch.Tensor, adv: torch.Tensor, eps: torch.Tensor, norm: str, lo: float, hi: float) -> None:
    delta = adv.double() - x.double()
    if norm == "l2":
        assert (delta.flatten(1).norm(dim=1) <= eps.double()).all()
    else:
        assert (delta.flatten(1).abs().amax(dim=1) <= eps.double()).all()
    assert adv.min().item() >= lo
    assert adv.max().item() <= hi


@given(
    seed=st.integers(0, 2**31 - 1),
    eps=st.floats(1e-7, 3.0),
    scale=st.floats(1e-8, 10.0),
    norm=st.sampled_from(["l2", "linf"]),
    bounds=st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (-0.3, 0.7)]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_make_feasible_is_exact_in_floating_point(seed, eps, scale, norm, bounds, dtype):
    lo, hi = bounds
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 2, 5, 5, generator=g, dtype=torch.float64) * (hi - lo) + lo
    x[0, 0, 0], x[0, 0, 1] = lo, hi  # pixels on both edges of the range
    x = x.to(dtype)  # rounding may leave the range by one ulp: step back inside
    x = torch.where(x.double() < lo, torch.nextafter(x, torch.tensor(hi, dtype=dtype)), x)
    x = torch.where(x.double() > hi, torch.nextafter(x, torch.tensor(lo, dtype=dtype)), x)
    candidate = x + scale * torch.randn(x.shape, generator=g, dtype=dtype)
    eps_t = torch.full((3,), eps, dtype=torch.float64)
    _within(x, make_feasible(x, candidate, eps_t, norm, lo, hi), eps_t, norm, lo, hi)


def test_projection_matches_closed_form_inside_the_range():
    x = torch.full((2, 3, 4, 4), 0.5, dtype=torch.float64)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = torch.tensor([0.1, 0.2], dtype=torch.float64)
    out = make_feasible(x, x + direction, eps, "l2", 0.0, 1.0)
    unit = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(out - x, unit * eps.view(-1, 1, 1, 1), rtol=1e-8, atol=0)
    out = make_feasible(x, x + direction, eps, "linf", 0.0, 1.0)
    torch.testing.assert_close(
        out - x, torch.maximum(torch.minimum(direction, eps.view(-1, 1, 1, 1)), -eps.view(-1, 1, 1, 1))
    )
    inside = x + 1e-3 * direction
    torch.testing.assert_close(make_feasible(x, inside, eps, "l2", 0.0, 1.0), inside, rtol=0, atol=1e-15)


def _toy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(3 * x) - torch.tanh(3 * y)).pow(2).flatten(1).sum(dim=1)


@pytest.mark.parametrize("attack", [pgd, apgd])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_attacks_respect_budget_and_range(attack, norm, device):
    g = torch.Generator().manual_seed(1)
    ref, x0, x1 = (torch.rand(4, 3, 6, 6, generator=g).to(device) for _ in range(3))
    x0[0] = 1.0  # a saturated image: the range constraint is active
    eps = torch.tensor([0.3, 0.05, 1.0, 2.0], device=device) if norm == "l2" else 0.04
    eps_t = eps.double() if isinstance(eps, torch.Tensor) else torch.full((4,), eps, dtype=torch.float64)
    objective = TwoAFCFlip(_toy_distance, ref, x0, x1)
    result = attack(
        objective,
        (ref, x0, x1),
        (True, True, False),
        eps=eps,
        norm=norm,
        steps=8,
        restarts=2,
        stop_on_success=False,
    )
    for clean, adv in zip((ref, x0), result.images[:2], strict=True):
        _within(clean, adv, eps_t.to(device), norm, 0.0, 1.0)
    assert torch.equal(result.images[2], x1)
    # The reported objective is the objective at the returned images.
    torch.testing.assert_close(objective(result.images), result.objective)
    assert (result.objective >= result.clean_objective).all()


@pytest.mark.parametrize("attack", [pgd, apgd])
def test_attacks_are_deterministic_under_a_seed(attack):
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(3, 1, 5, 5, generator=g), torch.rand(3, 1, 5, 5, generator=g)
    objective = DistanceChange(_toy_distance, x, y)

    def run(seed):
        return attack(objective, (x,), (True,), eps=0.5, steps=4, restarts=3, generator=seed, stop_on_success=False)

    first, again, other = run(7), run(7), run(torch.Generator().manual_seed(8))
    assert torch.equal(first.images[0], again.images[0])
    assert torch.equal(first.objective, again.objective)
    assert not torch.equal(first.images[0], other.images[0])
