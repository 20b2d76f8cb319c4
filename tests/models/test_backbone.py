"""Unit tests of LipSimConfig validation, the named configurations' shapes and LipSimBackbone inputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lipsim_tm import LipSimBackbone
from lipsim_tm.models import LipSimConfig
from lipsim_tm.models.backbone import NAMED_CONFIGS, count_parameters, resolve_config
from lipsim_tm.nn import SLLConv2d, SLLLinear


def _expected_parameters(cfg: LipSimConfig) -> int:
    """Closed form: each conv has ``inner*C*9`` kernel + ``inner`` bias + ``inner`` q; dense likewise."""
    conv = cfg.conv_inner * cfg.channels * 9 + 2 * cfg.conv_inner
    dense = cfg.dense_inner * cfg.flat_features + 2 * cfg.dense_inner
    return cfg.conv_depth * conv + cfg.dense_depth * dense


# Named configurations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "depth", "channels", "dense_depth", "dense_inner", "flat"),
    [
        ("small", 20, 45, 7, 1024, 8820),
        ("medium", 30, 60, 10, 2048, 11760),
        ("large", 50, 90, 10, 2048, 17640),
        ("xlarge", 70, 120, 15, 2048, 23520),
    ],
)
def test_named_config_shapes(
    name: str, depth: int, channels: int, dense_depth: int, dense_inner: int, flat: int
) -> None:
    """Reference section 3 sizes (depth/channels/dense depth/dense inner), built on the meta device."""
    cfg = NAMED_CONFIGS[name]
    assert (cfg.conv_depth, cfg.channels, cfg.dense_depth, cfg.dense_inner) == (
        depth,
        channels,
        dense_depth,
        dense_inner,
    )
    assert (cfg.input_size, cfg.conv_inner, cfg.out_features, cfg.flat_features) == (224, 5, 1792, flat)
    with torch.device("meta"):
        model = LipSimBackbone(name)
    convs = [m for m in model.modules() if isinstance(m, SLLConv2d)]
    dense = [m for m in model.modules() if isinstance(m, SLLLinear)]
    assert len(convs) == depth
    assert len(dense) == dense_depth
    assert all(m.kernel.shape == (5, channels, 3, 3) for m in convs)
    assert all(m.weight.shape == (dense_inner, flat) for m in dense)
    assert count_parameters(model) == _expected_parameters(cfg)
    out = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert out.shape == (2, 1792)


def test_small_has_published_parameter_count() -> None:
    with torch.device("meta"):
        model = LipSimBackbone("small")
    assert count_parameters(model) == 63_276_796
    assert _expected_parameters(NAMED_CONFIGS["small"]) == 63_276_796


def test_small_forward_shape() -> None:
    """One real forward of the released architecture at batch 1: (1, 3, 224, 224) -> (1, 1792)."""
    torch.manual_seed(0)
    model = LipSimBackbone("small").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 1792)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "out"), [("tiny32", 256), ("tiny64", 128)])
def test_tiny_configs(name: str, out: int, device: torch.device) -> None:
    torch.manual_seed(0)
    model = LipSimBackbone(name).to(device)
    size = model.config.input_size
    y = model(torch.rand(3, 3, size, size, device=device))
    assert y.shape == (3, out)
    assert model.embedding_dim == out
    assert count_parameters(model) == _expected_parameters(model.config)


def test_unshuffle_config_and_input_size_override() -> None:
    model = LipSimBackbone("tiny32", unshuffle=2, channels=12, input_size=64)
    assert model.config.input_size == 64
    assert model.config.flat_features == 12 * 8 * 8  # 64 / unshuffle 2 / pool 4 = 8
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 256)


def test_input_scale_and_shift() -> None:
    """``forward(x)`` with scale s and shift c equals the unscaled network at ``s * (x - c)``."""
    torch.manual_seed(0)
    scaled = LipSimBackbone("tiny32", input_scale=2.0, input_shift=0.5).double()
    plain = LipSimBackbone("tiny32").double()
    plain.load_state_dict(scaled.state_dict())
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(scaled(x), plain(2.0 * (x - 0.5)), rtol=1e-12, atol=1e-12)
    assert scaled.lipschitz_bound == 2.0
    assert plain.lipschitz_bound == 1.0


# Configuration validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"input_size": 0}, ValueError, r"LipSimConfig.input_size must be an int >= 1, got 0"),
        ({"channels": 4.5}, TypeError, r"LipSimConfig.channels must be an int, got float 4.5"),
        ({"conv_inner": True}, TypeError, r"LipSimConfig.conv_inner must be an int, got bool True"),
        ({"pool_size": -4}, ValueError, r"LipSimConfig.pool_size must be an int >= 1, got -4"),
        ({"dense_depth": -1}, ValueError, r"LipSimConfig.dense_depth must be an int >= 0, got -1"),
        ({"conv_stages": (2, -1)}, ValueError, r"LipSimConfig.conv_stages\[1\] must be an int >= 0, got -1"),
        ({"input_scale": 0.0}, ValueError, r"LipSimConfig.input_scale must be a finite number > 0, got 0.0"),
        ({"input_scale": float("nan")}, ValueError, r"LipSimConfig.input_scale must be a finite number > 0, got nan"),
        ({"input_scale": float("inf")}, ValueError, r"LipSimConfig.input_scale must be a finite number > 0, got inf"),
        ({"input_shift": float("nan")}, ValueError, r"LipSimConfig.input_shift must be a finite number, got nan"),
        ({"input_size": 100}, ValueError, r"input_size must be a multiple of .* = 16, got 100"),
        ({"channels": 2}, ValueError, r"LipSimConfig.channels must be >= in_channels \* unshuffle\*\*2 = 3, got 2"),
        (
            {"out_features": 10_000},
            ValueError,
            r"LipSimConfig.out_features must be <= the flattened size 8820, got 10000",
        ),
    ],
)
def test_config_validation(overrides: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        dataclasses.replace(NAMED_CONFIGS["small"], **overrides)


def test_conv_stages_list_is_normalised_to_tuple() -> None:
    cfg = LipSimConfig(input_size=32, channels=8, conv_stages=[1, 1], dense_inner=8, out_features=16)
    assert cfg.conv_stages == (1, 1)
    assert hash(cfg) == hash(dataclasses.replace(cfg))


def test_resolve_config_errors() -> None:
    with pytest.raises(ValueError, match=r"config must be one of \[.*'small'.*\] or a LipSimConfig, got 'huge'"):
        resolve_config("huge")
    with pytest.raises(TypeError, match="config must be a str or LipSimConfig, got int"):
        LipSimBackbone(3)
    with pytest.raises(TypeError, match=r"unknown LipSimConfig fields: \['depth'\]"):
        LipSimBackbone("tiny32", depth=3)
    assert resolve_config(NAMED_CONFIGS["tiny32"]) is NAMED_CONFIGS["tiny32"]


# Forward input validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.rand(3, 32, 32), ValueError, r"x must have shape \(N, 3, 32, 32\), got \(3, 32, 32\)"),
        (torch.rand(1, 1, 32, 32), ValueError, r"x must have shape \(N, 3, 32, 32\), got \(1, 1, 32, 32\)"),
        (torch.rand(1, 3, 64, 64), ValueError, r"x must have shape \(N, 3, 32, 32\), got \(1, 3, 64, 64\)"),
        (torch.rand(1, 3, 32, 16), ValueError, r"x must have shape \(N, 3, 32, 32\), got \(1, 3, 32, 16\)"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, "x must be a floating-point tensor, got torch.uint8"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.int64), TypeError, "x must be a floating-point tensor, got torch.int64"),
        ([[0.0]], TypeError, "x must be a torch.Tensor, got list"),
    ],
)
def test_forward_rejects_bad_input(x: object, error: type[Exception], match: str) -> None:
    model = LipSimBackbone("tiny32")
    with pytest.raises(error, match=match):
        model(x)
