"""Certificate audits on a trained tiny LipSim: strong attacks never break a certificate; how tight they are."""

from __future__ import annotations

import math

import pytest
import torch

from lipsim_tm.attacks import attack_2afc
from lipsim_tm.functional import certified_distance_interval, lipsim_distance, two_afc
from lipsim_tm.robustness import audit, audit_distance


def _stacked(dataset, n):
    return tuple(torch.stack(column) for column in zip(*[dataset[i] for i in range(n)], strict=False))


@pytest.fixture(scope="module")
def images(triplets):
    ref, x0, x1, _ = _stacked(triplets, 8)
    return ref, x0, x1


@pytest.mark.parametrize(
    ("perturb", "normalization", "certificate"),
    [
        ("reference", "augment", "norm_aware"),
        ("all", "augment", "norm_aware"),
        ("reference", "plain", "norm_aware"),  # the released checkpoints' v / ||v||
        ("reference", "augment", "plain"),
    ],
)
def test_no_flip_within_the_radius_and_tightness_at_least_one(trained, images, perturb, normalization, certificate):
    backbone, _ = trained
    options = {"weights": backbone, "normalization": normalization, "certificate": certificate}
    result = audit(*images, perturb=perturb, steps=10, restarts=2, bisection_steps=3, **options)
    clean = two_afc(*images, **options)
    expected = clean.radius_reference if perturb == "reference" else clean.radius_all
    torch.testing.assert_close(result.radius, expected)
    assert result.certified.sum() >= 6  # the trained model certifies most held-out triplets
    assert not result.violations.any()
    ratio = result.ratio[result.certified]
    assert (ratio >= 1).all(), ratio
    # The search does find flips (finite ratios) for most triplets: the audit measures something.
    assert torch.isfinite(ratio).sum() >= 6, ratio
    print(f"tightness ({perturb}, {normalization}, {certificate}): flip / R = {[round(float(r), 2) for r in ratio]}")


def test_apgd_with_restarts_at_the_radius_never_flips(trained, images):
    backbone, _ = trained
    clean = two_afc(*images, weights=backbone)
    keep = clean.radius_reference > 0
    images = tuple(t[keep] for t in images)
    radius = clean.radius_reference[keep]

    def distance(x, y):
        return lipsim_distance(x, y, weights=backbone)

    result = attack_2afc(distance, *images, eps=radius, method="apgd", steps=20, restarts=3)
    delta = (result.images[0] - images[0]).double().flatten(1).norm(dim=1)
    assert (delta <= radius * (1 + 1e-5)).all()
    after = two_afc(*result.images, weights=backbone)
    assert not after.tie.any()
    assert (after.prefers_img1 == clean.prefers_img1[keep]).all()
    assert (result.objective > result.clean_objective).all()  # it did push towards the boundary
    assert not result.success.any()


@pytest.mark.parametrize("eps", [0.05, 0.5])
def test_attacks_never_leave_the_certified_distance_interval(trained, images, eps):
    backbone, _ = trained
    x, y = images[0][:6], images[1][:6]
    result = audit_distance(x, y, eps, weights=backbone, steps=10, restarts=2)
    interval = certified_distance_interval(x, y, eps, weights=backbone)
    torch.testing.assert_close(result.lower, interval.lower)
    torch.testing.assert_close(result.upper, interval.upper)
    assert result.inside.all()
    d = interval.distance.double()
    assert (result.attacked_max > d).all()
    assert (result.attacked_min < d).all()


def test_audit_finds_no_flip_beyond_max_eps_as_inf(trained, images):
    backbone, _ = trained
    result = audit(*(t[:2] for t in images), weights=backbone, steps=2, restarts=1, bisection_steps=0, max_eps=1e-3)
    assert torch.isinf(result.smallest_flip).all()
    assert not result.violations.any()
    assert (result.ratio == math.inf).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"perturb": "x0"}, "perturb must be one of"),
        ({"method": "fgsm"}, "method must be one of"),
        ({"bisection_steps": -1}, "bisection_steps must be an int >= 0"),
        ({"max_eps": 0.0}, "max_eps must be a finite number > 0"),
        ({"max_eps": math.inf}, "max_eps must be a finite number > 0"),
    ],
)
def test_bad_arguments(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        audit(*images, weights="random:tiny32", **kwargs)
