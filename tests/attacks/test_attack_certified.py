"""On a 1-Lipschitz LipSim backbone with a sound normalisation, attacks never break a certificate."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm import LipSimBackbone
from lipsim_tm.attacks import attack_2afc, attack_distance
from lipsim_tm.functional.distance import distance_from_embeddings
from lipsim_tm.functional.normalization import normalize_embedding

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def lipsim():
    torch.manual_seed(0)
    backbone = LipSimBackbone("tiny32").eval().requires_grad_(False)
    assert backbone.lipschitz_bound == 1.0

    def embed(x):
        return normalize_embedding(backbone(x), "augment")  # sound: 1-Lipschitz

    def distance(x, y):
        return distance_from_embeddings(embed(x), embed(y), "cosine")  # ||phi_a - phi_b||^2 / 2

    return embed, distance


def _triplets(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    reference = torch.rand(n, 3, 32, 32, generator=g)
    x0 = (reference + 0.2 * torch.randn(reference.shape, generator=g)).clamp(0, 1)
    x1 = (reference + 0.2 * torch.randn(reference.shape, generator=g)).clamp(0, 1)
    return reference, x0, x1


def _radius(embed, reference, x0, x1) -> torch.Tensor:
    """R = |d0 - d1| / ||phi(x0) - phi(x1)||, in float64 (reference section 2)."""
    with torch.no_grad():
        p, p0, p1 = (embed(x).double() for x in (reference, x0, x1))
    d0, d1 = (p - p0).pow(2).sum(1) / 2, (p - p1).pow(2).sum(1) / 2
    return (d0 - d1).abs() / (p0 - p1).norm(dim=1)


@pytest.mark.parametrize("method", ["pgd", "apgd"])
def test_no_attack_flips_a_decision_within_its_certified_radius(lipsim, method):
    embed, distance = lipsim
    reference, x0, x1 = _triplets(8, seed=0)
    radius = _radius(embed, reference, x0, x1)
    assert (radius > 0).all()
    # Budget just inside each sample's own radius.
    result = attack_2afc(distance, reference, x0, x1, eps=radius * (1 - 1e-6), method=method, steps=15, restarts=2)
    assert not result.success.any()
    assert (result.objective < 0).all()
    assert (result.objective > result.clean_objective).all()  # the attack did push towards the boundary
    # The same attack does flip them all with a larger budget (random-init certificates are ~30x loose here).
    assert attack_2afc(distance, reference, x0, x1, eps=radius * 40, method=method, steps=15).success.all()
    # On a grid of budgets, every flip found is of a decision whose radius is at most the budget.
    for eps in (0.01, 0.05, 0.2):
        result = attack_2afc(distance, reference, x0, x1, eps=eps, method=method, steps=10)
        assert not (result.success & (radius > eps)).any()


def test_distance_moves_by_at_most_the_budget(lipsim):
    _, distance = lipsim
    reference, x0, _ = _triplets(4, seed=1)
    with torch.no_grad():
        clean = distance(reference, x0)
    eps = 0.1
    # |d(x + delta, y) - d(x, y)| <= ||delta|| for the cosine form on unit vectors with a 1-Lipschitz phi.
    up = attack_distance(distance, reference, x0, eps=eps, maximize=True, steps=10)
    down = attack_distance(distance, reference, x0, eps=eps, maximize=False, steps=10)
    assert (up.objective > clean).all()
    assert (-down.objective < clean).all()
    assert (up.objective - clean <= eps).all()
    assert (clean + down.objective <= eps).all()
