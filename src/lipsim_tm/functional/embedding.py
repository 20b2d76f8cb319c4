"""From user images to backbone features and their Lipschitz bound: the first step of every LipSim computation.

:func:`features_of` is the one path from validated images to features (network units, before normalisation);
:func:`lipschitz_constant` the bound ``L`` of ``image -> phi(image)`` in the caller's pixels. The metric and
distance cores (:mod:`.distance`, :mod:`.two_afc`) take both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from lipsim_tm.checks import check_tensor
from lipsim_tm.functional.certificates.policy import check_certifiable
from lipsim_tm.functional.normalization import apply_normalization, at_least_float32, check_normalization
from lipsim_tm.functional.preprocessing import DataRange, Preprocessing, check_image_batches, input_operator_norm
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
    """Backbone features ``(N, D)`` (network units, before normalisation, at least float32) of validated ``images``.

    ``forward`` maps backbone inputs of dtype ``dtype`` to features (a backbone, a frozen or compiled wrapper).
    """
    return at_least_float32(forward(prep(images, dtype)))


def lipschitz_constant(backbone: LipSimBackbone, prep: Preprocessing, images: Tensor) -> float:
    """``L``: Lipschitz bound (l2, user pixels) of ``images -> phi(images)`` for this batch's size and channels."""
    return backbone.lipschitz_bound * input_operator_norm(prep, images)


def network_dtype(backbone: LipSimBackbone) -> torch.dtype:
    """The dtype of ``backbone``'s parameters (inputs are cast to it)."""
    return next(backbone.parameters()).dtype


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


def prepare_call(
    images: Mapping[str, object],
    weights: Weights,
    *,
    data_range: DataRange,
    grayscale: bool,
    interpolation: str,
    antialias: bool,
    certify: bool = False,
) -> tuple[LipSimBackbone, Preprocessing]:
    """Backbone and preprocessing of a functional call on the named image batches, all validated (each a valid
    batch, one shape, one device; see :func:`~lipsim_tm.functional.preprocessing.check_image_batches`), and with
    ``certify`` the network's dtype checked (:func:`~lipsim_tm.functional.certificates.policy.check_certifiable`)."""
    for name, value in images.items():
        check_tensor(name, value)
    first: Tensor = next(iter(images.values()))  # type: ignore[assignment]
    backbone = functional_backbone(weights, first.device)
    if certify:
        check_certifiable(network_dtype(backbone))
    prep = preprocessing_for(
        backbone, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
    )
    check_image_batches(images, prep)
    return backbone, prep


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
    options = {"data_range": data_range, "grayscale": grayscale, "interpolation": interpolation, "antialias": antialias}
    backbone, prep = prepare_call({"images": images}, weights, **options)
    return apply_normalization(features_of(backbone, images, prep, network_dtype(backbone)), normalization)
