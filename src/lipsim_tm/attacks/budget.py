"""Threat model of the attacks: input checks, feasible projection, random starts and steepest-ascent steps.

A perturbed image ``x_adv`` of a clean image ``x`` is feasible when ``||x_adv - x|| <= eps`` (per image:
l2 over all pixels, or l_inf) and ``lo <= x_adv <= hi`` elementwise. :func:`make_feasible` guarantees
both exactly in floating point: the projection is computed in float64 and rounded towards zero, and
every coordinate of ``x_adv - x`` is at most the projected coordinate in magnitude, so the reported
budget holds for the returned tensors themselves, not only up to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lipsim_tm.checks import check_number, check_range, check_tensor

#: Accepted perturbation norms.
NORMS: tuple[str, ...] = ("l2", "linf")
#: Image dtypes the attacks work in (exact feasibility needs a dtype with ``torch.nextafter``).
DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
# The l2 projection aims a hair inside the ball, so the float64 norm of the result never exceeds eps.
_L2_SHRINK = 1.0 - 1e-9


def check_bounds(lo: object, hi: object) -> tuple[float, float]:
    """The valid pixel range ``(lo, hi)`` as floats, with ``lo < hi`` both finite."""
    low, high = check_number("lo", lo), check_number("hi", hi)
    if not low < high:
        raise ValueError(f"lo must be < hi, got lo={lo!r}, hi={hi!r}")
    return low, high


def check_images(images: Sequence[Tensor], names: Sequence[str], lo: float, hi: float) -> tuple[Tensor, ...]:
    """Validate a batch of image tensors: same batch size, device and dtype (float32/64), values in ``[lo, hi]``."""
    first = None
    for name, image in zip(names, images, strict=True):
        check_tensor(name, image)
        if image.ndim < 2 or image.shape[0] == 0:
            raise ValueError(f"{name} must have shape (N, ...) with N >= 1 and >= 2 dims, got {tuple(image.shape)}")
        if image.dtype not in DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {image.dtype}")
        if first is None:
            first = (name, image)
        else:
            ref_name, ref = first
            if image.shape[0] != ref.shape[0]:
                raise ValueError(f"{name} has batch size {image.shape[0]} but {ref_name} has {ref.shape[0]}")
            if image.device != ref.device or image.dtype != ref.dtype:
                raise ValueError(
                    f"{name} is {image.dtype} on {image.device} but {ref_name} is {ref.dtype} on {ref.device}"
                )
        check_range(name, image, lo, hi, context=" (the attack's valid range [lo, hi])")
    return tuple(images)


def check_eps(eps: object, batch: int, device: torch.device) -> Tensor:
    """The budget as a float64 ``(N,)`` tensor on ``device``, from a positive number or an ``(N,)`` tensor."""
    if isinstance(eps, Tensor):
        if eps.ndim != 1 or eps.shape[0] != batch:
            raise ValueError(f"eps must be a positive number or a tensor of shape ({batch},), got {tuple(eps.shape)}")
        if not eps.is_floating_point():
            raise TypeError(f"eps must be a floating-point tensor, got {eps.dtype}")
        values = eps.detach().to(device=device, dtype=torch.float64)
    elif isinstance(eps, (int, float)) and not isinstance(eps, bool):
        values = torch.full((batch,), float(eps), dtype=torch.float64, device=device)
    else:
        raise TypeError(f"eps must be a positive number or a (N,) tensor, got {type(eps).__name__}")
    if not (torch.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"eps must be positive and finite, got {eps!r}")
    return values


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    """``(N,)`` values shaped to broadcast against ``like`` of shape ``(N, ...)``."""
    return values.view(-1, *([1] * (like.ndim - 1)))


def _toward_zero(delta64: Tensor, dtype: torch.dtype) -> Tensor:
    """``delta64`` rounded to ``dtype`` with every coordinate no larger in magnitude than in float64."""
    delta = delta64.to(dtype)
    if dtype == torch.float64:
        return delta
    grown = delta.double().abs() > delta64.abs()
    return torch.where(grown, torch.nextafter(delta, torch.zeros_like(delta)), delta)


def _inside(value: float, dtype: torch.dtype, towards: float) -> float:
    """``value`` as a number of ``dtype``, moved one step towards ``towards`` if rounding pushed it outside."""
    rounded = torch.tensor(value, dtype=dtype)
    if (rounded.double() - value) * (towards - value) < 0:
        rounded = torch.nextafter(rounded, torch.tensor(towards, dtype=dtype))
    return rounded.item()


def make_feasible(x: Tensor, candidate: Tensor, eps: Tensor, norm: str, lo: float, hi: float) -> Tensor:
    """The feasible image nearest (up to the range clamp) to ``candidate``, for clean ``x``.

    Projects ``candidate - x`` onto the ``eps`` ball (per sample; ``eps`` is float64 ``(N,)``), then clamps
    ``x + delta`` to ``[lo, hi]``. Clamping only shrinks coordinates of ``delta`` because ``x`` is in range,
    so the result satisfies both constraints. Exact in floating point (see the module docstring).
    """
    delta64 = candidate.double() - x.double()
    bound = _per_sample(eps, delta64)
    if norm == "l2":
        lengths = delta64.flatten(1).norm(dim=1)
        factor = (eps * _L2_SHRINK / lengths).clamp(max=1.0)  # lengths == 0 gives inf, clamped to 1
        delta64 = delta64 * _per_sample(factor, delta64)
    else:
        delta64 = torch.maximum(torch.minimum(delta64, bound), -bound)
    delta = _toward_zero(delta64, x.dtype)
    low, high = _inside(lo, x.dtype, hi), _inside(hi, x.dtype, lo)
    result = (x + delta).clamp(low, high)
    overshoot = (result.double() - x.double()).abs() > delta.double().abs()
    return torch.where(overshoot, torch.nextafter(result, x), result)


def random_start(x: Tensor, eps: Tensor, norm: str, lo: float, hi: float, generator: torch.Generator) -> Tensor:
    """A feasible image drawn uniformly from the ``eps`` ball around ``x`` (then clamped to the range).

    Random numbers come from the CPU ``generator`` and are moved to ``x``'s device, so a seed gives the
    same start on every device.
    """
    shape = x.shape
    if norm == "linf":
        unit = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
    else:
        direction = torch.randn(shape, generator=generator, dtype=torch.float64)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-300).view(-1, *([1] * (x.ndim - 1)))
        dims = x[0].numel()
        radius = torch.rand(shape[0], generator=generator, dtype=torch.float64) ** (1.0 / dims)
        unit = direction * _per_sample(radius, direction)
    delta = unit.to(x.device) * _per_sample(eps, unit)
    return make_feasible(x, x.double() + delta, eps, norm, lo, hi)


def ascent_direction(grad: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm per sample: ``sign(grad)`` (l_inf) or ``grad / ||grad||`` (l2).

    Non-finite gradient entries count as zero; a zero gradient gives a zero direction.
    """
    grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
    if norm == "linf":
        return grad.sign()
    lengths = grad.flatten(1).norm(dim=1)
    return grad / _per_sample(lengths.clamp_min(torch.finfo(grad.dtype).tiny), grad)


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """``(N,)`` values cast to ``like``'s dtype and shaped to broadcast against it."""
    return _per_sample(values.to(like.dtype), like)
