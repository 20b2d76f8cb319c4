"""LipSimBackbone loaded from an official-layout checkpoint file equals the literal oracle (tests/oracle.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm.models.backbone import NAMED_CONFIGS, LipSimBackbone, LipSimConfig, count_parameters
from lipsim_tm.models.checkpoints.auto import load_backbone

from oracle import (
    SMALL_SIZES,
    TINY_OFFICIAL_SIZES,
    OfficialConvLayer,
    OfficialLinearLayer,
    build_official_model,
    lipsim_config_fields,
    save_official_checkpoint,
)

# Oracle sizes (keyword arguments of OfficialL2LipschitzNetwork); input_size // 16 is the last map's side.
VARIANTS = {
    "d2c8i3s32": TINY_OFFICIAL_SIZES,
    "d3c6i7s16-wide-inner": {
        "depth": 3,
        "num_channels": 6,
        "conv_size": 7,
        "input_size": 16,
        "depth_linear": 2,
        "n_features": 9,
        "out_features": 6,
    },
    "d1c5i1s48": {
        "depth": 1,
        "num_channels": 5,
        "conv_size": 1,
        "input_size": 48,
        "depth_linear": 3,
        "n_features": 40,
        "out_features": 45,
    },
}


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``max |actual - expected| / max |expected|`` (the error relative to the output's scale)."""
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def load_via_file(model: torch.nn.Module, sizes: dict[str, int], tmp_path: Path) -> LipSimBackbone:
    path = tmp_path / "model.ckpt-100000.pth"
    save_official_checkpoint(model, path)
    return load_backbone(path, config=LipSimConfig(**lipsim_config_fields(**sizes)))


def random_images(sizes: dict[str, int], batch: int, *, seed: int, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    side = sizes["input_size"]
    return torch.rand(batch, 3, side, side, generator=generator, dtype=dtype)


def test_oracle_conv_layer_is_the_matrix_formula() -> None:
    """Independent check of the oracle itself: with ``A`` the matrix of ``conv2d(., K, padding=1)`` (built
    column by column), the layer is ``x - 2 A^T (t * relu(A x + b))`` and ``q`` has no effect."""
    torch.manual_seed(0)
    layer = OfficialConvLayer(channels=3, inner=2).double()
    side, size = 5, 3 * 5 * 5
    basis = torch.eye(size, dtype=torch.float64).reshape(size, 3, side, side)
    with torch.no_grad():
        A = F.conv2d(basis, layer.kernel, padding=1).reshape(size, -1).T  # (inner * 25, size)
        x = torch.randn(1, 3, side, side, dtype=torch.float64)
        t = layer.rescaling().repeat_interleave(side * side)
        b = layer.bias.reshape(-1).repeat_interleave(side * side)
        expected = x.reshape(-1) - 2 * A.T @ (t * torch.relu(A @ x.reshape(-1) + b))
        torch.testing.assert_close(layer(x).reshape(-1), expected, rtol=1e-12, atol=1e-12)
        before = layer.rescaling()
        layer.q.add_(torch.tensor([3.0, -2.0], dtype=torch.float64))
        torch.testing.assert_close(layer.rescaling(), before, rtol=1e-14, atol=0)  # exp(-q_i) exp(q_i) cancels


def test_oracle_linear_layer_is_the_formula() -> None:
    """``t_i = 1 / sum_j |W W^T|_ij exp(q_j - q_i)`` by explicit loops; ``q`` matters in dense layers."""
    torch.manual_seed(0)
    layer = OfficialLinearLayer(features=6, inner=4).double()
    W, q = layer.weight.detach(), layer.q.detach()
    t = [1 / sum(abs(float(W[i] @ W[j])) * math.exp(float(q[j] - q[i])) for j in range(4)) for i in range(4)]
    x = torch.randn(2, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer.rescaling(), torch.tensor(t, dtype=torch.float64), rtol=1e-12, atol=0)
        expected = x - 2 * (torch.tensor(t, dtype=torch.float64) * torch.relu(x @ W.T + layer.bias)) @ W
        torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
        before = layer.rescaling()
        layer.q.add_(torch.tensor([3.0, -2.0, 0.0, 1.0], dtype=torch.float64))
        assert not torch.allclose(layer.rescaling(), before)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tiny_float32_matches_oracle(name: str, device: torch.device, tmp_path: Path) -> None:
    sizes = VARIANTS[name]
    oracle = build_official_model(seed=1, **sizes)
    backbone = load_via_file(oracle, sizes, tmp_path).to(device)
    oracle = oracle.to(device)
    x = random_images(sizes, 4, seed=2, dtype=torch.float32).to(device)
    with torch.no_grad():
        expected = oracle(x)
        cached = backbone.eval()(x)
        recomputed = backbone.train()(x)
    assert cached.shape == expected.shape == (4, sizes["out_features"])
    assert relative_error(cached, expected) <= 1e-5
    assert relative_error(recomputed, expected) <= 1e-5


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tiny_float64_matches_oracle_tightly(name: str, tmp_path: Path) -> None:
    sizes = VARIANTS[name]
    oracle = build_official_model(seed=3, **sizes).double()
    backbone = load_via_file(oracle, sizes, tmp_path)  # a float64 checkpoint loads as float64
    assert {p.dtype for p in backbone.parameters()} == {torch.float64}
    x = random_images(sizes, 3, seed=4, dtype=torch.float64)
    with torch.no_grad():
        assert relative_error(backbone(x), oracle(x)) <= 1e-13


def test_zero_rows_map_to_zero_rescaling(tmp_path: Path) -> None:
    """A zero kernel slice / weight row gives 1/0, which both implementations must map to 0."""
    sizes = VARIANTS["d2c8i3s32"]
    oracle = build_official_model(seed=5, **sizes).double()
    net = oracle.module.model
    with torch.no_grad():
        net.convs[0].kernel[1].zero_()
        net.linear[1].weight[2].zero_()
    assert net.convs[0].rescaling()[1] == 0
    assert net.linear[1].rescaling()[2] == 0
    backbone = load_via_file(oracle, sizes, tmp_path)
    assert backbone.convs[0].rescaling()[1] == 0
    assert backbone.dense[0].rescaling()[2] == 0
    x = random_images(sizes, 2, seed=6, dtype=torch.float64)
    with torch.no_grad():
        assert relative_error(backbone(x), oracle(x)) <= 1e-13


@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-3, 1e3),
    q_spread=st.floats(0.0, 4.0),
)
def test_random_weights_and_inputs_match_oracle(seed: int, scale: float, q_spread: float) -> None:
    """In-memory official state dicts with random q of random spread, inputs of random scale."""
    sizes = VARIANTS["d3c6i7s16-wide-inner"]
    oracle = build_official_model(seed=seed, **sizes).double()
    with torch.no_grad():
        for name, param in oracle.named_parameters():
            if name.endswith(".q"):
                param.mul_(q_spread)
    backbone = load_backbone(oracle.state_dict(), config=LipSimConfig(**lipsim_config_fields(**sizes)))
    x = scale * (2 * random_images(sizes, 2, seed=seed, dtype=torch.float64) - 1)
    with torch.no_grad():
        assert relative_error(backbone(x), oracle(x)) <= 1e-12


