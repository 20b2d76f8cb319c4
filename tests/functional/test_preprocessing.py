"""Preprocessing: exact resize operator norm against a brute-force dense operator, and every input check."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lipsim_tm.functional.preprocessing import (
    INTERPOLATIONS,
    Preprocessing,
    input_operator_norm,
    parse_data_range,
    resize,
    resize_operator_norm,
)


def _dense_resize_norm(height: int, width: int, size: int, mode: str, antialias: bool) -> float:
    """Largest singular value of the full (size^2 x H W) matrix, built from every one-pixel image."""
    basis = torch.eye(height * width, dtype=torch.float64).reshape(height * width, 1, height, width)
    matrix = resize(basis, size, mode, antialias).reshape(height * width, size * size)
    return float(torch.linalg.matrix_norm(matrix, ord=2))


@given(
    height=st.integers(1, 14),
    width=st.integers(1, 14),
    size=st.integers(2, 9),
    mode=st.sampled_from(INTERPOLATIONS),
    antialias=st.booleans(),
)
def test_separable_norm_equals_dense_norm(height: int, width: int, size: int, mode: str, antialias: bool) -> None:
    expected = _dense_resize_norm(height, width, size, mode, antialias)
    assert resize_operator_norm(height, width, size, mode, antialias) == pytest.approx(expected, rel=1e-9)


def test_closed_form_norms() -> None:
    # nearest x2 upsampling repeats each pixel 4 times: norm sqrt(4) = 2; area /2 averages 4 pixels: norm 1/2
    assert resize_operator_norm(16, 16, 32, "nearest", False) == pytest.approx(2.0, rel=1e-12)
    assert resize_operator_norm(64, 64, 32, "area", False) == pytest.approx(0.5, rel=1e-12)
    assert resize_operator_norm(32, 32, 32, "bicubic", True) == 1.0


def test_norm_is_attained_by_power_iteration_on_the_real_resize() -> None:
    # independent of the matrices: power iteration on the resize itself approaches the norm from below
    x = torch.randn(1, 1, 23, 41, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for _ in range(200):
        x = x.detach().requires_grad_()
        y = resize(x, 32, "bicubic", True)
        (grad,) = torch.autograd.grad(y, x, y)
        x = grad / grad.norm()
    estimate = float(resize(x, 32, "bicubic", True).norm())
    exact = resize_operator_norm(23, 41, 32, "bicubic", True)
    assert exact * 0.995 < estimate <= exact * (1 + 1e-12)


def test_data_range_and_grayscale_factors() -> None:
    images = torch.rand(2, 3, 20, 20)
    base = Preprocessing(size=32)
    assert input_operator_norm(Preprocessing(size=32, data_range=255.0), images) == pytest.approx(
        input_operator_norm(base, images) / 255
    )
    assert input_operator_norm(Preprocessing(size=32, data_range=(-1.0, 1.0)), images) == pytest.approx(
        input_operator_norm(base, images) / 2
    )
    grey = Preprocessing(size=32, grayscale=True)
    assert input_operator_norm(grey, images[:, :1]) == pytest.approx(math.sqrt(3) * input_operator_norm(base, images))
    assert input_operator_norm(grey, images) == pytest.approx(input_operator_norm(base, images))


def test_preprocessing_maps_ranges_to_unit_interval() -> None:
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(Preprocessing(size=32, data_range=255.0)(x * 255), x)
    torch.testing.assert_close(Preprocessing(size=32, data_range=(-1.0, 1.0))(x * 2 - 1), x)
    grey = Preprocessing(size=32, grayscale=True)(x[:, :1])
    assert grey.shape == (2, 3, 32, 32)
    torch.testing.assert_close(grey, x[:, :1].expand(-1, 3, -1, -1))
    assert Preprocessing(size=32)(x, torch.float32).dtype == torch.float32


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        ([[0.0]], TypeError, r"images must be a torch\.Tensor, got list"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "must be a floating-point tensor, got torch.uint8"),
        (torch.zeros(3, 8, 8), ValueError, r"images must have shape \(N, C, H, W\), got \(3, 8, 8\)"),
        (torch.zeros(0, 3, 8, 8), ValueError, r"images must hold at least one image, got an empty batch \(N = 0\)"),
        (torch.zeros(1, 4, 8, 8), ValueError, r"images must have 3 channels, got shape \(1, 4, 8, 8\)"),
        (torch.zeros(1, 1, 8, 8), ValueError, "pass grayscale=True"),
        (torch.zeros(1, 3, 0, 8), ValueError, "non-empty spatial size"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "images contains NaN or infinite values"),
        (torch.full((1, 3, 8, 8), float("inf")), ValueError, "images contains NaN or infinite values"),
        (torch.full((1, 3, 8, 8), -0.5), ValueError, r"must lie in \[0, 1\].*got min -0.5.*data_range=\(-1.0, 1.0\)"),
        (torch.full((1, 3, 8, 8), 255.0), ValueError, r"must lie in \[0, 1\].*max 255.*data_range=255.0"),
    ],
)
def test_bad_images(images: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Preprocessing(size=32).check(images)


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="interpolation must be one of"):
        Preprocessing(size=32, interpolation="lanczos")
    with pytest.raises(ValueError, match="high > low"):
        parse_data_range((1.0, 0.0))
    with pytest.raises(ValueError, match="high > low"):
        parse_data_range(0.0)
    with pytest.raises(TypeError, match="data_range must be a positive number or a"):
        parse_data_range("255")
    with pytest.raises(TypeError, match="grayscale must be a bool"):
        Preprocessing(size=32, grayscale=1)
    assert parse_data_range(255) == (0.0, 255.0)
