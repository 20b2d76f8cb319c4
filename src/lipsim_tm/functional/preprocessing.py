"""From images as users have them to backbone inputs, and the exact l2 operator norm of that map.

The map is ``x -> resize((x - low) / (high - low))``, with optional grey-to-RGB channel replication.
It is affine; its linear part has l2 operator norm
``resize_norm * sqrt(replication) / (high - low)`` (see :func:`input_operator_norm`), and every
certificate stated in the user's pixel space divides by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from lipsim_tm.checks import (
    check_bool,
    check_choice,
    check_device,
    check_int,
    check_range,
    check_same_device,
    check_same_shape,
    check_tensor,
)

#: Interpolation modes of :func:`torch.nn.functional.interpolate` that are separable linear maps.
INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "area", "nearest", "nearest-exact")
_ANTIALIAS_MODES = ("bicubic", "bilinear")

DataRange = float | tuple[float, float]


def parse_data_range(data_range: object) -> tuple[float, float]:
    """``(low, high)`` from ``data_range``: a number ``r > 0`` means ``[0, r]``; a pair means ``[low, high]``."""
    if isinstance(data_range, bool):
        raise TypeError(f"data_range must be a positive number or a (low, high) pair, got {data_range!r}")
    if isinstance(data_range, (int, float)):
        low, high = 0.0, float(data_range)
    elif isinstance(data_range, (tuple, list)) and len(data_range) == 2:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data_range):
            raise TypeError(f"data_range pair must hold two numbers, got {data_range!r}")
        low, high = float(data_range[0]), float(data_range[1])
    else:
        raise TypeError(f"data_range must be a positive number or a (low, high) pair, got {data_range!r}")
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"data_range must give a finite interval with high > low, got {data_range!r}")
    return low, high


@dataclass(frozen=True)
class Preprocessing:
    """Settings of the map from user images to backbone inputs of shape ``(N, channels, size, size)``.

    Args:
        size: side of the backbone's square input.
        channels: channels the backbone expects.
        data_range: ``r`` for images in ``[0, r]`` (``1.0``: [0, 1], ``255.0``: [0, 255]) or a
            ``(low, high)`` pair (``(-1.0, 1.0)``).
        grayscale: accept ``(N, 1, H, W)`` images, replicated to ``channels`` (operator norm
            ``sqrt(channels)``). When False, one-channel images are refused with a clear error.
        interpolation: resize mode of :func:`torch.nn.functional.interpolate`, one of :data:`INTERPOLATIONS`.
        antialias: antialiasing for ``bicubic``/``bilinear`` (recommended when downsampling).
    """

    size: int
    channels: int = 3
    data_range: DataRange = 1.0
    grayscale: bool = False
    interpolation: str = "bicubic"
    antialias: bool = True

    def __post_init__(self) -> None:
        parse_data_range(self.data_range)
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        check_bool("grayscale", self.grayscale)
        check_bool("antialias", self.antialias)

    @property
    def bounds(self) -> tuple[float, float]:
        return parse_data_range(self.data_range)

    @property
    def span(self) -> float:
        """``high - low``: a distance of ``span`` in user pixels is a distance of 1 in [0, 1] pixels."""
        low, high = self.bounds
        return high - low

    def check(self, images: object, name: str = "images", *, values: bool = True) -> Tensor:
        """Validate ``images`` (see :func:`check_images`); return them."""
        return check_images(images, name, self, values=values)

    def __call__(self, images: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """Backbone input ``(N, channels, size, size)`` in [0, 1] pixels, in ``dtype`` (default: the input's).

        ``images`` must already have passed :meth:`check`.
        """
        x = images.to(dtype) if dtype is not None else images
        low, high = self.bounds
        if (low, high) != (0.0, 1.0):
            x = (x - low) / (high - low)
        x = resize(x, self.size, self.interpolation, self.antialias)
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return x


def check_images(images: object, name: str, prep: Preprocessing, *, values: bool = True) -> Tensor:
    """Raise ``TypeError``/``ValueError`` naming ``name`` unless ``images`` is a valid batch for ``prep``.

    Valid: a floating-point tensor ``(N, C, H, W)`` with ``N >= 1``, ``C == prep.channels`` (or ``C == 1``
    with ``prep.grayscale``), all values finite and within ``data_range``. ``values=False`` checks only the
    tensor's type, dtype and shape (no look at the data, so no device-to-host transfer).
    """
    images = check_tensor(name, images)
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got {images.dtype}; convert uint8 images with"
            " `.float()` and pass data_range=255.0"
        )
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got an empty batch (N = 0)")
    channels = images.shape[1]
    if channels != prep.channels and not (prep.grayscale and channels == 1):
        hint = " (pass grayscale=True for one-channel images)" if channels == 1 else ""
        raise ValueError(f"{name} must have {prep.channels} channels, got shape {tuple(images.shape)}{hint}")
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} must have non-empty spatial size, got shape {tuple(images.shape)}")
    if values:
        low, high = prep.bounds
        check_range(
            name,
            images,
            low,
            high,
            context=f" (data_range={prep.data_range!r})",
            hint="; pass data_range=255.0 for [0, 255] images or data_range=(-1.0, 1.0) for [-1, 1]",
        )
    return images


def check_image_batches(
    images: Mapping[str, object],
    prep: Preprocessing,
    *,
    device: torch.device | None = None,
    owner: str = "the network",
    fix: str = "move them to one device",
    values: bool = True,
) -> None:
    """Validate named image batches of one call before anything runs: each a valid batch for ``prep``
    (:func:`check_images`), all of one shape, and all on one device (``device``, where ``owner`` lives, when given;
    ``fix`` says what to do, ``{name}`` standing for the batch's name)."""
    for name, value in images.items():
        check_tensor(name, value)
    tensors: dict[str, Tensor] = dict(images)  # type: ignore[arg-type]
    if device is None:
        check_same_device(**tensors)
    else:
        for name, value in tensors.items():
            check_device(name, value, device, owner, fix.format(name=name))
    for name, value in tensors.items():
        check_images(value, name, prep, values=values)
    check_same_shape(**tensors)


def resize(x: Tensor, size: int, interpolation: str = "bicubic", antialias: bool = True) -> Tensor:
    """``x`` ``(N, C, H, W)`` resized to ``(N, C, size, size)``; unchanged (identity) when already that size."""
    if x.shape[-2:] == (size, size):
        return x
    return resize_to(x, (size, size), interpolation, antialias)


def resize_to(x: Tensor, out: tuple[int, int], interpolation: str, antialias: bool) -> Tensor:
    """:func:`torch.nn.functional.interpolate` to ``out`` with ``interpolation`` (antialias where it applies)."""
    if interpolation in _ANTIALIAS_MODES:
        return F.interpolate(x, size=out, mode=interpolation, align_corners=False, antialias=antialias)
    return F.interpolate(x, size=out, mode=interpolation)


def resize_matrix(length: int, size: int, interpolation: str, antialias: bool, axis: int) -> Tensor:
    """The float64 ``(size, length)`` matrix of the 1-D resize that :func:`resize` applies along ``axis``.

    Built by resizing the identity: ``length`` one-hot images, each of extent 2 along the other axis
    (kept at 2, which every mode leaves untouched; extent 1 trips a torch antialias kernel that then
    mixes rows). ``axis`` is 2 (height) or 3 (width).
    """
    if length == size:
        return torch.eye(size, dtype=torch.float64)
    eye = torch.eye(length, dtype=torch.float64)
    if axis == 2:
        images, out = eye.reshape(length, 1, length, 1).expand(-1, -1, -1, 2), (size, 2)
    else:
        images, out = eye.reshape(length, 1, 1, length).expand(-1, -1, 2, -1), (2, size)
    resized = resize_to(images.contiguous(), out, interpolation, antialias)
    return resized[:, 0, :, 0].T if axis == 2 else resized[:, 0, 0, :].T


def resize_operator_norm(height: int, width: int, size: int, interpolation: str, antialias: bool) -> float:
    """Exact l2 operator norm of :func:`resize` from ``height x width`` to ``size x size`` (per channel).

    ``height``, ``width``, ``size``: ints ``>= 1``; ``interpolation``: one of :data:`INTERPOLATIONS`;
    ``antialias``: a bool. Anything else raises ``TypeError``/``ValueError`` naming the argument.

    The resize is separable, ``X -> A_h X A_w^T``, i.e. the Kronecker product ``A_h (x) A_w`` acting on
    ``vec(X)``, whose singular values are the products of those of ``A_h`` and ``A_w``. So the norm
    is ``sigma_max(A_h) * sigma_max(A_w)``, computed in float64. Channels are resized independently with
    the same operator, so the norm on ``(C, H, W)`` is the same. Identity (norm 1) at the same size.
    """
    for name, value in (("height", height), ("width", width), ("size", size)):
        check_int(name, value, minimum=1)
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    check_bool("antialias", antialias)
    return _resize_operator_norm(height, width, size, interpolation, antialias)


@lru_cache(maxsize=256)
def _resize_operator_norm(height: int, width: int, size: int, interpolation: str, antialias: bool) -> float:
    """:func:`resize_operator_norm` of checked arguments, cached (an image size recurs on every batch).

    Computed on one thread: these small decompositions gain nothing from the thread pool, and on a machine whose
    cores are busy a pool's threads wait on each other for seconds per call.
    """
    if (height, width) == (size, size):
        return 1.0
    with _one_thread():
        a_h = resize_matrix(height, size, interpolation, antialias, axis=2)
        a_w = resize_matrix(width, size, interpolation, antialias, axis=3)
        return float(torch.linalg.matrix_norm(a_h, ord=2) * torch.linalg.matrix_norm(a_w, ord=2))


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch's intra-op threads set to one for the block, then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def preprocessing_norm(prep: Preprocessing, height: int, width: int) -> float:
    """l2 operator norm of the range map and resize of ``prep`` for user images of size ``height x width``.

    ``resize_norm / (high - low)``: the range map ``x -> (x - low) / (high - low)`` scales by
    ``1 / (high - low)`` (a multiple of the identity, so the product is exact). Grey replication is
    accounted for by :func:`input_operator_norm`.
    """
    return _resize_operator_norm(int(height), int(width), prep.size, prep.interpolation, prep.antialias) / prep.span


def replication_norm(prep: Preprocessing, channels: int) -> float:
    """``sqrt(prep.channels)`` when ``channels == 1 < prep.channels`` (grey replicated), else 1."""
    return math.sqrt(prep.channels) if channels == 1 and prep.channels > 1 else 1.0


def input_operator_norm(prep: Preprocessing, images: Tensor) -> float:
    """Total l2 operator norm of ``prep`` for this batch (its spatial size and channel count).

    :func:`preprocessing_norm` times :func:`replication_norm` (``||[x; x; x]|| = sqrt(3) ||x||``,
    exact since replication commutes with the per-channel resize and scales every vector alike).
    """
    return preprocessing_norm(prep, images.shape[2], images.shape[3]) * replication_norm(prep, images.shape[1])
