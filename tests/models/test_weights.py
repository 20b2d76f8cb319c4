"""weights= resolution, the functional cache (built once, per device, reloaded when the file changes)."""

from __future__ import annotations

import os

import pytest
import torch

from lipsim_tm.functional import lipsim_distance, lipsim_embedding
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.checkpoints.export import save_export
from lipsim_tm.models.weights import cached_backbone, clear_backbone_cache, resolve_backbone


def _same_weights(a: LipSimBackbone, b: LipSimBackbone) -> bool:
    return all(torch.equal(p.cpu(), q.cpu()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_default_weights_raise_with_what_to_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike) -> None:
    monkeypatch.setattr(
        "lipsim_tm.models.registry.PRETRAINED_DIR", tmp_path
    )  # an installation without the shipped file
    with pytest.raises(ValueError, match=r"weights='default'.*not available.*checkpoint.*LipSimBackbone.*random:"):
        resolve_backbone("default")
    with pytest.raises(ValueError, match="weights='default'"):
        lipsim_distance(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_bad_weights() -> None:
    with pytest.raises(ValueError, match=r"names a configuration.*random:small"):
        resolve_backbone("small")
    with pytest.raises(ValueError, match=r"random:<config>' needs a config in"):
        resolve_backbone("random:huge")
    with pytest.raises(TypeError, match="weights must be a LipSimBackbone, a checkpoint path"):
        resolve_backbone(3)
    with pytest.raises(FileNotFoundError, match=r"no_such_file\.pt"):
        resolve_backbone("no_such_file.pt")


def test_random_weights_are_reproducible_and_leave_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b = resolve_backbone("random:tiny32"), resolve_backbone("random:tiny32")
    assert torch.equal(state, torch.get_rng_state())
    assert a is not b
    assert _same_weights(a, b)
    assert not a.training


def test_instance_is_used_as_is() -> None:
    net = LipSimBackbone("tiny32")
    assert resolve_backbone(net) is net
    assert cached_backbone(net, "cpu") is net
    assert all(p.requires_grad for p in net.parameters())


def test_functional_cache_builds_once_and_freezes() -> None:
    clear_backbone_cache()
    first = cached_backbone("random:tiny32", "cpu")
    assert cached_backbone("random:tiny32", torch.device("cpu")) is first
    assert not any(p.requires_grad for p in first.parameters())
    assert not first.training


def test_checkpoint_path_is_loaded_once_and_reloaded_when_rewritten(tmp_path: os.PathLike) -> None:
    clear_backbone_cache()
    path = tmp_path / "net.pt"
    net = resolve_backbone("random:tiny32")
    save_export(net, path)
    loaded = cached_backbone(path, "cpu")
    assert _same_weights(loaded, net)
    assert cached_backbone(str(path), "cpu") is loaded
    assert _same_weights(resolve_backbone(path), net)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(lipsim_distance(x, y, weights=path), lipsim_distance(x, y, weights=net))
    other = LipSimBackbone("tiny32")
    save_export(other, path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    reloaded = cached_backbone(path, "cpu")
    assert reloaded is not loaded
    assert _same_weights(reloaded, other)


def test_instance_on_another_device_is_refused_not_moved() -> None:
    net = LipSimBackbone("tiny32").to(torch.float64)
    x = torch.rand(1, 3, 32, 32, device="meta")
    with pytest.raises(ValueError, match=r"LipSimBackbone on cpu but the images are on meta"):
        lipsim_embedding(x, weights=net)
    assert next(net.parameters()).device.type == "cpu"


def test_functional_instance_keeps_gradients_to_its_parameters() -> None:
    # "used as is": the functional API is a pure function of (network, images); use metrics/losses to freeze
    net = LipSimBackbone("tiny32")
    lipsim_distance(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), weights=net, reduction="sum").backward()
    assert net.convs[0].kernel.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cache_follows_the_input_device() -> None:
    clear_backbone_cache()
    cpu = cached_backbone("random:tiny32", "cpu")
    cuda = cached_backbone("random:tiny32", torch.device("cuda"))
    assert next(cuda.parameters()).is_cuda
    assert next(cpu.parameters()).device.type == "cpu"
    assert _same_weights(cpu, cuda)
    x, y = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    torch.testing.assert_close(
        lipsim_distance(x.cuda(), y.cuda(), weights="random:tiny32").cpu(),
        lipsim_distance(x, y, weights="random:tiny32"),
        atol=1e-5,
        rtol=1e-4,
    )
