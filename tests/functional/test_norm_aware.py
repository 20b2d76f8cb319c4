"""Norm-aware certificates: brute-force soundness and tightness of the bound, attacks, and the metric defaults."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from lipsim_tm.attacks import attack_2afc
from lipsim_tm.functional import certified_distance_interval, lipsim_distance, normalize_embedding, two_afc
from lipsim_tm.functional.certificates.intervals import distance_shift
from lipsim_tm.functional.certificates.margins import triplet_margins
from lipsim_tm.functional.certificates.norm_aware import (
    invert_shift,
    norm_and_floor,
    norm_aware_radii,
    normalization_shift,
)
from lipsim_tm.functional.two_afc import _two_afc_update
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import all_images_radius, images, reference_radius, tiny, triplets

Bound = Callable[[float, Tensor, float], Tensor]
CASES = [
    # (normalization, feature norm, s): long, short and below-1 norms; s crossing n - m and the unit ball.
    ("augment", 5.0, 0.3),
    ("augment", 2.0, 1.5),
    ("augment", 0.3, 0.2),
    ("ball", 4.0, 0.5),
    ("ball", 1.5, 1.0),
    ("ball", 0.5, 0.3),
    ("plain", 3.0, 0.15),
    ("plain", 0.5, 0.02),
    ("plain", 1.0, 0.6),
]


def _perturbations(f: Tensor, s: float, gen: torch.Generator) -> Tensor:
    """Points ``f + delta``, ``||delta|| <= s``: random (on and inside the sphere) and a fan of radial/tangential
    mixtures on the sphere, which contains the worst direction (largest angle) and the shortest admissible norm."""
    d = f.shape[0]
    random = torch.randn(4000, d, generator=gen, dtype=torch.float64)
    random = random / random.norm(dim=1, keepdim=True) * s
    random[2000:] *= torch.rand(2000, 1, generator=gen, dtype=torch.float64)
    radial = -f / f.norm()
    tangent = torch.randn(d, generator=gen, dtype=torch.float64)
    tangent = tangent - (tangent @ radial) * radial
    tangent = tangent / tangent.norm()
    alpha = torch.linspace(0, math.pi, 20001, dtype=torch.float64)[:, None]
    fan = s * (torch.cos(alpha) * radial + torch.sin(alpha) * tangent)
    return f + torch.cat([random, fan])


def _worst_ratio(normalization: str, norm: float, s: float, bound: Bound, seed: int = 0) -> float:
    """max over sampled points of ``||phi(f') - phi(f)|| / bound`` (float64); > 1 means the bound is violated."""
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(1, 6, generator=gen, dtype=torch.float64)
    f = f / f.norm() * norm
    moved = _perturbations(f[0], s, gen)
    if normalization == "plain":
        moved = moved[moved.norm(dim=1) > 0]
    phi, phi_moved = normalize_embedding(f, normalization), normalize_embedding(moved, normalization)
    n, m = norm_and_floor(f, normalization)
    limit = bound(s, n, m)
    return float(((phi_moved - phi).norm(dim=1) / limit).max())


@pytest.mark.parametrize(("normalization", "norm", "s"), CASES)
def test_bound_holds_on_and_inside_the_sphere(normalization: str, norm: float, s: float) -> None:
    assert _worst_ratio(normalization, norm, s, normalization_shift) <= 1 + 1e-9


@given(
    normalization=st.sampled_from(["augment", "ball", "plain"]),
    norm=st.floats(0.05, 50.0),
    fraction=st.floats(1e-3, 3.0),
    seed=st.integers(0, 1000),
)
def test_bound_holds_for_random_norms_and_budgets(normalization: str, norm: float, fraction: float, seed: int) -> None:
    # s in (0, 3n] for the 1-Lipschitz maps; in (0, n) for v/||v|| (where s >= n certifies nothing)
    s = fraction * norm if normalization != "plain" else fraction / 3 * 0.999 * norm
    assert _worst_ratio(normalization, norm, s, normalization_shift, seed) <= 1 + 1e-9


@pytest.mark.parametrize(
    ("normalization", "norm", "s"), [("augment", 20.0, 0.5), ("ball", 20.0, 0.5), ("plain", 4.0, 0.1)]
)
def test_bound_is_nearly_attained(normalization: str, norm: float, s: float) -> None:
    # With s << n the largest move is the chord of angle asin(s/n): about (1 - s/(2n)) of the bound.
    assert _worst_ratio(normalization, norm, s, normalization_shift) >= 1 - s / norm


@pytest.mark.parametrize(("normalization", "norm", "s"), CASES[:1] + CASES[3:4] + CASES[6:7])
def test_brute_force_detects_a_halved_bound(normalization: str, norm: float, s: float) -> None:
    def halved(s: float, n: Tensor, m: float) -> Tensor:
        return normalization_shift(s, n, m) / 2

    assert _worst_ratio(normalization, norm, s, halved) > 1.5


def test_plain_map_certifies_nothing_at_or_beyond_the_norm() -> None:
    n = torch.tensor([0.5, 2.0], dtype=torch.float64)
    assert torch.isinf(normalization_shift(torch.tensor([0.5, 2.5], dtype=torch.float64), n, 0.0)).all()
    # and the move really is unbounded in angle: f' = f - s f/||f|| + tiny tangent flips the direction
    f = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    flipped = normalize_embedding(torch.tensor([[-1e-3, 1e-6]], dtype=torch.float64), "plain")
    assert float((flipped - normalize_embedding(f, "plain")).norm()) > 1.99
    # radii from the inversion stay below the norm, for any margin
    t = torch.tensor([0.01, 1.0, 2.0, 100.0], dtype=torch.float64)
    assert (invert_shift(t, torch.full_like(t, 0.5), 0.0) < 0.5).all()


@pytest.mark.parametrize("floor", [0.0, 1.0])
def test_closed_form_inversion_is_the_largest_certified_shift(floor: float) -> None:
    gen = torch.Generator().manual_seed(3)
    n = 1 + 10 * torch.rand(500, generator=gen, dtype=torch.float64)
    t = 3 * torch.rand(500, generator=gen, dtype=torch.float64)
    s = invert_shift(t, n, floor)
    torch.testing.assert_close(normalization_shift(s, n, floor), t, rtol=1e-10, atol=1e-12)
    assert (normalization_shift(s * (1 + 1e-6), n, floor) > t).all()
    if floor > 0:  # both branches are exercised
        assert bool((s > n - floor).any())
        assert bool((s < n - floor).any())


def test_all_images_radius_solves_its_condition() -> None:
    gen = torch.Generator().manual_seed(5)
    phi = [normalize_embedding(3 * torch.randn(64, 8, generator=gen, dtype=torch.float64), "plain") for _ in range(3)]
    norms = tuple(0.5 + 5 * torch.rand(64, generator=gen, dtype=torch.float64) for _ in range(3))
    radius = norm_aware_radii(triplet_margins(*phi), torch.stack(norms, dim=1), 0.0, 2.0, 2.0)[1]
    margin = ((phi[0] - phi[1]).norm(dim=1) - (phi[0] - phi[2]).norm(dim=1)).abs()

    def total(s: Tensor) -> Tensor:
        b = [normalization_shift(s, n, 0.0) for n in norms]
        return 2 * b[0] + b[1] + b[2]

    assert (total(2.0 * radius) < margin).all()
    assert (total(2.0 * radius * 1.001) >= margin - 1e-9).all()


def _scaled_features(seed: int, norm: float) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(3, 16, 8, generator=gen)
    return tuple(x / x.norm(dim=1, keepdim=True) * norm * (1 + 0.1 * torch.rand(16, 1, generator=gen)) for x in f)


def test_plain_map_with_short_norms_gets_smaller_radii_than_the_naive_formula() -> None:
    features = _scaled_features(1, 0.4)
    phi = [normalize_embedding(f, "plain") for f in features]
    options = {"distance": "cosine", "normalization": "plain", "certificate": "norm_aware", "lipschitz": 1.0}
    result = _two_afc_update(*features, **options)
    ref, every = result.radius_reference, result.radius_all
    naive_ref, naive_all = reference_radius(*phi, 1.0), all_images_radius(*phi, 1.0)
    decided = naive_ref > 0
    assert decided.sum() >= 10
    assert (ref[decided] < naive_ref[decided]).all()
    assert (every[decided] < naive_all[decided]).all()
    # long norms: larger than the naive formula (which is unsound for v/||v||, but the comparison shows the scale)
    features = _scaled_features(1, 10.0)
    phi = [normalize_embedding(f, "plain") for f in features]
    ref = _two_afc_update(*features, **options).radius_reference
    assert (ref[decided] > reference_radius(*phi, 1.0)[decided]).all()


def test_plain_map_interval_is_trivial_beyond_the_norm() -> None:
    features = _scaled_features(2, 0.4)
    shift = distance_shift(
        features[0], features[1], 0.5, perturbed="one", normalization="plain", certificate="norm_aware"
    )
    assert torch.isinf(shift).all()
    x, y = images(3, n=2), images(4, n=2)
    interval = certified_distance_interval(x, y, 1e6, weights="random:tiny32", normalization="plain")
    assert torch.equal(interval.lower, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(interval.upper, torch.full((2,), 2.0, dtype=torch.float64))


@pytest.mark.parametrize("normalization", ["augment", "ball"])
def test_norm_aware_shift_never_exceeds_the_plain_one(normalization: str) -> None:
    for norm in (0.1, 1.0, 30.0):
        features = _scaled_features(4, norm)
        for s in (0.01, 1.0, 100.0):
            kw = {"perturbed": "both", "normalization": normalization}
            aware = distance_shift(features[0], features[1], s, certificate="norm_aware", **kw)
            assert (aware <= distance_shift(features[0], features[1], s, certificate="plain", **kw)).all()


@pytest.mark.parametrize(
    ("normalization", "perturb"), [("augment", "reference"), ("plain", "reference"), ("plain", "all")]
)
def test_attacks_never_flip_inside_the_norm_aware_radius(normalization: str, perturb: str) -> None:
    net = tiny()
    ref, img0, img1, _ = triplets(11, n=6, noise=0.02)
    result = two_afc(ref, img0, img1, weights=net, normalization=normalization)
    radius = result.radius_reference if perturb == "reference" else result.radius_all
    assert (radius > 0).sum() >= 4
    eps = (radius * 0.999).float().clamp_min(1e-6)

    def distance(x: Tensor, y: Tensor) -> Tensor:
        return lipsim_distance(x, y, weights=net, normalization=normalization)

    attack = attack_2afc(distance, ref, img0, img1, eps=eps, perturb=perturb, steps=30, generator=0)
    assert not bool((attack.success & (radius > 0)).any())


def test_attack_check_is_not_vacuous() -> None:
    """Far outside the radius the same attack flips decisions, so the previous test could fail."""
    net = tiny()
    ref, img0, img1, _ = triplets(11, n=6, noise=0.02)
    result = two_afc(ref, img0, img1, weights=net, normalization="plain")

    def distance(x: Tensor, y: Tensor) -> Tensor:
        return lipsim_distance(x, y, weights=net, normalization="plain")

    eps = (result.radius_reference * 200).float().clamp(1e-3, 20.0)
    attack = attack_2afc(distance, ref, img0, img1, eps=eps, perturb="reference", steps=30, generator=0)
    assert bool(attack.success.any())


@pytest.mark.parametrize("normalization", ["augment", "ball"])
def test_default_certified_accuracy_never_below_plain(normalization: str) -> None:
    eps = (0.0, 0.05, 0.2, 1.0, 5.0)
    aware = Certified2AFCAccuracy("random:tiny32", epsilons=eps, normalization=normalization, per_sample=True)
    plain = Certified2AFCAccuracy(
        "random:tiny32", epsilons=eps, normalization=normalization, per_sample=True, certificate="plain"
    )
    for seed in (1, 2):
        batch = triplets(seed, n=8)
        aware.update(*batch)
        plain.update(*batch)
    a, p = aware.compute(), plain.compute()
    for key in a:
        if key.startswith("certified"):
            assert float(a[key]) >= float(p[key]), key
    assert (a["radius_reference"] >= p["radius_reference"]).all()
    assert (a["radius_all"] >= p["radius_all"]).all()
    assert any(float(a[k]) > float(p[k]) for k in a if k.startswith("certified")), "the default must gain somewhere"
    assert "certificate='norm_aware'" in repr(aware)
    assert "certificate='plain'" in repr(plain)


def test_metrics_match_the_functional_norm_aware_radii() -> None:
    ref, img0, img1, target = triplets(6, n=5)
    metric = Certified2AFCAccuracy("random:tiny32", epsilons=(0.1,), normalization="plain", per_sample=True)
    metric.update(ref, img0, img1, target)
    expected = two_afc(ref, img0, img1, weights="random:tiny32", normalization="plain")
    assert expected.certificate == "norm_aware"
    torch.testing.assert_close(metric.compute()["radius_reference"], expected.radius_reference.float())
    distance = LipSimDistance("random:tiny32", normalization="plain", certify_eps=0.01, reduction="none")
    distance.update(ref, img0)
    interval = certified_distance_interval(ref, img0, 0.01, weights="random:tiny32", normalization="plain")
    half = torch.maximum(interval.upper - interval.distance.double(), interval.distance.double() - interval.lower)
    torch.testing.assert_close(distance.compute()["half_width"], half.float())
    assert "certificate='norm_aware'" in repr(distance)


def test_distance_interval_holds_under_random_perturbations_for_plain_map() -> None:
    net = tiny()
    x, y = images(8, n=3), images(9, n=3)
    eps = 0.05
    interval = certified_distance_interval(x, y, eps, weights=net, normalization="plain")
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        delta = torch.randn(x.shape, generator=gen)
        delta = delta / delta.flatten(1).norm(dim=1)[:, None, None, None] * eps  # clamping only shortens it
        moved = lipsim_distance((x + delta).clamp(0, 1), y, weights=net, normalization="plain").double()
        assert (moved >= interval.lower - 1e-9).all()
        assert (moved <= interval.upper + 1e-9).all()
