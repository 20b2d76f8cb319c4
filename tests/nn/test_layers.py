"""Unit tests of the building blocks against literal float64 references, and their input validation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm.nn import (
    ChannelZeroPad,
    ConstantAugmentNormalize,
    NormPreservingSumPool2d,
    PixelUnshuffle,
    PlainNormalize,
    SLLConv2d,
    SLLLinear,
    Truncate,
    UnitBallProjection,
)
from lipsim_tm.nn.rescaling import safe_reciprocal

seeds = st.integers(0, 2**31 - 1)


def _kernel_gram_loops(kernel: torch.Tensor) -> torch.Tensor:
    """``G[i, j, u, v] = sum_{c, a, b} K[i, c, a, b] K[j, c, a + u - 2, b + v - 2]`` by explicit loops."""
    inner = kernel.shape[0]
    gram = torch.zeros(inner, inner, 5, 5, dtype=torch.float64)
    k = kernel.double()
    for u in range(5):
        for v in range(5):
            for a in range(3):
                for b in range(3):
                    a2, b2 = a + u - 2, b + v - 2
                    if 0 <= a2 < 3 and 0 <= b2 < 3:
                        gram[:, :, u, v] += k[:, :, a, b] @ k[:, :, a2, b2].T
    return gram


def _conv_rescaling_reference(layer: SLLConv2d) -> torch.Tensor:
    gram = _kernel_gram_loops(layer.kernel.detach()).abs().sum(dim=(2, 3))
    if layer.q_scaled:
        q = layer.q.detach().double()
        gram = gram * torch.exp(q[None, :] - q[:, None])
    row = gram.sum(dim=1)
    return torch.tensor([0.0 if r == 0 else 1.0 / r for r in row.tolist()], dtype=torch.float64)


def _dense_rescaling_reference(layer: SLLLinear) -> torch.Tensor:
    w, q = layer.weight.detach().double(), layer.q.detach().double()
    inner = w.shape[0]
    t = torch.zeros(inner, dtype=torch.float64)
    for i in range(inner):
        total = sum(abs(float(w[i] @ w[j])) * float(torch.exp(q[j] - q[i])) for j in range(inner))
        t[i] = 0.0 if total == 0 else 1.0 / total
    return t


# SLL convolution ---------------------------------------------------------------------------------------


@given(seed=seeds, channels=st.integers(1, 6), inner=st.integers(1, 6), q_scaled=st.booleans())
def test_conv_rescaling_matches_loops(seed: int, channels: int, inner: int, q_scaled: bool) -> None:
    torch.manual_seed(seed)
    layer = SLLConv2d(channels, inner, q_scaled=q_scaled).double()
    torch.testing.assert_close(layer.compute_rescaling(), _conv_rescaling_reference(layer), rtol=1e-12, atol=0)


def test_conv_q_has_no_effect_unless_q_scaled() -> None:
    """The official quirk: exp(-q) and exp(q) act on the same index, so q cancels (q_scaled=False)."""
    torch.manual_seed(0)
    layer = SLLConv2d(5, 4).double()
    x = torch.randn(2, 5, 7, 7, dtype=torch.float64)
    before_t, before = layer.compute_rescaling(), layer(x)
    with torch.no_grad():
        layer.q.mul_(7.0).add_(3.0)
    torch.testing.assert_close(layer.compute_rescaling(), before_t, rtol=0, atol=0)
    torch.testing.assert_close(layer(x), before, rtol=0, atol=0)
    layer.q_scaled = True
    assert not torch.allclose(layer.compute_rescaling(), before_t)


@given(seed=seeds, channels=st.integers(1, 4), inner=st.integers(1, 5), size=st.integers(1, 6))
def test_conv_forward_matches_dense_operator(seed: int, channels: int, inner: int, size: int) -> None:
    """``x - 2 A^T (t * relu(A x + b))`` with ``A`` the conv matrix built from shifted kernel taps."""
    torch.manual_seed(seed)
    layer = SLLConv2d(channels, inner).double()
    x = torch.randn(2, channels, size, size, dtype=torch.float64)
    k = layer.kernel.detach()
    a = torch.zeros(inner, size, size, channels, size, size, dtype=torch.float64)
    for r in range(size):
        for c in range(size):
            for dr in range(3):
                for dc in range(3):
                    rr, cc = r + dr - 1, c + dc - 1
                    if 0 <= rr < size and 0 <= cc < size:
                        a[:, r, c, :, rr, cc] = k[:, :, dr, dc]
    a = a.reshape(inner * size * size, channels * size * size)
    t = layer.compute_rescaling().detach().repeat_interleave(size * size)
    b = layer.bias.detach().reshape(-1).repeat_interleave(size * size)
    flat = x.reshape(2, -1)
    expected = flat - 2.0 * (t * F.relu(flat @ a.T + b)) @ a
    torch.testing.assert_close(layer(x).reshape(2, -1), expected, rtol=1e-12, atol=1e-12)


def test_conv_zero_kernel_row_is_inactive() -> None:
    """A zero inner channel gets ``t = 1 / 0 -> 0`` (not inf/nan) and contributes nothing."""
    torch.manual_seed(0)
    layer = SLLConv2d(3, 2).double()
    with torch.no_grad():
        layer.kernel[1].zero_()
    t = layer.compute_rescaling()
    assert t[1] == 0
    assert t[0] > 0
    with torch.no_grad():
        layer.kernel.zero_()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x)


def test_conv_shapes_and_parameters() -> None:
    layer = SLLConv2d(45, 5)
    assert layer.kernel.shape == (5, 45, 3, 3)
    assert layer.bias.shape == (1, 5, 1, 1)
    assert layer.q.shape == (5,)
    assert layer(torch.randn(2, 45, 9, 7)).shape == (2, 45, 9, 7)
    assert "channels=45, inner=5, q_scaled=False" in repr(layer)


# SLL dense ---------------------------------------------------------------------------------------------


@given(seed=seeds, features=st.integers(1, 12), inner=st.integers(1, 12))
def test_dense_rescaling_and_forward_match_loops(seed: int, features: int, inner: int) -> None:
    torch.manual_seed(seed)
    layer = SLLLinear(features, inner).double()
    t = _dense_rescaling_reference(layer)
    torch.testing.assert_close(layer.compute_rescaling(), t, rtol=1e-12, atol=0)
    x = torch.randn(3, features, dtype=torch.float64)
    w, b = layer.weight.detach(), layer.bias.detach().reshape(-1)
    expected = torch.stack([xi - 2.0 * w.T @ (t * torch.clamp(w @ xi + b, min=0)) for xi in x])
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_dense_shapes_and_zero_row() -> None:
    layer = SLLLinear(8820, 16)
    assert layer.weight.shape == (16, 8820)
    assert layer.bias.shape == (1, 16)
    assert layer.q.shape == (16,)
    with torch.no_grad():
        layer.weight[3].zero_()
    t = layer.compute_rescaling()
    assert t[3] == 0
    assert torch.isfinite(t).all()
    assert "features=8820, inner=16" in repr(layer)


# Structural layers -------------------------------------------------------------------------------------


@given(seed=seeds, k=st.integers(1, 4), m=st.integers(1, 3))
def test_pool_is_window_sum_over_k(seed: int, k: int, m: int) -> None:
    x = torch.randn(2, 3, k * m, k * (m + 1), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = x.reshape(2, 3, m, k, m + 1, k).sum(dim=(3, 5)) / k
    torch.testing.assert_close(NormPreservingSumPool2d(k)(x), expected, rtol=1e-12, atol=1e-12)


def test_pool_norm_is_attained_on_constant_windows() -> None:
    x = torch.ones(1, 2, 8, 8, dtype=torch.float64)
    assert NormPreservingSumPool2d(4)(x).norm().item() == pytest.approx(x.norm().item(), rel=1e-15)


def test_pad_unshuffle_truncate() -> None:
    x = torch.randn(2, 3, 4, 6)
    padded = ChannelZeroPad(3, 5)(x)
    assert padded.shape == (2, 5, 4, 6)
    torch.testing.assert_close(padded[:, :3], x)
    assert (padded[:, 3:] == 0).all()
    shuffled = PixelUnshuffle(2)(x)
    assert shuffled.shape == (2, 12, 2, 3)
    torch.testing.assert_close(shuffled.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    v = torch.randn(4, 10)
    torch.testing.assert_close(Truncate(7)(v), v[:, :7])


# Normalisations ----------------------------------------------------------------------------------------


def test_normalisation_outputs() -> None:
    v = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)
    aug = ConstantAugmentNormalize(1.0)(v)
    torch.testing.assert_close(aug[0], torch.tensor([3.0, 4.0, 1.0], dtype=torch.float64) / 26**0.5)
    torch.testing.assert_close(aug[2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    ball = UnitBallProjection()(v)
    torch.testing.assert_close(ball, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64))
    plain = PlainNormalize()(v)
    torch.testing.assert_close(plain[:2], torch.tensor([[0.6, 0.8], [0.6, 0.8]], dtype=torch.float64))
    assert torch.isfinite(plain).all()


def test_constant_below_one_rejected() -> None:
    with pytest.raises(ValueError, match="constant must be finite and >= 1"):
        ConstantAugmentNormalize(0.5)
    with pytest.raises(ValueError, match="constant must be finite and >= 1"):
        ConstantAugmentNormalize(float("nan"))
    with pytest.raises(ValueError, match="constant must be finite and >= 1"):
        ConstantAugmentNormalize(float("inf"))


# safe_reciprocal ---------------------------------------------------------------------------------------


def test_safe_reciprocal_values_and_gradients() -> None:
    x = torch.tensor([0.0, 2.0, -4.0, 0.0], dtype=torch.float64, requires_grad=True)
    y = safe_reciprocal(x)
    torch.testing.assert_close(y.detach(), torch.tensor([0.0, 0.5, -0.25, 0.0], dtype=torch.float64))
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, torch.tensor([0.0, -0.25, -1.0 / 16, 0.0], dtype=torch.float64))


# Validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: SLLConv2d(0, 5), ValueError, "channels must be an int >= 1, got 0"),
        (lambda: SLLConv2d(45, -1), ValueError, "inner must be an int >= 1, got -1"),
        (lambda: SLLConv2d(45.0, 5), TypeError, "channels must be an int, got float"),
        (lambda: SLLConv2d(True, 5), TypeError, "channels must be an int, got bool"),
        (lambda: SLLLinear(8, 0), ValueError, "inner must be an int >= 1, got 0"),
        (lambda: SLLLinear("8", 2), TypeError, "features must be an int, got str"),
        (lambda: NormPreservingSumPool2d(0), ValueError, "kernel_size must be an int >= 1, got 0"),
        (lambda: ChannelZeroPad(4, 3), ValueError, "out_channels must be >= in_channels=4, got 3"),
        (lambda: ChannelZeroPad(0, 3), ValueError, "in_channels must be an int >= 1, got 0"),
        (lambda: Truncate(0), ValueError, "features must be an int >= 1, got 0"),
        (lambda: Truncate(2.5), TypeError, "features must be an int, got float"),
    ],
)
def test_constructor_validation(build: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()
