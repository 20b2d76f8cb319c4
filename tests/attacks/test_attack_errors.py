"""Bad input to the attacks gives clear errors naming the argument."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm.attacks import attack_2afc, attack_distance
from lipsim_tm.attacks.apgd import apgd
from lipsim_tm.attacks.objectives import DistanceChange
from lipsim_tm.attacks.pgd import pgd


def _distance(x, y):
    return (x - y).pow(2).flatten(1).sum(dim=1)


X = torch.full((2, 1, 4, 4), 0.5)
Y = torch.full((2, 1, 4, 4), 0.25)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": 0.0}, ValueError, "eps must be positive"),
        ({"eps": -1.0}, ValueError, "eps must be positive"),
        ({"eps": float("nan")}, ValueError, "eps must be positive"),
        ({"eps": torch.tensor([0.1, 0.0])}, ValueError, "eps must be positive"),
        ({"eps": torch.tensor([0.1, 0.2, 0.3])}, ValueError, r"eps must be .* shape \(2,\)"),
        ({"eps": "0.1"}, TypeError, "eps must be"),
        ({"eps": 0.1, "norm": "l1"}, ValueError, "norm must be one of"),
        ({"eps": 0.1, "method": "fgsm"}, ValueError, "method must be one of"),
        ({"eps": 0.1, "steps": 0}, ValueError, "steps must be an int"),
        ({"eps": 0.1, "restarts": 0}, ValueError, "restarts must be an int"),
        ({"eps": 0.1, "lo": 1.0, "hi": 0.0}, ValueError, "lo must be < hi"),
        ({"eps": 0.1, "hi": float("inf")}, ValueError, "hi must be a finite number"),
        ({"eps": 0.1, "lo": "0"}, TypeError, "lo must be a number"),
        (
            {"eps": 0.1, "hi": 0.4},
            ValueError,
            r"x values must lie in \[0, 0.4\] \(the attack's valid range \[lo, hi\]\)",
        ),
        ({"eps": 0.1, "generator": "seed"}, TypeError, "generator must be"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        attack_distance(_distance, X, Y, steps=kwargs.pop("steps", 2), **kwargs)


def test_bad_images():
    with pytest.raises(ValueError, match="x1 has batch size 3 but reference has 2"):
        attack_2afc(_distance, X, Y, torch.zeros(3, 1, 4, 4), eps=0.1)
    with pytest.raises(TypeError, match="float32 or float64"):
        pgd(DistanceChange(_distance, X, Y), (X.half(),), (True,), eps=0.1)
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        pgd(DistanceChange(_distance, X, Y), (torch.full_like(X, float("nan")),), (True,), eps=0.1, lo=-1.0)
    with pytest.raises(ValueError, match="must have shape"):
        pgd(DistanceChange(_distance, X, Y), (torch.zeros(3),), (True,), eps=0.1)
    with pytest.raises(ValueError, match="perturb must be"):
        pgd(DistanceChange(_distance, X, Y), (X,), (True, False), eps=0.1)
    with pytest.raises(ValueError, match="perturb must hold bools with at least one True"):
        apgd(DistanceChange(_distance, X, Y), (X,), (False,), eps=0.1)
    with pytest.raises(ValueError, match="perturb must be one of"):
        attack_2afc(_distance, X, Y, Y, eps=0.1, perturb="candidates")


def test_bad_callables():
    with pytest.raises(ValueError, match=r"distance_fn must return a floating-point tensor of shape \(2,\)"):
        attack_distance(lambda x, y: (x - y).sum(), X, Y, eps=0.1)
    with pytest.raises(TypeError, match="distance_fn must be callable"):
        attack_distance("lpips", X, Y, eps=0.1)
    with pytest.raises(TypeError, match="objective must be callable"):
        pgd(lambda images: images[0].sum(), (X,), (True,), eps=0.1)
    with pytest.raises(ValueError, match="threshold must be a number or of shape"):
        DistanceChange(_distance, X, Y, threshold=torch.zeros(3))
