"""Gallery building in batches, atomic save and strict load, and bad input."""

from __future__ import annotations

import pytest
import torch

from lipsim_tm import LipSimBackbone
from lipsim_tm.functional.normalization import normalize_embedding
from lipsim_tm.retrieval import Embedder, EmbeddingGallery
from lipsim_tm.retrieval.certify import PreparedGallery
from lipsim_tm.retrieval.gallery import FORMAT
from retrieval_helpers import nearest_certified

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return LipSimBackbone("tiny32").eval().requires_grad_(False)


@pytest.mark.parametrize("normalization", ["augment", "ball"])
def test_build_in_batches_equals_one_pass(backbone, normalization):
    images = torch.rand(7, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    embedder = Embedder(backbone, normalization)
    gallery = EmbeddingGallery.build(embedder, images, batch_size=3)
    with torch.no_grad():
        expected = normalize_embedding(backbone(images), normalization)
    torch.testing.assert_close(gallery.embeddings, expected, rtol=1e-5, atol=1e-6)
    assert len(gallery) == 7
    assert gallery.lipschitz_bound == backbone.lipschitz_bound
    assert gallery.normalization == normalization
    from_batches = EmbeddingGallery.build(embedder, [images[:4], images[4:]])
    torch.testing.assert_close(from_batches.embeddings, gallery.embeddings, rtol=1e-5, atol=1e-6)


def test_image_space_radius_divides_by_the_lipschitz_bound():
    gallery_vectors = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    queries = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    found = nearest_certified(queries, gallery_vectors, 2)
    result = EmbeddingGallery(gallery_vectors, lipschitz_bound=2.5).search(queries, k=2)
    assert torch.equal(result.indices, found.indices)
    torch.testing.assert_close(result.radius_top1, found.radius_top1 / 2.5)
    torch.testing.assert_close(result.radius_topk, found.radius_topk / 2.5)
    assert (result.radius_top1 <= found.radius_top1 / 2.5).all()
    unbounded = EmbeddingGallery(gallery_vectors).search(queries)
    assert unbounded.radius_top1 is None
    assert unbounded.radius_topk is None


def test_save_load_round_trip_is_exact_and_atomic(tmp_path, backbone):
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    gallery = EmbeddingGallery.build(Embedder(backbone), images)
    path = tmp_path / "gallery.pt"
    gallery.save(path)
    gallery.save(path)  # overwriting is fine
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.pt"]  # no temporary file left behind
    loaded = EmbeddingGallery.load(path)
    assert torch.equal(loaded.embeddings, gallery.embeddings)
    assert loaded.lipschitz_bound == gallery.lipschitz_bound
    assert loaded.normalization == "augment"
    query = gallery.embeddings[:2]
    assert torch.equal(loaded.search(query, 3).radius_topk, gallery.search(query, 3).radius_topk)


def _payload(**changes):
    payload = {
        "format": FORMAT,
        "version": 1,  # the version-1 layout (no labels, no source)
        "embeddings": torch.eye(3),
        "lipschitz_bound": 1.0,
        "normalization": "augment",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not ...}


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        (_payload(extra=1), ValueError, "expected keys"),
        (_payload(normalization=...), ValueError, "expected keys"),
        (_payload(format="other"), ValueError, "expected format"),
        (_payload(version=3), ValueError, "version 3"),
        (_payload(version=2), ValueError, "expected keys"),  # version 2 has labels and source
        (_payload(embeddings=torch.tensor([[float("nan")]])), ValueError, "embeddings must be finite"),
        (_payload(embeddings=torch.ones(3)), ValueError, r"embeddings must have shape \(N, D\)"),
        (_payload(lipschitz_bound=-1.0), ValueError, "lipschitz_bound must be a finite number > 0"),
        (_payload(normalization="plain"), ValueError, "normalization must be one of"),
        ([1, 2], ValueError, "not a gallery file"),
    ],
)
def test_load_is_strict(tmp_path, payload, error, match):
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(error, match=match):
        EmbeddingGallery.load(path)


def test_load_refuses_a_non_torch_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"cannot read gallery .*junk\.pt.*corrupted, truncated or not a PyTorch"):
        EmbeddingGallery.load(path)
    with pytest.raises(FileNotFoundError):
        EmbeddingGallery.load(tmp_path / "missing.pt")


