"""Certified radii and intervals: float64 references, the end-to-end Lipschitz bound and PGD attacks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm.functional import certified_distance_interval, normalize_embedding, two_afc
from lipsim_tm.functional.certificates.intervals import distance_interval
from lipsim_tm.functional.certificates.policy import RELATIVE_SLACK, embedding_slack
from lipsim_tm.functional.embedding import preprocessing_for
from metrics_helpers import (
    all_images_radius,
    dense_resize_norm,
    embed,
    images,
    pgd_l2,
    reference_phi,
    reference_radius,
    tiny,
    triplets,
)


def _unit(seed: int, n: int = 8, d: int = 6, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    v = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return normalize_embedding(v, "augment").to(dtype)


@given(seed=st.integers(0, 100_000), lipschitz=st.sampled_from([0.5, 1.0, 3.7]), dtype=st.sampled_from(["64", "32"]))
def test_reference_radius_is_the_distance_to_the_bisecting_hyperplane(seed: int, lipschitz: float, dtype: str) -> None:
    dt = torch.float64 if dtype == "64" else torch.float32
    r, p0, p1 = _unit(seed, dtype=dt), _unit(seed + 1, dtype=dt), _unit(seed + 2, dtype=dt)
    r64, a, b = r.double(), p0.double(), p1.double()
    normal = b - a
    offset = (b.pow(2).sum(1) - a.pow(2).sum(1)) / 2
    hyperplane = ((r64 * normal).sum(1) - offset).abs() / normal.norm(dim=1)
    expected = hyperplane / lipschitz
    got = reference_radius(r, p0, p1, lipschitz)
    slack = embedding_slack(dt) / lipschitz
    assert (got <= expected).all()
    assert (got >= (expected - slack) * (1 - RELATIVE_SLACK) - 1e-13).all()  # float64 arithmetic
    # projecting r onto the hyperplane makes a tie: the radius is exactly the distance needed
    moved = r64 - ((r64 * normal).sum(1) - offset)[:, None] * normal / normal.pow(2).sum(1, keepdim=True)
    torch.testing.assert_close((moved - a).norm(dim=1), (moved - b).norm(dim=1))


@given(seed=st.integers(0, 100_000), lipschitz=st.sampled_from([0.5, 1.0, 3.7]))
def test_all_images_radius_closed_form_and_tightness(seed: int, lipschitz: float) -> None:
    r, p0, p1 = _unit(seed), _unit(seed + 1), _unit(seed + 2)
    u0, u1 = (r - p0).norm(dim=1), (r - p1).norm(dim=1)
    got = all_images_radius(r, p0, p1, lipschitz)
    expected = (u0 - u1).abs() / (4 * lipschitz)
    assert (got <= expected).all()
    assert (got >= (expected - embedding_slack(torch.float64) / (4 * lipschitz)) * (1 - 1e-6) - 1e-15).all()
    assert (reference_radius(r, p0, p1, lipschitz) >= 2 * got * (1 - 1e-6)).all()


def test_all_images_radius_is_tight_on_a_line() -> None:
    # p0 = 0, r = 1, p1 = 3 on a line: u0 = 1, u1 = 2, R = 1/4. r and p1 moving toward each other by 0.25,
    # p0 away by 0.25, makes a tie: the radius cannot be larger.
    e = torch.zeros(1, 3, dtype=torch.float64)
    e[0, 0] = 1.0
    p0, r, p1 = 0 * e, 1 * e, 3 * e
    radius = float(all_images_radius(r, p0, p1, 1.0))
    assert radius == pytest.approx(0.25, rel=2e-6)
    assert radius < 0.25
    r2, p02, p12 = r + 0.25 * e, p0 - 0.25 * e, p1 - 0.25 * e
    assert float((r2 - p02).norm()) == pytest.approx(float((r2 - p12).norm()))


def test_ties_and_identical_candidates_get_zero_radius() -> None:
    r, p = _unit(0, n=3), _unit(1, n=3)
    assert (reference_radius(r, p, p, 1.0) == 0).all()
    assert (all_images_radius(r, p, p, 1.0) == 0).all()
    result = two_afc(*(images(0, n=2),) * 3, weights="random:tiny32")
    assert result.tie.all()
    assert (result.radius_reference == 0).all()
    assert (result.radius_all == 0).all()


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize(("size", "normalization"), [((32, 32), "augment"), ((12, 20), "ball"), ((45, 37), "augment")])
def test_two_afc_radius_equals_float64_recomputation(distance: str, size: tuple[int, int], normalization: str) -> None:
    ref, img0, img1, _ = triplets(3, n=5, size=size)
    net64 = tiny(dtype=torch.float64)
    result = two_afc(
        ref, img0, img1, weights=net64, distance=distance, normalization=normalization, certificate="plain"
    )
    phi = [reference_phi(tiny(), t, 32, normalization) for t in (ref, img0, img1)]
    u0, u1 = (phi[0] - phi[1]).norm(dim=1), (phi[0] - phi[2]).norm(dim=1)
    lipschitz = dense_resize_norm(*size, 32)
    expected_ref = (u0.pow(2) - u1.pow(2)).abs() / (2 * (phi[1] - phi[2]).norm(dim=1)) / lipschitz
    expected_all = (u0 - u1).abs() / (4 * lipschitz)
    torch.testing.assert_close(result.radius_reference, expected_ref, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(result.radius_all, expected_all, rtol=1e-6, atol=1e-9)
    assert torch.equal(result.prefers_img1, u1 < u0)
    d = (lambda u: u.pow(2) / 2) if distance == "cosine" else (lambda u: u)
    torch.testing.assert_close(result.d0, d(u0))
    torch.testing.assert_close(result.d1, d(u1))
    if distance == "cosine" and normalization == "augment":  # LipSim's formula |d0 - d1| / ||phi0 - phi1||
        lipsim = (result.d0 - result.d1).abs() / (phi[1] - phi[2]).norm(dim=1) / lipschitz
        torch.testing.assert_close(result.radius_reference, lipsim, rtol=1e-6, atol=1e-9)


@given(
    seed=st.integers(0, 10_000),
    size=st.sampled_from([(32, 32), (16, 16), (40, 24), (9, 50)]),
    data_range=st.sampled_from([1.0, 255.0, (-1.0, 1.0)]),
    grayscale=st.booleans(),
    normalization=st.sampled_from(["augment", "ball"]),
)
def test_embedding_is_l_lipschitz_from_user_pixels(
    seed: int, size: tuple[int, int], data_range: object, grayscale: bool, normalization: str
) -> None:
    net = tiny(dtype=torch.float64)
    prep = preprocessing_for(net, data_range=data_range, grayscale=grayscale)
    x = images(seed, n=3, size=size, channels=1 if grayscale else 3).double()
    # worst-case-ish direction: the top singular vector pattern is smooth; use a mix of smooth and random
    direction = torch.randn_like(x) + torch.ones_like(x)
    y = x + 1e-2 * direction / direction.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
    phi_x = embed(net, x, prep, torch.float64, normalization)
    phi_y = embed(net, y, prep, torch.float64, normalization)
    from lipsim_tm.functional.preprocessing import input_operator_norm

    lipschitz = net.lipschitz_bound * input_operator_norm(prep, x)
    assert ((phi_x - phi_y).norm(dim=1) <= lipschitz * (x - y).flatten(1).norm(dim=1) * (1 + 1e-9)).all()


def _margin_objective(net, prep, img0, img1, prefers):
    phi0 = embed(net, img0, prep, torch.float32, "augment").detach()
    phi1 = embed(net, img1, prep, torch.float32, "augment").detach()
    sign = torch.where(prefers, 1.0, -1.0)

    def objective(ref: torch.Tensor) -> torch.Tensor:
        phi = embed(net, ref, prep, torch.float32, "augment")
        # > 0 means the decision flipped
        return sign * ((phi - phi1).pow(2).sum(1) - (phi - phi0).pow(2).sum(1))

    return objective


@pytest.mark.parametrize("seed", [0, 1])
def test_pgd_on_the_reference_within_the_radius_never_flips(seed: int) -> None:
    net = tiny()
    prep = preprocessing_for(net)
    ref, img0, img1, _ = triplets(seed, n=8, size=(24, 40), noise=0.02)
    result = two_afc(ref, img0, img1, weights=net)
    assert (result.radius_reference > 0).all()
    objective = _margin_objective(net, prep, img0, img1, result.prefers_img1)
    attacked = pgd_l2(objective, ref, result.radius_reference.float(), steps=25)
    assert (objective(attacked) < 0).all(), "a perturbation within the certified radius flipped a decision"
    # sanity: the attack is real, it moves the margin toward a flip
    assert (objective(attacked) > objective(ref)).all()


def test_pgd_on_all_three_images_within_the_radius_never_flips() -> None:
    net = tiny()
    prep = preprocessing_for(net)
    ref, img0, img1, _ = triplets(5, n=8, noise=0.02)
    result = two_afc(ref, img0, img1, weights=net)
    eps = result.radius_all.float().reshape(-1, 1, 1, 1)
    sign = torch.where(result.prefers_img1, 1.0, -1.0)
    joint = torch.cat([ref, img0, img1], 1)

    def objective(z: torch.Tensor) -> torch.Tensor:
        r, a, b = (embed(net, part, prep, torch.float32, "augment") for part in z.split(3, dim=1))
        return sign * ((r - b).norm(dim=1) - (r - a).norm(dim=1))

    # per-image budgets: attack each third with its own projection
    delta = torch.zeros_like(joint)
    for _ in range(25):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(joint + delta).sum(), delta)
        parts = []
        for g, d in zip(grad.split(3, 1), delta.detach().split(3, 1), strict=True):
            d = d + 0.1 * eps * g / g.flatten(1).norm(dim=1).clamp_min(1e-20).reshape(-1, 1, 1, 1)
            parts.append(d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-20).reshape(-1, 1, 1, 1)).clamp(max=1))
        delta = torch.cat(parts, 1)
    assert (objective(joint + delta) < 0).all()


@pytest.mark.parametrize(("distance", "normalization"), [("cosine", "augment"), ("l2", "augment"), ("cosine", "ball")])
def test_certified_interval_contains_attacked_distances(distance: str, normalization: str) -> None:
    net = tiny()
    prep = preprocessing_for(net)
    x, y = images(1, n=4, size=(20, 28)), images(2, n=4, size=(20, 28))
    eps = 0.5
    interval = certified_distance_interval(x, y, eps, weights=net, distance=distance, normalization=normalization)
    assert (interval.lower <= interval.distance.double()).all()
    assert (interval.distance.double() <= interval.upper).all()
    phi_y = embed(net, y, prep, torch.float32, normalization).detach()

    def d(z: torch.Tensor) -> torch.Tensor:
        phi = embed(net, z, prep, torch.float32, normalization)
        u2 = (phi - phi_y).pow(2).sum(1)
        return u2 / 2 if distance == "cosine" else u2.sqrt()

    for sign in (1.0, -1.0):
        attacked = pgd_l2(lambda z, s=sign: s * d(z), x, torch.full((4,), eps), steps=15)
        value = d(attacked).double()
        assert (interval.lower <= value).all()
        assert (value <= interval.upper).all()


def test_interval_closed_forms() -> None:
    a, b = _unit(10), _unit(11)
    u = (a - b).norm(dim=1)
    slack = embedding_slack(torch.float64)
    lo, hi = distance_interval(a, b, shift=0.1, distance="l2", normalization="augment")
    torch.testing.assert_close(lo, (u - 0.1 - slack).clamp_min(0))
    torch.testing.assert_close(hi, (u + 0.1 + slack).clamp_max(2))
    lo, hi = distance_interval(a, b, shift=0.1, distance="cosine", normalization="augment")
    d, t = u.pow(2) / 2, 0.1 + slack
    torch.testing.assert_close(lo, torch.maximum((u - t).clamp_min(0).pow(2) / 2, d - t))
    torch.testing.assert_close(hi, torch.minimum((u + t).clamp_max(2).pow(2) / 2, d + t))


def test_interval_scales_with_perturbed_images() -> None:
    x, y = images(3, n=2), images(4, n=2)
    kw = {"weights": "random:tiny32", "distance": "l2", "certificate": "plain"}
    one = certified_distance_interval(x, y, 0.1, **kw)
    both = certified_distance_interval(x, y, 0.1, perturbed="both", **kw)
    torch.testing.assert_close(both.upper - one.upper, one.upper - one.distance.double(), atol=1e-6, rtol=1e-3)


def test_plain_normalization_is_refused_by_the_plain_certificate() -> None:
    x = images(0, n=1)
    with pytest.raises(ValueError, match=r"certificate='plain' needs a 1-Lipschitz normalization"):
        two_afc(x, x, x, weights="random:tiny32", normalization="plain", certificate="plain")
    with pytest.raises(ValueError, match=r"certificate='plain' needs a 1-Lipschitz normalization"):
        certified_distance_interval(x, x, 0.1, weights="random:tiny32", normalization="plain", certificate="plain")
    with pytest.raises(ValueError, match="certificate must be one of"):
        two_afc(x, x, x, weights="random:tiny32", certificate="tight")
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        certified_distance_interval(x, x, -1.0, weights="random:tiny32")
    with pytest.raises(ValueError, match="perturbed must be one of"):
        certified_distance_interval(x, x, 0.1, weights="random:tiny32", perturbed="all")


def test_radii_are_in_user_pixel_units() -> None:
    ref, img0, img1, _ = triplets(7, n=3)
    unit = two_afc(ref, img0, img1, weights="random:tiny32")
    wide = two_afc(ref * 255, img0 * 255, img1 * 255, weights="random:tiny32", data_range=255.0)
    torch.testing.assert_close(wide.radius_reference, unit.radius_reference * 255, rtol=1e-4, atol=1e-6)
    signed = two_afc(ref * 2 - 1, img0 * 2 - 1, img1 * 2 - 1, weights="random:tiny32", data_range=(-1.0, 1.0))
    torch.testing.assert_close(signed.radius_all, unit.radius_all * 2, rtol=1e-4, atol=1e-6)
