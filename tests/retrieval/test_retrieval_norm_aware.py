"""Norm-aware retrieval radii: never below the plain ones, far larger for long embeddings, and never broken."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm import LipSimBackbone
from lipsim_tm.attacks.apgd import apgd
from lipsim_tm.functional.certificates.norm_aware import normalization_shift
from lipsim_tm.retrieval import Embedder, EmbeddingGallery
from retrieval_helpers import TopOneChange

SCALE = 40.0  # long embeddings: the regime where the normalisation shrinks moves the most


pytestmark = pytest.mark.usefixtures("single_thread")


def _scaled_embedder(normalization: str = "augment") -> Embedder:
    backbone = LipSimBackbone("tiny32").eval().requires_grad_(False)
    return Embedder(lambda x: SCALE * backbone(x), normalization, lipschitz_bound=SCALE)


def _setup(normalization: str = "augment", queries: int = 6):
    g = torch.Generator().manual_seed(3)
    images = torch.rand(12, 3, 32, 32, generator=g)
    embedder = _scaled_embedder(normalization)
    gallery = EmbeddingGallery.build(embedder, images, batch_size=6)
    query_images = (images[:queries] + 0.2 * torch.randn(queries, 3, 32, 32, generator=g)).clamp(0, 1)
    return embedder, gallery, query_images


@pytest.mark.parametrize("normalization", ["augment", "ball"])
def test_norm_aware_radii_are_never_smaller_and_satisfy_their_condition(normalization: str) -> None:
    embedder, gallery, queries = _setup(normalization)
    aware = gallery.search_images(embedder, queries, k=3)
    plain = gallery.search_images(embedder, queries, k=3, certificate="plain")
    assert (aware.certificate, plain.certificate) == ("norm_aware", "plain")
    assert torch.equal(aware.indices, plain.indices)
    assert (aware.radius_top1 >= plain.radius_top1).all()
    assert (aware.radius_topk >= plain.radius_topk).all()
    assert (aware.radius_top1 > 2 * plain.radius_top1).any()  # long embeddings: much larger radii
    # The query's normalised embedding moves by at most B(L R, n, 1) < the embedding-space radius.
    _, norms = embedder.embed_batches(queries, with_norms=True)
    moved = normalization_shift(SCALE * aware.radius_top1, norms, 1.0)
    assert (moved < aware.embedding_radius_top1).all()
    assert (normalization_shift(SCALE * aware.radius_top1 * 1.001, norms, 1.0) > aware.embedding_radius_top1).any()


def test_attacks_within_the_norm_aware_radius_never_change_the_top1() -> None:
    embedder, gallery, queries = _setup()
    result = gallery.search_images(embedder, queries, k=1)
    radius = result.radius_top1
    assert (radius > 0).all()
    objective = TopOneChange(embedder, gallery.embeddings, queries)
    attacked = apgd(objective, (queries,), (True,), eps=radius * (1 - 1e-6), steps=20, restarts=2)
    assert not attacked.success.any()
    assert (attacked.objective > attacked.clean_objective).all()  # it pushed towards a change
    # Tight: 1.5x the radius (here ~670x the plain radius) lets the same attack change every top-1.
    assert apgd(objective, (queries,), (True,), eps=radius * 1.5, steps=20, restarts=2).success.all()


def test_bad_norm_aware_input() -> None:
    embedder, gallery, queries = _setup(queries=2)
    embeddings, norms = embedder.embed_batches(queries, with_norms=True)
    with pytest.raises(ValueError, match=r"query_norms must have shape \(2,\), got \(3,\)"):
        gallery.search(embeddings, query_norms=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="query_norms must be finite effective norms >= 1"):
        gallery.search(embeddings, query_norms=torch.full((2,), 0.5, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"query_norms must be a torch\.Tensor, got list"):
        gallery.search(embeddings, query_norms=[1.0, 2.0])
    unnormalised = EmbeddingGallery(gallery.embeddings, lipschitz_bound=SCALE)
    with pytest.raises(ValueError, match="query_norms need the gallery's normalization"):
        unnormalised.search(embeddings, query_norms=norms)
    with pytest.raises(ValueError, match="with_norms needs the embedder's normalization"):
        Embedder(lambda x: x.flatten(1), None).embed_batches(queries, with_norms=True)
    with pytest.raises(ValueError, match="certificate must be one of"):
        gallery.search_images(embedder, queries, certificate="tight")
    one_item = EmbeddingGallery(gallery.embeddings[:1], lipschitz_bound=SCALE, normalization="augment")
    assert torch.isinf(one_item.search(embeddings, query_norms=norms).radius_top1).all()
