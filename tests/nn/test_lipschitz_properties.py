"""Property tests of the l2 Lipschitz bounds of every layer, the normalisations and whole backbones.

Three independent checks per case, all in float64: random pairs of random scale (far and nearby),
``||J^T v|| <= ||v||`` by autograd plus power iteration for ``||J||_2``, and an Adam search that tries
to maximise ``||f(x) - f(y)|| / ||x - y||``. For single SLL layers the exact Lipschitz constant is
also computed from the spectrum of ``T^(1/2) W W^T T^(1/2)`` (see ``lipschitz_tools``). Mutation tests
show the checks fail once the rescaling is broken; ``tests/README_properties.md`` has the factors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lipsim_tm import LipSimBackbone
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
from torch_threads import one_thread

from lipschitz_tools import (
    ascent_max_ratio,
    conv_gram_lambda_max_plane,
    local_spectral_norm,
    pair_ratios,
    push_parameters,
    random_pairs,
    sll_gram_lambda_max,
    sll_jacobian,
    vjp_ratios,
)

# Forward-mode AD (power iteration) makes torch script its own decompositions, which warns in torch 2.13.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

TOL = 1e-7  # relative slack on the bound in float64 (rounding is ~1e-12 here)
BATCH = 4
scales = st.floats(-3.0, 3.0).map(lambda e: 10.0**e)
gaps = st.floats(-6.0, 0.0).map(lambda e: 10.0**e)
seeds = st.integers(0, 2**31 - 1)
q_multipliers = st.sampled_from([0.0, 1.0, 10.0, 40.0])

Case = tuple[nn.Module, tuple[int, ...], float]


def _examples(n: int) -> int:
    """``n`` examples under the default hypothesis profile (25), proportionally more under ``thorough``."""
    return max(1, n * settings().max_examples // 25)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """These many tiny float64 ops run ~10x faster on one thread than on two busy shared cores."""
    with one_thread():
        yield


def _scale_q(module: nn.Module, multiplier: float) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.split(".")[-1] == "q":
                p.mul_(multiplier)


def _sll_conv(data: st.DataObject, seed: int) -> Case:
    channels, inner = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    height, width = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    torch.manual_seed(seed)
    layer = SLLConv2d(channels, inner, q_scaled=data.draw(st.booleans())).double()
    shape = (BATCH, channels, height, width)
    if data.draw(st.booleans()):
        push_parameters(layer, shape, steps=3, lr=0.3, seed=seed)
    _scale_q(layer, data.draw(q_multipliers))
    return layer, shape, 1.0


def _sll_dense(data: st.DataObject, seed: int) -> Case:
    features, inner = data.draw(st.integers(1, 24)), data.draw(st.integers(1, 24))
    torch.manual_seed(seed)
    layer = SLLLinear(features, inner).double()
    shape = (BATCH, features)
    if data.draw(st.booleans()):
        push_parameters(layer, shape, steps=3, lr=0.3, seed=seed)
    _scale_q(layer, data.draw(q_multipliers))
    return layer, shape, 1.0


def _pool(data: st.DataObject, seed: int) -> Case:
    k = data.draw(st.integers(1, 4))
    shape = (BATCH, data.draw(st.integers(1, 3)), k * data.draw(st.integers(1, 3)), k * data.draw(st.integers(1, 3)))
    return NormPreservingSumPool2d(k), shape, 1.0


def _pad(data: st.DataObject, seed: int) -> Case:
    c_in = data.draw(st.integers(1, 4))
    c_out = data.draw(st.integers(c_in, c_in + 4))
    return ChannelZeroPad(c_in, c_out), (BATCH, c_in, data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))), 1.0


def _unshuffle(data: st.DataObject, seed: int) -> Case:
    r = data.draw(st.integers(1, 3))
    shape = (BATCH, data.draw(st.integers(1, 3)), r * data.draw(st.integers(1, 3)), r * data.draw(st.integers(1, 3)))
    return PixelUnshuffle(r), shape, 1.0


def _truncate(data: st.DataObject, seed: int) -> Case:
    width = data.draw(st.integers(1, 20))
    return Truncate(data.draw(st.integers(1, width))), (BATCH, width), 1.0


def _constant_augment(data: st.DataObject, seed: int) -> Case:
    constant = data.draw(st.floats(1.0, 5.0))
    return ConstantAugmentNormalize(constant), (BATCH, data.draw(st.integers(1, 12))), 1.0


def _unit_ball(data: st.DataObject, seed: int) -> Case:
    return UnitBallProjection(), (BATCH, data.draw(st.integers(1, 12))), 1.0


def _backbone(data: st.DataObject, seed: int) -> Case:
    name = data.draw(st.sampled_from(["tiny32", "tiny64"]))
    input_scale = data.draw(st.sampled_from([1.0, 0.5, 2.0]))
    torch.manual_seed(seed)
    model = LipSimBackbone(name, q_scaled_conv=data.draw(st.booleans()), input_scale=input_scale).double()
    cfg = model.config
    shape = (2, cfg.in_channels, cfg.input_size, cfg.input_size)
    state = data.draw(st.sampled_from(["init", "pushed", "pushed+q"]))
    if state != "init":
        push_parameters(model, shape, steps=3, lr=0.5, seed=seed)
    _scale_q(model, 10.0 if state == "pushed+q" else data.draw(q_multipliers))
    return model, shape, model.lipschitz_bound


LAYERS: dict[str, Callable[[st.DataObject, int], Case]] = {
    "sll_conv": _sll_conv,
    "sll_dense": _sll_dense,
    "pool": _pool,
    "pad": _pad,
    "unshuffle": _unshuffle,
    "truncate": _truncate,
    "constant_augment": _constant_augment,
    "unit_ball": _unit_ball,
}


def check_lipschitz(
    f: nn.Module,
    shape: tuple[int, ...],
    bound: float,
    *,
    scale: float,
    gap: float,
    seed: int,
    device: torch.device,
    iters: int = 8,
) -> None:
    """Assert the bound on random pairs, on ``J^T v`` for random ``v`` and on power-iterated ``||J||_2``."""
    f = f.to(device)
    x, y = random_pairs(shape, scale=scale, relative_gap=gap, seed=seed, device=device)
    limit = bound * (1 + TOL)
    ratios = pair_ratios(f, x, y)
    assert ratios.max() <= limit, f"pair ratio {ratios.max().item()!r} > {bound}"
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        out_shape = f(x).shape
    v = torch.randn(out_shape, generator=gen, dtype=torch.float64).to(device)
    vjp = vjp_ratios(f, x, v)
    assert vjp.max() <= limit, f"||J^T v|| / ||v|| = {vjp.max().item()!r} > {bound}"
    sigma = local_spectral_norm(f, x, iters=iters, seed=seed)
    assert sigma.max() <= limit, f"||J||_2 = {sigma.max().item()!r} > {bound}"


@pytest.mark.parametrize("kind", sorted(LAYERS))
@settings(max_examples=_examples(12))
@given(data=st.data(), seed=seeds, scale=scales, gap=gaps)
def test_layer_lipschitz(
    kind: str, device: torch.device, data: st.DataObject, seed: int, scale: float, gap: float
) -> None:
    layer, shape, bound = LAYERS[kind](data, seed)
    check_lipschitz(layer, shape, bound, scale=scale, gap=gap, seed=seed, device=device)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@settings(max_examples=_examples(3))
@given(data=st.data(), seed=seeds, scale=scales)
def test_layer_ascent_search_finds_no_violation(
    kind: str, device: torch.device, data: st.DataObject, seed: int, scale: float
) -> None:
    layer, shape, bound = LAYERS[kind](data, seed)
    x, _ = random_pairs(shape, scale=scale, relative_gap=1.0, seed=seed, device=device)
    assert ascent_max_ratio(layer.to(device), x, steps=30, seed=seed) <= bound * (1 + TOL)


@settings(max_examples=_examples(4))
@given(data=st.data(), seed=seeds, scale=scales, gap=gaps)
def test_backbone_lipschitz(device: torch.device, data: st.DataObject, seed: int, scale: float, gap: float) -> None:
    model, shape, bound = _backbone(data, seed)
    check_lipschitz(model, shape, bound, scale=scale, gap=gap, seed=seed, device=device, iters=4)


@settings(max_examples=_examples(2))
@given(data=st.data(), seed=seeds, scale=scales)
def test_backbone_ascent_search_finds_no_violation(
    device: torch.device, data: st.DataObject, seed: int, scale: float
) -> None:
    model, shape, bound = _backbone(data, seed)
    x, _ = random_pairs(shape, scale=scale, relative_gap=1.0, seed=seed, device=device)
    assert ascent_max_ratio(model.to(device), x, steps=20, seed=seed) <= bound * (1 + TOL)


@pytest.mark.slow
@settings(max_examples=40)
@given(data=st.data(), seed=seeds, scale=scales, gap=gaps)
def test_backbone_lipschitz_thorough(
    device: torch.device, data: st.DataObject, seed: int, scale: float, gap: float
) -> None:
    model, shape, bound = _backbone(data, seed)
    check_lipschitz(model, shape, bound, scale=scale, gap=gap, seed=seed, device=device)
    x, _ = random_pairs(shape, scale=scale, relative_gap=1.0, seed=seed, device=device)
    assert ascent_max_ratio(model.to(device), x, steps=100, seed=seed) <= bound * (1 + TOL)


# Exact spectra of single SLL layers -------------------------------------------------------------------


@given(data=st.data(), seed=seeds)
def test_sll_closed_form_jacobian_matches_autograd(data: st.DataObject, seed: int) -> None:
    """``I - 2 W^T T D W`` (the basis of the exact check) is the layer's autograd Jacobian."""
    conv = data.draw(st.booleans())
    layer, shape, _ = (_sll_conv if conv else _sll_dense)(data, seed)
    size = None
    if conv:
        shape = (1, shape[1], shape[2], shape[2])
        size = shape[2]
    x = torch.randn(shape[1:], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda z: layer(z[None])[0], x).reshape(x.numel(), x.numel())
    expected = sll_jacobian(layer, x, layer.compute_rescaling(), size)
    torch.testing.assert_close(jac, expected, rtol=1e-10, atol=1e-10)


