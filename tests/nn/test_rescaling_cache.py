"""The inference cache of the SLL rescaling: equal to the uncached path, and never stale."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lipsim_tm import LipSimBackbone
from lipsim_tm.nn import SLLConv2d, SLLLinear
from lipsim_tm.nn.rescaling import CachedRescaling


@pytest.fixture(autouse=True)
def _no_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA, TF32 convolutions (on by default) would differ between paths by ~1e-3, hiding real errors."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


@pytest.fixture
def compute_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every ``compute_rescaling`` call (by class name), to tell cached from uncached forwards."""
    calls: list[str] = []
    for cls in (SLLConv2d, SLLLinear):
        original = cls.compute_rescaling

        def counted(self: CachedRescaling, _original=original) -> torch.Tensor:
            calls.append(type(self).__name__)
            return _original(self)

        monkeypatch.setattr(cls, "compute_rescaling", counted)
    return calls


def _model(device: torch.device | str = "cpu", name: str = "tiny32", seed: int = 0) -> LipSimBackbone:
    torch.manual_seed(seed)
    return LipSimBackbone(name).to(device)


def _uncached(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The reference: a deep copy in train mode (never cached), with no cache carried over."""
    ref = copy.deepcopy(model).train()
    ref.clear_rescaling_cache()
    with torch.no_grad():
        return ref(x)


def _images(model: LipSimBackbone, n: int = 2, seed: int = 1) -> torch.Tensor:
    size = model.config.input_size
    gen = torch.Generator().manual_seed(seed)
    p = next(model.parameters())
    return torch.rand(n, 3, size, size, generator=gen).to(device=p.device, dtype=p.dtype)


@pytest.mark.parametrize("name", ["tiny32", "tiny64"])
def test_eval_output_equals_train_output(name: str, device: torch.device, compute_calls: list[str]) -> None:
    model = _model(device, name)
    x = _images(model)
    with torch.no_grad():
        train_out = model.train()(x)
        model.eval()
        first = model(x)
    n_layers = len(model.convs) + len(model.dense)
    assert len(compute_calls) == 2 * n_layers  # train forward + building the cache once
    with torch.no_grad():
        second = model(x)
    assert len(compute_calls) == 2 * n_layers  # reused, not recomputed
    torch.testing.assert_close(first, train_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(second, first, rtol=0, atol=0)


def test_cache_is_invalidated_by_optimizer_step(compute_calls: list[str]) -> None:
    model = _model().eval()
    x = _images(model)
    with torch.no_grad():
        before = model(x)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    model(x).pow(2).sum().backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        after = model(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, _uncached(model, x), rtol=1e-5, atol=1e-6)


def test_cache_is_invalidated_by_load_state_dict() -> None:
    model, other = _model(seed=0).eval(), _model(seed=1).eval()
    x = _images(model)
    with torch.no_grad():
        model(x)
        model.load_state_dict(other.state_dict())
        torch.testing.assert_close(model(x), other(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model(x), _uncached(other, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("param", ["kernel", "q", "bias", "weight"])
def test_cache_is_invalidated_by_nn_init(param: str) -> None:
    model = _model().eval()
    # q has no effect in (official, not q-scaled) conv layers, so it is tested on a dense layer.
    layer = {"kernel": model.convs[0], "bias": model.convs[1], "weight": model.dense[0], "q": model.dense[1]}[param]
    x = _images(model)
    with torch.no_grad():
        before = model(x)
        nn.init.normal_(getattr(layer, param), std=0.5)
        after = model(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, _uncached(model, x), rtol=1e-5, atol=1e-6)


def test_cache_is_invalidated_by_dtype_and_device_moves(device: torch.device) -> None:
    model = _model().eval()
    x = _images(model)
    with torch.no_grad():
        model(x)
        model.double()
        out = model(x.double())
    assert out.dtype == torch.float64
    assert all(layer._inference_tensors["rescaling"].dtype == torch.float64 for layer in model.dense)
    torch.testing.assert_close(out, _uncached(model, x.double()), rtol=1e-12, atol=1e-12)
    model.to(device)
    with torch.no_grad():
        moved = model(x.double().to(device))
    torch.testing.assert_close(moved.cpu(), out, rtol=1e-10, atol=1e-10)


def test_train_mode_never_uses_the_cache(compute_calls: list[str]) -> None:
    """After ``.train()`` a cached (now stale) vector is ignored, even for ``param.data`` writes."""
    model = _model().eval()
    x = _images(model)
    with torch.no_grad():
        model(x)
    model.dense[0].weight.data.mul_(3.0)  # bypasses the version counter
    model.train()
    calls = len(compute_calls)
    with torch.no_grad():
        out = model(x)
    assert len(compute_calls) == calls + len(model.convs) + len(model.dense)
    torch.testing.assert_close(out, _uncached(model, x), rtol=0, atol=0)


def test_param_data_writes_need_clear_rescaling_cache() -> None:
    """Writes through ``.data`` are invisible to the key (documented); ``clear_rescaling_cache`` fixes it."""
    model = _model().eval()
    x = _images(model)
    with torch.no_grad():
        model(x)
        model.dense[0].weight.data.mul_(3.0)
        model.convs[0].kernel.data.mul_(2.0)
        stale = model(x)
        model.clear_rescaling_cache()
        fresh = model(x)
    reference = _uncached(model, x)
    assert not torch.allclose(stale, reference)
    torch.testing.assert_close(fresh, reference, rtol=1e-5, atol=1e-6)


def test_deepcopy_then_modify_is_not_stale() -> None:
    model = _model().eval()
    x = _images(model)
    with torch.no_grad():
        original = model(x)
        clone = copy.deepcopy(model)
        for p in clone.parameters():
            p.mul_(1.5)
        modified = clone(x)
        again = model(x)
    torch.testing.assert_close(again, original, rtol=0, atol=0)
    assert not torch.allclose(modified, original)
    torch.testing.assert_close(modified, _uncached(clone, x), rtol=1e-5, atol=1e-6)


def test_gradient_to_inputs_through_the_cached_path(device: torch.device, compute_calls: list[str]) -> None:
    """Frozen parameters, input requiring grad: the cache is used and input gradients are exact."""
    model = _model(device).eval().requires_grad_(False)
    x = _images(model).requires_grad_(True)
    with torch.no_grad():
        model(x)
    calls = len(compute_calls)
    (grad,) = torch.autograd.grad(model(x).pow(2).sum(), x)
    assert len(compute_calls) == calls  # cached path
    ref = copy.deepcopy(model).train()
    x_ref = x.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(ref(x_ref).pow(2).sum(), x_ref)
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)


def test_cache_built_in_inference_mode_works_with_autograd_later(device: torch.device) -> None:
    model = _model(device).eval().requires_grad_(False)
    x = _images(model)
    with torch.inference_mode():
        inside = model(x)
    for layer in [*model.convs, *model.dense]:
        assert not layer._inference_tensors["rescaling"].is_inference()
    x_grad = x.clone().requires_grad_(True)
    out = model(x_grad)
    torch.testing.assert_close(out.detach(), inside.clone(), rtol=0, atol=0)
    (grad,) = torch.autograd.grad(out.sum(), x_grad)
    ref = copy.deepcopy(model).train()
    x_ref = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(ref(x_ref).sum(), x_ref)
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)


def test_parameter_gradients_in_eval_mode_equal_train_mode(compute_calls: list[str]) -> None:
    """Eval mode with trainable parameters must not use the cache: parameter grads match train mode."""
    model = _model().double()
    x = _images(model)
    model.eval()
    with torch.no_grad():
        model(x)  # a cache exists now, and must not be used below
    calls = len(compute_calls)
    model.zero_grad()
    model(x).pow(2).sum().backward()
    assert len(compute_calls) == calls + len(model.convs) + len(model.dense)
    eval_grads = {n: p.grad for n, p in model.named_parameters()}
    model.train()
    model.zero_grad(set_to_none=True)
    model(x).pow(2).sum().backward()
    for name, p in model.named_parameters():
        if name.startswith("convs.") and name.endswith(".q"):  # unused by non-q-scaled convs: no gradient
            assert eval_grads[name] is None
            assert p.grad is None
        else:
            torch.testing.assert_close(eval_grads[name], p.grad, rtol=1e-10, atol=1e-12, msg=name)
    assert eval_grads["dense.0.q"].abs().sum() > 0  # the rescaling's own parameters get gradients


@pytest.mark.parametrize("cls", [SLLConv2d, SLLLinear])
def test_single_layer_cache_matches_compute(cls: type, device: torch.device) -> None:
    torch.manual_seed(0)
    layer = (SLLConv2d(6, 3) if cls is SLLConv2d else SLLLinear(20, 7)).to(device)
    x = torch.randn((2, 6, 5, 5) if cls is SLLConv2d else (2, 20), device=device)
    with torch.no_grad():
        train_out = layer(x)
        layer.eval()
        eval_out = layer(x)
        cached = layer.rescaling()
    assert cached is layer._inference_tensors["rescaling"]
    torch.testing.assert_close(cached, layer.compute_rescaling().detach())
    torch.testing.assert_close(eval_out, train_out, rtol=1e-5, atol=1e-6)