def test_bad_input(backbone):
    gallery = EmbeddingGallery(torch.eye(4), lipschitz_bound=1.0)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 4\]"):
        gallery.search(torch.ones(1, 4), k=5)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 4\]"):
        gallery.search(torch.ones(1, 4), k=0)
    with pytest.raises(ValueError, match="queries have dimension 3 but the gallery has dimension 4"):
        gallery.search(torch.ones(2, 3))
    with pytest.raises(ValueError, match="queries are on meta but the gallery is on cpu"):
        PreparedGallery(torch.eye(4)).search(torch.ones(1, 4, device="meta"))
    with pytest.raises(ValueError, match="gallery must be finite"):
        nearest_certified(torch.ones(1, 2), torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="queries must be finite"):
        gallery.search(torch.full((1, 4), float("inf")))
    with pytest.raises(TypeError, match="queries must be a floating-point tensor"):
        gallery.search(torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="certified retrieval needs a 1-Lipschitz normalization"):
        Embedder(backbone, "plain")
    with pytest.raises(ValueError, match="normalization must be one of"):
        Embedder(backbone, "unit")
    with pytest.raises(TypeError, match="embed must be callable"):
        Embedder("lipsim")
    with pytest.raises(ValueError, match="lipschitz_bound must be a finite number > 0"):
        Embedder(backbone, lipschitz_bound=0.0)
    embedder = Embedder(backbone)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        embedder.embed_batches(torch.rand(2, 3, 32, 32), batch_size=0)
    with pytest.raises(TypeError, match=r"image batch 0 must be a torch\.Tensor"):
        embedder.embed_batches([[0.0]])
    with pytest.raises(ValueError, match="images must hold at least one image"):
        embedder.embed_batches([])
    with pytest.raises(ValueError, match=r"embed must return a tensor of shape \(2, D\)"):
        Embedder(lambda x: x.sum(), None)(torch.ones(2, 3))
    with pytest.raises(ValueError, match="does not match the gallery"):
        EmbeddingGallery(torch.eye(4), lipschitz_bound=2.0).search_images(embedder, torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError, match=r"embedder must be a lipsim_tm\.retrieval\.Embedder"):
        EmbeddingGallery.build(backbone, torch.rand(1, 3, 32, 32))


def test_a_version_1_file_still_loads_and_labels_round_trip(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save(_payload(), path)
    old = EmbeddingGallery.load(path)
    assert old.labels is None
    assert old.source is None
    labelled = EmbeddingGallery(old.embeddings, labels=[f"img{i}" for i in range(len(old))], source={"weights": "w"})
    labelled.save(tmp_path / "v2.pt")
    again = EmbeddingGallery.load(tmp_path / "v2.pt")
    assert again.labels == labelled.labels
    assert again.source == {"weights": "w"}
    with pytest.raises(ValueError, match="labels must be a list of"):
        EmbeddingGallery(old.embeddings, labels=["just one"] * (len(old) + 1))


def test_a_backbone_embedder_takes_any_size_and_checks_the_range():
    from lipsim_tm.functional import lipsim_embedding
    from lipsim_tm.functional.embedding import lipschitz_constant, preprocessing_for

    backbone = LipSimBackbone("tiny32").eval().requires_grad_(False)
    embedder = Embedder(backbone)
    images = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(embedder(images), lipsim_embedding(images, weights=backbone))
    assert embedder.image_lipschitz(images) == pytest.approx(
        lipschitz_constant(backbone, preprocessing_for(backbone), images)
    )
    assert embedder.image_lipschitz(torch.rand(1, 3, 32, 32)) == backbone.lipschitz_bound
    with pytest.raises(ValueError, match=r"images values must lie in \[0, 1\]"):
        embedder(images * 255)
    gallery = EmbeddingGallery.build(embedder, torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    found = gallery.search_images(embedder, images, k=2, certificate="plain")
    plain = gallery.search(embedder(images), k=2)
    torch.testing.assert_close(
        found.radius_top1, plain.embedding_radius_top1 / embedder.image_lipschitz(images) * (1 - 1e-12)
    )
