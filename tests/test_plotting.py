"""The one plotting path (matplotlib): curves hold the given data, the legend stays inside the figure, bad input."""

from __future__ import annotations

import sys

import pytest
from PIL import Image

from lipsim_tm.plotting import MATPLOTLIB_MISSING, Series, line_figure, line_plot

pytest.importorskip("matplotlib")


def test_curves_carry_the_data_and_the_png_has_the_figure_size(tmp_path):
    x = [0.0, 0.1, 0.2, 0.3, 0.4]
    series = [Series("high", [0.9, 0.85, 0.8, 0.75, 0.7]), Series("low", [0.3, 0.2, 0.1, 0.05, 0.0], dashed=True)]
    figure = line_figure(x, series, title="t", x_label="eps", y_label="accuracy", baseline=("natural", 0.95))
    [axes] = figure.axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    for curve in series:
        assert list(lines[curve.label].get_xdata()) == x
        assert list(lines[curve.label].get_ydata()) == list(curve.values)
    assert lines["low"].get_linestyle() == "--"
    assert list(lines["natural"].get_ydata()) == [0.95, 0.95]
    assert axes.get_ylim() == (0.0, 1.0)
    path = line_plot(tmp_path / "plots" / "p.png", x, series, title="t", x_label="eps", y_label="accuracy")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (760, 500)


def test_a_seven_entry_legend_stays_inside_the_figure():
    x = [0.0, 0.5, 1.0]
    series = [Series(f"certified_2afc_all@{i / 10:.4g} (a long label)", [0.5, 0.4, 0.3]) for i in range(7)]
    figure = line_figure(x, series, title="t", x_label="x", y_label="y")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend_box = figure.legends[0].get_window_extent(renderer)
    figure_box = figure.bbox
    assert figure_box.x0 <= legend_box.x0
    assert legend_box.x1 <= figure_box.x1
    assert figure_box.y0 <= legend_box.y0
    assert legend_box.y1 <= figure_box.y1
    axes_box = figure.axes[0].get_window_extent(renderer)
    assert legend_box.y1 <= axes_box.y0  # below the axes, never over the curves


@pytest.mark.parametrize(
    ("x", "series", "message"),
    [
        ([0.0], [Series("a", [1.0])], "x must hold at least 2 values"),
        ([0.0, 0.0], [Series("a", [1.0, 1.0])], "x must be finite and strictly increasing"),
        ([0.0, float("nan")], [Series("a", [1.0, 1.0])], "x must be finite and strictly increasing"),
        ([0.0, 1.0], [], "series must hold at least one curve"),
        ([0.0, 1.0], [Series("a", [1.0])], "curve 'a' has 1 values for 2 x values"),
        ([0.0, 1.0], [Series("a", [1.0, float("nan")])], "curve 'a' must hold finite values"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, x, series, message):
    with pytest.raises(ValueError, match=message):
        line_plot(tmp_path / "bad.png", x, series, title="t", x_label="x", y_label="y")
    assert not (tmp_path / "bad.png").exists()


def test_without_matplotlib_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install lipsim-tm"):
        line_plot(tmp_path / "p.png", [0.0, 1.0], [Series("a", [0.0, 1.0])], title="t", x_label="x", y_label="y")
    assert "lipsim-tm[plot]" in MATPLOTLIB_MISSING
