"""``lipsim retrieve index|query``: a folder of photos of mixed sizes and modes against brute force, radii in
each query's own pixels, refusals of mismatched weights and bad arguments."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import WEIGHTS, photo_array, pil_tensor, run_cli
from PIL import Image

from lipsim_tm.functional import lipsim_embedding
from lipsim_tm.functional.embedding import lipschitz_constant, preprocessing_for
from lipsim_tm.models.weights import resolve_backbone
from lipsim_tm.retrieval import EmbeddingGallery
from retrieval_helpers import nearest_certified

SIZES = [(60, 80), (100, 90), (40, 40), (120, 160), (32, 32)]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    names = []
    for i, (h, w) in enumerate(SIZES):
        name = f"{'sub/' if i % 2 else ''}p{i}.png"
        Image.fromarray(photo_array(i, h, w)).save(folder / name)
        names.append(name)
    Image.fromarray(photo_array(9, 48, 36, channels=1)).save(folder / "grey.png")
    return folder, [*names, "grey.png"]


def _phi(path) -> torch.Tensor:
    image = pil_tensor(path, "L" if path.name == "grey.png" else "RGB")
    return lipsim_embedding(image, weights=WEIGHTS, grayscale=image.shape[1] == 1).double()


def test_index_and_query_match_brute_force_with_radii_in_the_querys_pixels(photos, tmp_path, capsys):
    folder, names = photos
    gallery_path = tmp_path / "g.pt"
    code, out, err = run_cli(
        ["retrieve", "index", str(folder), "--out", str(gallery_path), "--weights", WEIGHTS], capsys
    )
    assert code == 0, err
    assert f"indexed {len(names)} images" in out
    gallery = EmbeddingGallery.load(gallery_path)
    assert sorted(gallery.labels) == sorted(names)
    assert gallery.source["weights"] == WEIGHTS
    expected = torch.cat([_phi(folder / label) for label in gallery.labels])
    torch.testing.assert_close(gallery.embeddings.double(), expected, rtol=1e-5, atol=1e-6)
    query = folder / "sub/p1.png"
    report = tmp_path / "q.json"
    for certificate in ("plain", "norm_aware"):
        argv = ["retrieve", "query", str(gallery_path), str(query), "--k", "3", "--certificate", certificate]
        code, out, err = run_cli([*argv, "--out", str(report)], capsys)
        assert code == 0, err
        [result] = json.loads(report.read_text())["results"]
        assert result["neighbours"][0]["image"] == "sub/p1.png"  # itself
        assert result["neighbours"][0]["distance"] == pytest.approx(0.0, abs=1e-6)
        truth = nearest_certified(_phi(query), expected, 3)
        assert [n["image"] for n in result["neighbours"]] == [gallery.labels[int(i)] for i in truth.indices[0]]
        backbone = resolve_backbone(WEIGHTS)
        image = pil_tensor(query)
        lipschitz = lipschitz_constant(backbone, preprocessing_for(backbone), image)  # 90x100 -> 32x32 resize
        plain = float(truth.radius_top1[0]) / lipschitz
        if certificate == "plain":
            assert result["radius_top1"] == pytest.approx(plain, rel=1e-4)
        else:
            assert result["radius_top1"] >= plain * (1 - 1e-4)
        assert result["certificate"] == certificate
        assert "certified l2 radius in the query's [0, 1] pixels" in out


def test_a_query_with_other_weights_is_refused(photos, tmp_path, capsys):
    folder, _ = photos
    gallery_path = tmp_path / "g.pt"
    assert run_cli(["retrieve", "index", str(folder), "--out", str(gallery_path), "--weights", WEIGHTS], capsys)[0] == 0
    argv = ["retrieve", "query", str(gallery_path), str(folder / "p0.png"), "--weights", "random:tiny64"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert "was built with weights 'random:tiny32'" in err


def test_k_below_one_exits_2_and_above_the_gallery_is_clamped_with_a_note(photos, tmp_path, capsys):
    folder, _ = photos
    gallery_path = tmp_path / "g.pt"
    assert run_cli(["retrieve", "index", str(folder), "--out", str(gallery_path), "--weights", WEIGHTS], capsys)[0] == 0
    query = ["retrieve", "query", str(gallery_path), str(folder / "p0.png")]
    code, _, err = run_cli([*query, "--k", "0"], capsys)
    assert code == 2
    assert "argument --k: must be an int >= 1, got '0'" in err
    code, out, err = run_cli([*query, "--k", "7", "--json"], capsys)
    assert code == 0
    assert "note: --k 7 is more than the gallery's 6 images; using 6" in err
    assert len(json.loads(out)["results"][0]["neighbours"]) == 6


def test_index_of_a_folder_without_images_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["retrieve", "index", str(tmp_path / "empty"), "--out", str(tmp_path / "g.pt")], capsys)
    assert code == 2
    assert "no image files" in err
