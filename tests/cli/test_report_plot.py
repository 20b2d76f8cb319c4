"""The Pillow-only line plot: data points land where the frame maps them, ticks are round, bad input is refused."""

from __future__ import annotations

import pytest
from PIL import Image

from lipsim_tm.report_plot import PALETTE, line_plot, nice_ticks


def test_curve_points_are_drawn_where_the_frame_maps_them(tmp_path):
    x = [0.0, 0.1, 0.2, 0.3, 0.4]
    curves = {"high": [0.9, 0.85, 0.8, 0.75, 0.7], "low": [0.3, 0.2, 0.1, 0.05, 0.0]}
    path = tmp_path / "plots" / "p.png"
    frame = line_plot(path, x, curves, title="t", x_label="eps", y_label="accuracy", size=(640, 400))
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (640, 400)
        rgb = image.convert("RGB")
        for colour, values in zip(PALETTE, curves.values(), strict=False):
            for a, b in zip(x, values, strict=True):
                px, py = frame.to_pixel(a, b)
                assert rgb.getpixel((round(px), round(py))) == colour
    left, top, right, bottom = frame.box
    assert frame.to_pixel(0.0, 0.0) == (left, bottom)
    assert frame.to_pixel(0.4, 1.0) == (right, top)


def test_values_outside_the_y_range_are_clipped_to_the_frame(tmp_path):
    frame = line_plot(tmp_path / "c.png", [0, 1], {"a": [-0.5, 1.5]}, title="t", x_label="x", y_label="y")
    with Image.open(tmp_path / "c.png") as image:
        rgb = image.convert("RGB")
        left, top, right, bottom = frame.box
        assert rgb.getpixel((left, bottom)) == PALETTE[0]
        assert rgb.getpixel((right, top)) == PALETTE[0]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.0, 0.6, [0.0, 0.2, 0.4, 0.6]),
        (0.0, 0.4235, [0.0, 0.1, 0.2, 0.3, 0.4]),
        (0.05, 0.95, [0.2, 0.4, 0.6, 0.8]),
        (0.0, 25.0, [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]),
    ],
)
def test_nice_ticks_are_round_and_inside_the_range(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("x", "curves", "message"),
    [
        ([0.0], {"a": [1.0]}, "x must hold at least 2 values"),
        ([0.0, 0.0], {"a": [1.0, 1.0]}, "x must be finite and strictly increasing"),
        ([0.0, float("nan")], {"a": [1.0, 1.0]}, "x must be finite and strictly increasing"),
        ([0.0, 1.0], {}, "curves must hold 1 to 4 series"),
        ([0.0, 1.0], {"a": [1.0]}, "curve 'a' has 1 values for 2 x values"),
        ([0.0, 1.0], {"a": [1.0, float("nan")]}, "curve 'a' must hold finite values"),
    ],
)
def test_bad_input_is_refused(tmp_path, x, curves, message):
    with pytest.raises(ValueError, match=message):
        line_plot(tmp_path / "bad.png", x, curves, title="t", x_label="x", y_label="y")
    assert not (tmp_path / "bad.png").exists()