@pytest.fixture(scope="module")
def small_oracle_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    oracle = build_official_model(seed=0).eval()
    path = tmp_path_factory.mktemp("official") / "model.ckpt-1000.pth"
    save_official_checkpoint(oracle, path)
    return oracle, path


def test_small_official_checkpoint_layout(small_oracle_checkpoint: tuple[torch.nn.Module, Path]) -> None:
    oracle, path = small_oracle_checkpoint
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert {"epoch", "global_step", "model_state_dict", "optimizer_state_dict", "scheduler"} <= set(checkpoint)
    state = checkpoint["model_state_dict"]
    assert len(state) == 162
    assert all(key.startswith("module.model.") for key in state)
    unique = {tensor.untyped_storage().data_ptr() for tensor in state.values()}
    assert len(unique) == 81  # the aliases share storage in the file
    assert count_parameters(oracle) == 63_276_796  # parameters() counts each shared tensor once
    assert tuple(state["module.model.convs.0.bias"].shape) == (1, 5, 1, 1)
    assert tuple(state["module.model.base.2.7.bias"].shape) == (1, 1024)


def test_small_matches_oracle_batch1(small_oracle_checkpoint: tuple[torch.nn.Module, Path]) -> None:
    """The real ``small``: the architecture is inferred from the file, one forward each at batch 1
    (then the backbone alone at batch 2, for the ``(N, 3, 224, 224) -> (N, 1792)`` shape)."""
    oracle, path = small_oracle_checkpoint
    backbone = load_backbone(path)
    assert backbone.config == NAMED_CONFIGS["small"]
    assert count_parameters(backbone) == 63_276_796
    x = random_images(SMALL_SIZES, 1, seed=7, dtype=torch.float32)
    with torch.no_grad():
        expected = oracle(x)
        actual = backbone(x)
        batch = backbone(torch.rand(2, 3, 224, 224))  # rescaling cached by now: convolutions only
    assert actual.shape == expected.shape == (1, 1792)
    assert batch.shape == (2, 1792)
    assert relative_error(actual, expected) <= 1e-5
