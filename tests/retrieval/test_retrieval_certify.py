"""Certified radii of retrieval against independent computations: brute-force hyperplanes, exact rationals, attacks."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm import LipSimBackbone
from lipsim_tm.attacks.apgd import apgd
from lipsim_tm.retrieval import Embedder, EmbeddingGallery
from retrieval_helpers import TopOneChange, nearest_certified

pytestmark = pytest.mark.usefixtures("single_thread")


def _unit(rows: int, dims: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    v = torch.randn(rows, dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (v / v.norm(dim=1, keepdim=True)).to(dtype)


def _hyperplane_distance(q, a, b):
    """Distance from q to the bisecting hyperplane {p : ||p - a|| = ||p - b||}: |n.q - c| / |n|, n = b - a."""
    n = b - a
    c = (b.dot(b) - a.dot(a)) / 2
    return (n.dot(q) - c).abs() / n.norm()


def _brute_force(q, gallery, k):
    """Top-k by explicit per-item distances, radii by explicit loops over the separating hyperplanes."""
    d = torch.stack([(q - g).pow(2).sum() / 2 for g in gallery])
    order = sorted(range(len(gallery)), key=lambda j: d[j].item())
    members = order[:k]
    top1 = min(_hyperplane_distance(q, gallery[order[0]], gallery[j]) for j in order[1:])
    topk = min(
        (_hyperplane_distance(q, gallery[i], gallery[j]) for i in members for j in order[k:]),
        default=torch.tensor(torch.inf, dtype=torch.float64),
    )
    return members, d[members], top1, topk


@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(2, 12),
    dims=st.integers(2, 9),
    k=st.integers(1, 12),
    sphere=st.booleans(),
)
def test_radii_equal_a_brute_force_float64_computation(seed, rows, dims, k, sphere):
    k = min(k, rows)
    gallery = _unit(rows, dims, seed)
    queries = _unit(5, dims, seed + 1)
    if not sphere:  # any vectors work (e.g. the unit-ball projection): scale inside the ball
        scales = torch.rand(rows + 5, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        gallery, queries = gallery * scales[:rows], queries * scales[rows:]
    found = nearest_certified(queries, gallery, k, chunk_elements=7)  # several chunks
    for b, q in enumerate(queries):
        members, distances, top1, topk = _brute_force(q, gallery, k)
        assert found.indices[b].tolist() == members
        torch.testing.assert_close(found.distances[b], distances, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(found.radius_top1[b], top1, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(found.radius_topk[b], topk, rtol=1e-9, atol=1e-12)
        assert found.radius_top1[b] <= top1  # conservative
        assert found.radius_topk[b] <= topk


@given(seed=st.integers(0, 10_000), rows=st.integers(2, 6), dims=st.integers(2, 4))
def test_radii_never_exceed_the_exact_rational_value(seed, rows, dims):
    gallery = _unit(rows, dims, seed, torch.float32)
    queries = _unit(3, dims, seed + 1, torch.float32)
    found = nearest_certified(queries, gallery, 1)
    exact_g = [[Fraction(v) for v in row] for row in gallery.double().tolist()]
    for b, row in enumerate(queries.double().tolist()):
        q = [Fraction(v) for v in row]
        d = [sum((qi - gi) ** 2 for qi, gi in zip(q, g, strict=True)) / 2 for g in exact_g]
        i = found.indices[b, 0].item()
        assert all(d[i] <= dj for dj in d)
        squared = [
            (d[j] - d[i]) ** 2 / sum((a - c) ** 2 for a, c in zip(exact_g[i], exact_g[j], strict=True))
            for j in range(rows)
            if j != i
        ]
        reported = Fraction(found.radius_top1[b].item())
        assert reported**2 <= min(squared)


def test_radius_is_tight_in_embedding_space():
    gallery, queries = _unit(10, 5, 3), _unit(6, 5, 4)
    found = nearest_certified(queries, gallery, 1)
    for b, q in enumerate(queries):
        i = found.indices[b, 0]
        j = min((j for j in range(10) if j != i), key=lambda j: _hyperplane_distance(q, gallery[i], gallery[j]))
        n = gallery[j] - gallery[i]
        towards = n / n.norm()  # moving along n brings q closer to g_j than to g_i
        r = found.radius_top1[b]
        inside = nearest_certified((q + r * (1 - 1e-6) * towards)[None], gallery, 1).indices[0, 0]
        beyond = nearest_certified((q + r * (1 + 1e-6) * towards)[None], gallery, 1).indices[0, 0]
        assert inside == i
        assert beyond != i


def test_ties_duplicates_and_degenerate_sizes():
    gallery = _unit(4, 3, 5)
    query = gallery[1:2] * 0.9
    duplicated = torch.cat([gallery, gallery[1:2]])
    assert nearest_certified(query, duplicated, 1).radius_top1.item() == 0.0
    assert nearest_certified(query, gallery, 1).radius_top1.item() > 0.0
    assert nearest_certified(query, gallery, 4).radius_topk.item() == torch.inf  # the whole gallery never changes
    assert nearest_certified(query, gallery[:1], 1).radius_top1.item() == torch.inf


def test_attacks_within_the_radius_never_change_the_top1():
    torch.manual_seed(0)
    embedder = Embedder(LipSimBackbone("tiny32").eval().requires_grad_(False), "augment")
    assert embedder.lipschitz_bound == 1.0
    g = torch.Generator().manual_seed(0)
    images = torch.rand(12, 3, 32, 32, generator=g)
    gallery = EmbeddingGallery.build(embedder, images, batch_size=5)
    queries = (images[:6] + 0.3 * torch.randn(6, 3, 32, 32, generator=g)).clamp(0, 1)
    result = gallery.search_images(embedder, queries, k=3)
    radius = result.radius_top1
    assert (radius > 0).all()
    assert (result.radius_topk <= radius).all()
    objective = TopOneChange(embedder, gallery.embeddings, queries)
    assert torch.equal(objective.top1, result.indices[:, 0])
    attacked = apgd(objective, (queries,), (True,), eps=radius * (1 - 1e-6), steps=15, restarts=2)
    assert not attacked.success.any()
    assert (attacked.objective > attacked.clean_objective).all()  # it pushed towards a change
    with torch.no_grad():
        moved = gallery.search(embedder(attacked.images[0]), k=1).indices[:, 0]
    assert torch.equal(moved, result.indices[:, 0])
    # With 60x the radius the same attack changes every top-1 (random-init certificates are loose, not vacuous).
    assert apgd(objective, (queries,), (True,), eps=radius * 60, steps=15).success.all()
