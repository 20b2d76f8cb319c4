"""normalize_embedding and distance_from_embeddings against float64 closed forms."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm.functional import distance_from_embeddings, normalize_embedding


def _features(seed: int, n: int = 5, d: int = 7, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1e-3, 0.5, 1.0, 30.0]))
def test_normalizations_match_closed_forms(seed: int, scale: float) -> None:
    v = _features(seed, scale=scale)
    aug = torch.cat([v, torch.ones(5, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(normalize_embedding(v, "augment"), aug / aug.norm(dim=1, keepdim=True))
    torch.testing.assert_close(normalize_embedding(v), aug / aug.norm(dim=1, keepdim=True))
    norms = v.norm(dim=1, keepdim=True)
    torch.testing.assert_close(normalize_embedding(v, "ball"), v / torch.maximum(norms, torch.ones_like(norms)))
    torch.testing.assert_close(normalize_embedding(v, "plain"), v / norms)


@given(seed=st.integers(0, 10_000), normalization=st.sampled_from(["augment", "ball"]))
def test_sound_normalizations_are_1_lipschitz(seed: int, normalization: str) -> None:
    a, b = _features(seed, scale=0.3), _features(seed + 1, scale=0.3)
    moved = (normalize_embedding(a, normalization) - normalize_embedding(b, normalization)).norm(dim=1)
    assert (moved <= (a - b).norm(dim=1) * (1 + 1e-12)).all()


def test_plain_is_not_1_lipschitz_near_zero() -> None:
    a = torch.tensor([[1e-3, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 1e-3]], dtype=torch.float64)
    moved = (normalize_embedding(a, "plain") - normalize_embedding(b, "plain")).norm()
    assert moved > 100 * (a - b).norm()


@given(seed=st.integers(0, 10_000))
def test_cosine_is_one_minus_cos_on_the_sphere(seed: int) -> None:
    a = normalize_embedding(_features(seed), "augment")
    b = normalize_embedding(_features(seed + 7), "augment")
    torch.testing.assert_close(distance_from_embeddings(a, b), 1 - torch.nn.functional.cosine_similarity(a, b))
    torch.testing.assert_close(distance_from_embeddings(a, b, "l2"), (a - b).norm(dim=1))
    torch.testing.assert_close(distance_from_embeddings(a, b, "cosine"), (a - b).pow(2).sum(1) / 2)


def test_l2_gradient_is_finite_at_zero() -> None:
    a = torch.randn(3, 4, requires_grad=True)
    d = distance_from_embeddings(a, a.detach().clone(), "l2")
    assert d.abs().max() < 1e-18
    d.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_half_embeddings_give_float32_distances() -> None:
    a, b = torch.rand(2, 4).half(), torch.rand(2, 4).half()
    assert distance_from_embeddings(a, b).dtype == torch.float32
    assert distance_from_embeddings(a.bfloat16(), b.bfloat16(), "l2").dtype == torch.float32


def test_bad_inputs() -> None:
    v = torch.rand(2, 3)
    with pytest.raises(ValueError, match="normalization must be one of"):
        normalize_embedding(v, "unit")
    with pytest.raises(ValueError, match=r"features must have shape \(N, D\)"):
        normalize_embedding(v[0])
    with pytest.raises(TypeError, match="features must be a floating-point"):
        normalize_embedding(v.long())
    with pytest.raises(TypeError, match=r"features must be a torch\.Tensor"):
        normalize_embedding([[1.0]])
    with pytest.raises(ValueError, match="distance must be one of"):
        distance_from_embeddings(v, v, "cos")
    with pytest.raises(ValueError, match="phi_a and phi_b must have the same shape"):
        distance_from_embeddings(v, torch.rand(3, 3))
    with pytest.raises(ValueError, match=r"phi_b must have shape \(N, D\)"):
        distance_from_embeddings(v, v[0])
    with pytest.raises(TypeError, match="phi_a must be a floating-point"):
        distance_from_embeddings(v.int(), v)


def test_functional_calls_validate_their_options_before_running_the_network() -> None:
    from lipsim_tm.functional import lipsim_distance, lipsim_embedding

    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="normalization must be one of"):
        lipsim_embedding(x, weights="random:tiny32", normalization="l2")
    with pytest.raises(ValueError, match="normalization must be one of"):
        lipsim_distance(x, x, weights="random:tiny32", normalization="unit")
    with pytest.raises(ValueError, match="reduction must be one of"):
        lipsim_distance(x, x, weights="random:tiny32", reduction="avg")
