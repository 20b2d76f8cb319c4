"""Line plots as PNG drawn with Pillow only (no matplotlib): axes, ticks, labels, curves with markers, a legend."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: Curve colours (RGB), used in order.
PALETTE: tuple[tuple[int, int, int], ...] = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)
GRID = (225, 225, 225)


@dataclass(frozen=True)
class Frame:
    """The plotting area: data ranges and the pixel box ``(left, top, right, bottom)`` they map to."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    box: tuple[int, int, int, int]

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Pixel coordinates of the data point ``(x, y)`` (y grows upwards in data, downwards in pixels)."""
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)


def nice_ticks(low: float, high: float, target: int = 6) -> list[float]:
    """About ``target`` round tick values (steps 1, 2, 2.5 or 5 times a power of ten) covering ``[low, high]``."""
    span = high - low
    raw = span / max(target - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9)
    ticks = []
    k = first
    while k * step <= high + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font only
        return ImageFont.load_default()


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: object, anchor: str) -> None:
    """``text`` placed at ``xy`` by a two-letter anchor (horizontal ``l/m/r``, vertical ``t/m/b``), any Pillow font.

    Positions come from :meth:`ImageDraw.textbbox` (bitmap fonts of old Pillow ignore ``anchor=``).
    """
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    dx = {"l": left, "m": (left + right) / 2, "r": right}[anchor[0]]
    dy = {"t": top, "m": (top + bottom) / 2, "b": bottom}[anchor[1]]
    draw.text((xy[0] - dx, xy[1] - dy), text, fill=INK, font=font)


def _check(x: Sequence[float], curves: Mapping[str, Sequence[float]]) -> None:
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 values, got {len(x)}")
    if not all(math.isfinite(v) for v in x) or any(b <= a for a, b in itertools.pairwise(x)):
        raise ValueError(f"x must be finite and strictly increasing, got {list(x)}")
    if not curves or len(curves) > len(PALETTE):
        raise ValueError(f"curves must hold 1 to {len(PALETTE)} series, got {len(curves)}")
    for name, values in curves.items():
        if len(values) != len(x):
            raise ValueError(f"curve {name!r} has {len(values)} values for {len(x)} x values")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"curve {name!r} must hold finite values, got {list(values)}")


def line_plot(
    path: str | os.PathLike[str],
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    size: tuple[int, int] = (760, 500),
) -> Frame:
    """Draw ``curves`` (name -> values at ``x``) as a PNG at ``path``; returns the :class:`Frame` used.

    The x axis spans ``[x[0], x[-1]]``, the y axis ``y_range`` (values outside are clipped to the frame).
    Colours follow :data:`PALETTE` in the order of ``curves``; the legend sits in the top-right corner.
    """
    _check(x, curves)
    width, height = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    font, small = _font(16), _font(13)
    frame = Frame(
        (float(x[0]), float(x[-1])), (float(y_range[0]), float(y_range[1])), (80, 46, width - 24, height - 70)
    )
    left, top, right, bottom = frame.box

    for tick in nice_ticks(*frame.x_range):
        px, _ = frame.to_pixel(tick, frame.y_range[0])
        draw.line([(px, top), (px, bottom)], fill=GRID)
        draw.line([(px, bottom), (px, bottom + 5)], fill=INK)
        _text(draw, (px, bottom + 8), f"{tick:g}", font=small, anchor="mt")
    for tick in nice_ticks(*frame.y_range):
        _, py = frame.to_pixel(frame.x_range[0], tick)
        draw.line([(left, py), (right, py)], fill=GRID)
        draw.line([(left - 5, py), (left, py)], fill=INK)
        _text(draw, (left - 8, py), f"{tick:g}", font=small, anchor="rm")
    draw.rectangle(frame.box, outline=INK, width=1)

    _text(draw, ((left + right) / 2, 12), title, font=font, anchor="mt")
    _text(draw, ((left + right) / 2, height - 12), x_label, font=font, anchor="mb")
    label = Image.new("RGB", (bottom - top, 24), BACKGROUND)
    _text(ImageDraw.Draw(label), ((bottom - top) / 2, 12), y_label, font=font, anchor="mm")
    image.paste(label.rotate(90, expand=True), (14, top))

    y_low, y_high = frame.y_range
    for colour, values in zip(PALETTE, curves.values(), strict=False):
        points = [frame.to_pixel(a, min(max(b, y_low), y_high)) for a, b in zip(x, values, strict=True)]
        draw.line(points, fill=colour, width=3, joint="curve")
        for px, py in points:
            draw.ellipse([px - 3.5, py - 3.5, px + 3.5, py + 3.5], fill=colour)

    entries = list(curves)
    text_width = max(draw.textlength(name, font=small) for name in entries)
    box_right, box_top = right - 10, top + 10
    box_left = box_right - text_width - 48
    draw.rectangle([box_left, box_top, box_right, box_top + 10 + 20 * len(entries)], fill=BACKGROUND, outline=INK)
    for i, (colour, name) in enumerate(zip(PALETTE, entries, strict=False)):
        y = box_top + 15 + 20 * i
        draw.line([(box_left + 8, y), (box_left + 32, y)], fill=colour, width=3)
        _text(draw, (box_left + 38, y), name, font=small, anchor="lm")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return frame


__all__ = ["PALETTE", "Frame", "line_plot", "nice_ticks"]
