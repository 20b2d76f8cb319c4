"""Loose ends at the edges of the API: argument checks of the functionals, NaN features, argument names in
messages, the metric plot's legend, progress output on non-terminals."""

from __future__ import annotations

import io

import pytest
import torch

from lipsim_tm.commands._report import Progress
from lipsim_tm.functional import normalize_embedding, resize_operator_norm
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from metrics_helpers import images, triplets

W = "random:tiny32"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"height": 0}, ValueError, "height must be an int >= 1, got 0"),
        ({"width": -3}, ValueError, "width must be an int >= 1, got -3"),
        ({"size": 0}, ValueError, "size must be an int >= 1, got 0"),
        ({"height": 2.5}, TypeError, "height must be an int, got float 2.5"),
        ({"size": True}, TypeError, "size must be an int, got bool True"),
        ({"interpolation": "x"}, ValueError, "interpolation must be one of"),
        ({"antialias": 1}, TypeError, "antialias must be a bool, got 1"),
    ],
)
def test_resize_operator_norm_checks_every_argument(kwargs: dict, error: type, message: str) -> None:
    arguments = {"height": 40, "width": 30, "size": 32, "interpolation": "bicubic", "antialias": True, **kwargs}
    with pytest.raises(error, match=message):
        resize_operator_norm(**arguments)


def test_resize_operator_norm_of_good_arguments_is_unchanged() -> None:
    assert resize_operator_norm(32, 32, 32, "bicubic", True) == 1.0
    assert resize_operator_norm(16, 16, 32, "nearest", False) == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_normalize_embedding_refuses_non_finite_features(bad: float) -> None:
    features = torch.randn(3, 5)
    features[1, 2] = bad
    with pytest.raises(ValueError, match="features must be finite, got NaN or infinite values"):
        normalize_embedding(features)


def test_a_negative_certify_eps_is_named() -> None:
    with pytest.raises(ValueError, match=r"certify_eps must be a finite number >= 0, got -0.1"):
        LipSimDistance(W, certify_eps=-0.1)
    with pytest.raises(TypeError, match="certify_eps must be a number"):
        LipSimDistance(W, certify_eps="0.1")


@pytest.mark.parametrize("factory", [lambda: Certified2AFCAccuracy(W), lambda: LipSimDistance(W, certify_eps=0.1)])
def test_the_plot_legend_stays_inside_the_figure(factory) -> None:
    pytest.importorskip("matplotlib")
    metric = factory()
    if isinstance(metric, Certified2AFCAccuracy):
        metric.update(*triplets(0, n=4))
    else:
        metric.update(images(1), images(2))
    figure, axes = metric.plot()
    figure.canvas.draw()
    legend = axes.get_legend().get_window_extent(figure.canvas.get_renderer())
    assert figure.bbox.x0 <= legend.x0
    assert legend.x1 <= figure.bbox.x1
    assert figure.bbox.y0 <= legend.y0
    assert legend.y1 <= figure.bbox.y1
    assert len(axes.get_legend().get_texts()) == len(metric.compute())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_writes_plain_lines_off_a_terminal_and_rewrites_one_on_it() -> None:
    redirected = io.StringIO()
    bar = Progress(100, label="demo", stream=redirected)
    for _ in range(100):
        bar.update(1)
    bar.close()
    lines = redirected.getvalue().splitlines()
    assert "\r" not in redirected.getvalue()
    assert len(lines) == Progress.STEPS
    assert lines[-1].startswith("demo [########################] 100/100 triplets")
    terminal = _Terminal()
    bar = Progress(3, label="demo", stream=terminal)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert terminal.getvalue().count("\r") == 3
    assert terminal.getvalue().endswith("\n")
