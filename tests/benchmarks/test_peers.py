"""The peer architectures of benchmarks/peers.py: exact parameter counts, sane outputs, and (where
torchvision/torchmetrics are installed) equality with torchvision's networks and torchmetrics' LPIPS/DISTS."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from peers import (
    DISTS,
    LPIPS,
    DreamSimEnsemble,
    VisionTransformer,
    alexnet_features,
    build_peer,
    vgg16_features,
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_published_architectures() -> None:
    with torch.device("meta"):
        # torchvision alexnet().features / vgg16().features; timm vit_base_patch16_224 without head (DINO);
        # OpenAI CLIP ViT-B/16 and OpenCLIP ViT-B/32 visual towers.
        assert count(alexnet_features()) == 2_469_696
        assert count(vgg16_features()) == 14_714_688
        towers = DreamSimEnsemble().towers
        assert [count(t) for t in towers] == [85_798_656, 86_192_640, 87_849_216]
        assert count(LPIPS("alex")) - 2_469_696 == 64 + 192 + 384 + 256 + 256
        assert count(DISTS()) == 14_714_688 + 2 * 1475  # all 13 VGG16 convs, alpha and beta


def test_outputs_are_per_pair_and_zero_for_identical_images() -> None:
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    for name in ("lpips-alex", "lpips-vgg", "dists"):
        peer = build_peer(name, 64)
        with torch.no_grad():
            d, same = peer(x, y), peer(x, x)
        assert d.shape == (2,), name
        assert torch.isfinite(d).all(), name
        assert torch.allclose(same, torch.zeros(2), atol=1e-5), name


def test_vision_transformer_shapes_and_bad_arguments() -> None:
    vit = VisionTransformer(patch=8, image_size=32, width=32, depth=2, heads=4, kind="clip", proj_dim=16)
    assert vit(torch.rand(3, 3, 32, 32)).shape == (3, 16)
    dino = VisionTransformer(patch=8, image_size=32, width=32, depth=1, heads=4)
    assert dino(torch.rand(2, 3, 32, 32)).shape == (2, 32)
    with pytest.raises(ValueError, match="kind must be"):
        VisionTransformer(patch=8, kind="swin")
    with pytest.raises(ValueError, match="image_size must be a multiple of patch=16"):
        VisionTransformer(patch=16, image_size=40)
    with pytest.raises(ValueError, match="peer must be one of"):
        build_peer("ssim")
    with pytest.raises(ValueError, match="net must be 'alex' or 'vgg'"):
        LPIPS("squeeze")


def _copy_in_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    src, dst = list(source.parameters()), list(target.parameters())
    assert [p.shape for p in src] == [p.shape for p in dst]
    with torch.no_grad():
        for s, d in zip(src, dst, strict=True):
            d.copy_(s)


def test_features_equal_torchvision() -> None:
    models = pytest.importorskip("torchvision.models")
    x = torch.rand(2, 3, 64, 64)
    for ours, theirs in (
        (alexnet_features(), models.alexnet(weights=None).features),
        (vgg16_features(), models.vgg16(weights=None).features),
    ):
        assert [p.shape for p in ours.state_dict().values()] == [p.shape for p in theirs.state_dict().values()]
        assert list(ours.state_dict()) == list(theirs.state_dict())
        _copy_in_order(theirs, ours)
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_torchmetrics(net: str) -> None:
    pytest.importorskip("torchvision")
    from torchmetrics.functional.image.lpips import _LPIPS

    theirs = _LPIPS(pretrained=True, net=net, pnet_rand=True).eval()  # shipped linear heads, random backbone
    ours = LPIPS(net)
    _copy_in_order(theirs.net, ours.net)
    _copy_in_order(theirs.lins, ours.lins)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, y), theirs(x, y, normalize=True).reshape(-1), rtol=1e-4, atol=1e-6)


def test_dists_equals_torchmetrics(monkeypatch: pytest.MonkeyPatch) -> None:
    models = pytest.importorskip("torchvision.models")
    from torchmetrics.functional.image import dists as tm_dists

    monkeypatch.setattr(tm_dists, "vgg16", lambda weights=None: models.vgg16(weights=None))  # no download
    theirs = tm_dists.DISTSNetwork(load_weights=True).eval()  # shipped alpha/beta, random VGG
    ours = DISTS()
    vgg = [p for name, p in theirs.named_parameters() if name not in ("alpha", "beta")]
    with torch.no_grad():
        for s, d in zip(vgg, ours.net.parameters(), strict=True):
            d.copy_(s)
        ours.alpha.copy_(theirs.alpha)
        ours.beta.copy_(theirs.beta)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, y), theirs(x, y), rtol=1e-4, atol=1e-6)