@given(data=st.data(), seed=seeds)
def test_sll_exact_lipschitz_constant_at_most_one(data: st.DataObject, seed: int) -> None:
    """The exact constant ``max(1, 2 lambda - 1)`` is 1: ``lambda_max(T^(1/2) W W^T T^(1/2)) <= 1``."""
    conv = data.draw(st.booleans())
    layer, shape, _ = (_sll_conv if conv else _sll_dense)(data, seed)
    t = layer.compute_rescaling()
    if conv:
        assert sll_gram_lambda_max(layer, t, shape[2]) <= 1 + 1e-9
        assert conv_gram_lambda_max_plane(layer, t, grid=16) <= 1 + 1e-9
    else:
        assert sll_gram_lambda_max(layer, t) <= 1 + 1e-9


@settings(max_examples=_examples(3))
@given(data=st.data(), seed=seeds)
def test_backbone_layers_exact_constants(data: st.DataObject, seed: int) -> None:
    """Every SLL layer of a (pushed) backbone has exact constant 1, so their composition is 1-Lipschitz.

    Convs use the plane spectrum (sampled on a 32 x 32 frequency grid), which bounds every finite image.
    """
    model, _, _ = _backbone(data, seed)
    for conv in model.convs:
        assert conv_gram_lambda_max_plane(conv, conv.compute_rescaling(), grid=32) <= 1 + 1e-9
    for dense in model.dense:
        assert sll_gram_lambda_max(dense, dense.compute_rescaling()) <= 1 + 1e-9


