"""Checks of arguments and inputs: the one home of every validation in the package.

Each check raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) with one message style,
``"<name> must be <what was expected>, got <what came>"``, and returns the checked value (converted where
the check says so). Entry points call these before any state changes, so a refused input changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) within ``[minimum, maximum]`` (each optional)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int {_bounds(minimum, maximum)}, got {value!r}")
    return value


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
) -> float:
    """``value`` as a float if it is a finite number (not a bool) within the bounds (``open_minimum``: ``>``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    below = minimum is not None and (value <= minimum if open_minimum else value < minimum)
    if not math.isfinite(value) or below or (maximum is not None and value > maximum):
        bounds = _bounds(minimum, maximum, open_minimum)
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return float(value)


def check_numbers(name: str, values: object, *, minimum: float = 0.0) -> tuple[float, ...]:
    """``values`` as a tuple of floats: a non-empty sequence of finite numbers ``>= minimum`` (e.g. l2 budgets)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise TypeError(f"{name} must be a non-empty sequence of numbers, got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must hold finite numbers >= {minimum:g}, got {list(values)!r}")
        if value < minimum:
            raise ValueError(f"{name} must hold finite numbers >= {minimum:g}, got {list(values)!r}")
    return tuple(float(value) for value in values)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_callable(name: str, value: object, *, optional: bool = False) -> None:
    """``TypeError`` unless ``value`` is callable (or, ``optional``, None)."""
    if not callable(value) and not (optional and value is None):
        raise TypeError(f"{name} must be callable{' or None' if optional else ''}, got {type(value).__name__}")


def check_tensor(name: str, value: object, *, floating: bool = False, shape: tuple[int, ...] | None = None) -> Tensor:
    """``value`` if it is a tensor (``floating``: of a floating-point dtype; ``shape``: of exactly that shape)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def check_matrix(name: str, value: object) -> Tensor:
    """``value`` if it is a floating-point ``(N, D)`` tensor (``N``, ``D`` may be 0; values not read)."""
    tensor = check_tensor(name, value)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(tensor.shape)}")
    return check_tensor(name, tensor, floating=True)


def check_finite(name: str, tensor: Tensor) -> Tensor:
    """``tensor`` if every value is finite (one device-to-host transfer)."""
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    return tensor


def check_range(name: str, tensor: Tensor, low: float, high: float, *, context: str = "", hint: str = "") -> Tensor:
    """``tensor`` if its values are finite and within ``[low, high]``; one pass and one device-to-host transfer.

    NaN propagates through ``aminmax`` and an infinite value is the minimum or the maximum, so both ends say all.
    ``context`` follows the expected range in the message (e.g. the ``data_range`` that gave it), ``hint`` ends it.
    """
    data = tensor.detach()
    if data.device.type == "cpu" and data.dtype in (torch.float16, torch.bfloat16):
        data = data.float()  # exact; older CPU builds have no half-precision aminmax
    lo, hi = torch.stack(torch.aminmax(data)).tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if lo < low or hi > high:
        raise ValueError(f"{name} values must lie in [{low:g}, {high:g}]{context}, got min {lo:g} and max {hi:g}{hint}")
    return tensor


def check_same_shape(**tensors: Tensor) -> None:
    """``ValueError`` unless all named tensors have one shape."""
    shapes = {name: tuple(value.shape) for name, value in tensors.items()}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"{' and '.join(shapes)} must have the same shape, got {listing}")


def check_same_device(**tensors: Tensor) -> None:
    """``ValueError`` unless all named tensors are on one device."""
    devices = {name: value.device for name, value in tensors.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"{' and '.join(devices)} must be on the same device, got {listing}")


def check_device(name: str, tensor: Tensor, device: torch.device, owner: str, fix: str) -> None:
    """``ValueError`` unless ``tensor`` is on ``device``, where ``owner`` (e.g. "the metric's network") lives."""
    if tensor.device != device:
        raise ValueError(f"{name} is on {tensor.device} but {owner} is on {device}; {fix}")


def _bounds(minimum: float | None, maximum: float | None, open_minimum: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f"in {'(' if open_minimum else '['}{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f"{'>' if open_minimum else '>='} {minimum:g}"
    return f"<= {maximum:g}" if maximum is not None else ""
