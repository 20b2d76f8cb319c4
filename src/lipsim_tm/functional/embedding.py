"""LipSim embeddings of user images: the shared path of every functional call, metric and loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lipsim_tm.functional.normalization import apply_normalization, at_least_float32, check_normalization
from lipsim_tm.functional.preprocessing import DataRange, Preprocessing, input_operator_norm
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.weights import Weights, cached_backbone


def preprocessing_for(
    backbone: LipSimBackbone,
    *,
    data_range: DataRange = 1.0,
    grayscale: bool = False,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> Preprocessing:
    """The :class:`Preprocessing` from user images to ``backbone``'s input size and channels."""
    cfg = backbone.config
    return Preprocessing(
        size=cfg.input_size,
        channels=cfg.in_channels,
        data_range=data_range,
        grayscale=grayscale,
        interpolation=interpolation,
        antialias=antialias,
    )


def features_of(forward: Callable[[Tensor], Tensor], images: Tensor, prep: Preprocessing, dtype: torch.dtype) -> Tensor:
    """Backbone features ``(N, D)`` (network units, before normalisation, at least float32) of validated ``images``."""
    return at_least_float32(forward(prep(images, dtype)))


def embed(
    forward: Callable[[Tensor], Tensor], images: Tensor, prep: Preprocessing, dtype: torch.dtype, normalization: str
) -> Tensor:
    """Normalised embeddings ``(N, D')`` (at least float32) of already validated ``images``.

    ``forward`` maps backbone inputs of dtype ``dtype`` to features (a backbone or a frozen wrapper).
    """
    return apply_normalization(features_of(forward, images, prep, dtype), normalization)


def functional_backbone(weights: Weights, device: torch.device) -> LipSimBackbone:
    """The network a functional call uses on ``device`` (see :func:`~lipsim_tm.models.weights.cached_backbone`).

    Networks named by path or configuration are cached, frozen, with one copy per device (they follow
    the input). A caller's instance is used as is: it must already be on the input's device, and
    gradients reach its parameters if they require grad (use :class:`~lipsim_tm.metrics.LipSimDistance`
    or :class:`~lipsim_tm.losses.LipSimLoss` for a frozen network).
    """
    backbone = cached_backbone(weights, device)
    param = next(backbone.parameters())
    if param.device != device:
        raise ValueError(
            f"weights is a LipSimBackbone on {param.device} but the images are on {device}; move one of them"
            " (the functional API does not copy or move a network you pass)"
        )
    return backbone


def lipsim_embedding(
    images: Tensor,
    *,
    weights: Weights = "default",
    normalization: str = "augment",
    data_range: DataRange = 1.0,
    grayscale: bool = False,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> Tensor:
    """LipSim embeddings ``phi(images)``: ``(N, D')``, at least float32, differentiable in ``images``.

    Args:
        images: ``(N, C, H, W)`` floating-point images in ``data_range``, any ``H, W`` (resized to the
            backbone's input size with ``interpolation``); cast to the backbone's dtype.
        weights: see :mod:`lipsim_tm.models.weights`.
        normalization: ``"augment"`` (default) / ``"ball"`` / ``"plain"``, see
            :func:`~lipsim_tm.functional.normalize_embedding`.
        data_range: ``r`` for images in ``[0, r]`` or a ``(low, high)`` pair.
        grayscale: accept ``(N, 1, H, W)`` images (replicated to the backbone's channels).
        interpolation, antialias: the resize, see :class:`~lipsim_tm.functional.preprocessing.Preprocessing`.

    Guarantee (``"augment"``/``"ball"``): ``||phi(x) - phi(y)|| <= L ||x - y||`` with
    ``L = backbone.lipschitz_bound * ||preprocessing||`` (see :func:`lipschitz_constant`).
    """
    check_normalization(normalization)
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    backbone = functional_backbone(weights, images.device)
    prep = preprocessing_for(
        backbone, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
    )
    prep.check(images, "images")
    return embed(backbone, images, prep, next(backbone.parameters()).dtype, normalization)


def lipschitz_constant(backbone: LipSimBackbone, prep: Preprocessing, images: Tensor) -> float:
    """``L``: Lipschitz bound (l2, user pixels) of ``images -> phi(images)`` for this batch's size and channels."""
    return backbone.lipschitz_bound * input_operator_norm(prep, images)


def check_same_shape(**images: Tensor) -> None:
    """Raise ``ValueError`` unless all named image batches have the same shape."""
    shapes = {name: tuple(value.shape) for name, value in images.items()}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"{' and '.join(shapes)} must have the same shape, got {listing}")


def check_same_device(**images: Tensor) -> None:
    """Raise ``ValueError`` unless all named tensors are on the same device."""
    devices = {name: value.device for name, value in images.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"{' and '.join(devices)} must be on the same device, got {listing}")


def setup_call(
    images: dict[str, Tensor],
    weights: Weights,
    data_range: DataRange,
    grayscale: bool,
    interpolation: str,
    antialias: bool,
) -> tuple[LipSimBackbone, Preprocessing]:
    """Backbone and preprocessing of a functional call on the named image batches, all validated.

    Every batch must be a valid image batch (see :func:`~lipsim_tm.functional.preprocessing.check_images`),
    and all must share one shape and one device.
    """
    for name, value in images.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    check_same_device(**images)
    backbone = functional_backbone(weights, next(iter(images.values())).device)
    prep = preprocessing_for(
        backbone, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
    )
    for name, value in images.items():
        prep.check(value, name)
    check_same_shape(**images)
    return backbone, prep