def test_exact_constant_is_attained_in_the_all_active_region() -> None:
    """With ``W x + b > 0`` everywhere, ``||J(x)||_2 = max(1, 2 lambda - 1)`` (checks the theory used)."""
    torch.manual_seed(3)
    layer = SLLLinear(10, 4).double()
    t = layer.compute_rescaling()
    lam = sll_gram_lambda_max(layer, t)
    broken = 3.0 / lam  # the exact constant becomes 5
    target = torch.ones(4, dtype=torch.float64)
    x = torch.linalg.pinv(layer.weight.detach()) @ (target - layer.bias.detach().reshape(-1))
    jac = sll_jacobian(layer, x, broken * t)
    assert torch.linalg.matrix_norm(jac, ord=2).item() == pytest.approx(5.0, rel=1e-9)


# The test machinery can fail: unsound maps and broken rescalings are caught ------------------------------


def test_plain_normalize_is_not_lipschitz(device: torch.device) -> None:
    """``v / ||v||`` has local constant ``1 / ||v||``: every check reports the violation near 0."""
    f = PlainNormalize()
    with pytest.raises(AssertionError, match="pair ratio"):
        check_lipschitz(f, (BATCH, 5), 1.0, scale=1e-2, gap=1e-3, seed=0, device=device)
    x, v = random_pairs((BATCH, 5), scale=1e-2, relative_gap=1.0, seed=0, device=device)
    assert vjp_ratios(f, x, v).max() > 10.0
    assert local_spectral_norm(f, x).max() > 10.0
    start, _ = random_pairs((BATCH, 5), scale=1.0, relative_gap=1.0, seed=1, device=device)
    assert ascent_max_ratio(f, start, steps=40) > 1.5


@pytest.mark.parametrize("f", [ConstantAugmentNormalize(), UnitBallProjection()], ids=["augment", "ball"])
def test_sound_normalisations_near_zero(f: nn.Module, device: torch.device) -> None:
    """Zero and tiny vectors: ratios stay <= 1 and gradients at exactly 0 are finite."""
    zero = torch.zeros(3, 6, dtype=torch.float64, device=device, requires_grad=True)
    out = f(zero)
    assert torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(out.sum(), zero)
    assert torch.isfinite(grad).all()
    tiny = torch.randn(3, 6, dtype=torch.float64, device=device) * 1e-12
    assert pair_ratios(f, zero.detach(), tiny).max() <= 1 + TOL
    assert pair_ratios(f, tiny, -tiny).max() <= 1 + TOL
    v = torch.randn_like(out)
    assert vjp_ratios(f, zero.detach(), v).max() <= 1 + TOL


# Mutation checks: the factors come from `python tests/lipschitz_tools.py` (see README_properties.md) ---------

EXACT_FACTORS = {"dense": 1.2, "conv": 3.0}  # smallest grid factors the exact check caught for every seed
ASCENT_FACTORS = {"dense": 1.3, "conv": 4.0}  # likewise for the Adam pair search
BACKBONE_FACTORS = {"dense": 3.0, "conv": 10.0}  # one layer type broken everywhere in tiny32


def _broken(monkeypatch: pytest.MonkeyPatch, cls: type, factor: float) -> None:
    original = cls.compute_rescaling
    monkeypatch.setattr(cls, "compute_rescaling", lambda self: factor * original(self))


def _small_layer(kind: str, seed: int, pushed: bool) -> tuple[nn.Module, tuple[int, ...], int | None]:
    torch.manual_seed(seed)
    if kind == "dense":
        layer, shape, size = SLLLinear(32, 8).double(), (8, 32), None
    else:
        layer, shape, size = SLLConv2d(4, 4).double(), (8, 4, 6, 6), 6
    if pushed:
        push_parameters(layer, shape, steps=10, lr=0.3, seed=seed)
    return layer, shape, size


@pytest.mark.parametrize("pushed", [False, True], ids=["init", "pushed"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_exact_check_catches_broken_rescaling(kind: str, pushed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    layers = [_small_layer(kind, seed, pushed) for seed in range(5)]
    for layer, _, size in layers:
        assert 2 * sll_gram_lambda_max(layer, layer.compute_rescaling(), size) - 1 <= 1 + 1e-9
    _broken(monkeypatch, type(layers[0][0]), EXACT_FACTORS[kind])
    for layer, _, size in layers:
        assert 2 * sll_gram_lambda_max(layer, layer.compute_rescaling(), size) - 1 > 1 + 1e-3


@pytest.mark.parametrize("pushed", [False, True], ids=["init", "pushed"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_ascent_search_catches_broken_layer(
    kind: str, pushed: bool, device: torch.device, monkeypatch: pytest.MonkeyPatch
) -> None:
    _broken(monkeypatch, SLLLinear if kind == "dense" else SLLConv2d, ASCENT_FACTORS[kind])
    for seed in range(3):
        layer, shape, _ = _small_layer(kind, seed, pushed)
        x, _ = random_pairs(shape, scale=1.0, relative_gap=1e-3, seed=seed, device=device)
        assert ascent_max_ratio(layer.to(device), x, steps=60, seed=seed) > 1 + 1e-3


@pytest.mark.parametrize("cls", [SLLLinear, SLLConv2d], ids=["dense", "conv"])
def test_backbone_checks_catch_broken_rescaling(
    cls: type, device: torch.device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaking one layer type everywhere in ``tiny32`` is found by the search and by ``||J||_2``."""
    _broken(monkeypatch, cls, BACKBONE_FACTORS["dense" if cls is SLLLinear else "conv"])
    torch.manual_seed(0)
    model = LipSimBackbone("tiny32").double().to(device)
    x, _ = random_pairs((2, 3, 32, 32), scale=1.0, relative_gap=1e-3, seed=0, device=device)
    assert ascent_max_ratio(model, x, steps=40) > 1 + 1e-3
    assert local_spectral_norm(model, x).max() > 1 + 1e-3
