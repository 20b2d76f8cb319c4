"""``LipSimLoss``: LipSim as a piq-style loss module (a drop-in for ``piq.LPIPS``/``piq.DISTS`` code)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.modules.loss import _Loss

from lipsim_tm.functional.distance import _lipsim_distance_update, check_distance, check_reduction, reduce
from lipsim_tm.functional.embedding import features_of, preprocessing_for
from lipsim_tm.functional.normalization import check_normalization
from lipsim_tm.functional.preprocessing import DataRange, check_image_batches
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.frozen import FrozenBackbone
from lipsim_tm.models.weights import Weights, resolve_backbone


class LipSimLoss(_Loss):
    """LipSim distance as a loss: ``forward(x, y)`` with gradients to both inputs, never to the network.

    piq conventions: inputs ``(N, C, H, W)`` in ``[0, data_range]`` (or a ``(low, high)`` pair),
    ``reduction`` in ``"none"`` / ``"mean"`` / ``"sum"``, a frozen network. Bad input raises
    ``ValueError``/``TypeError`` (never ``assert``). Any ``H, W`` (resized to the network's input size).

    Args:
        weights: see :mod:`lipsim_tm.models.weights`. An instance is shared, not copied: no gradient reaches it
            and its training mode and ``requires_grad`` are left as they are, but ``.to()``/dtype conversions of
            the loss convert it too (see :class:`~lipsim_tm.models.frozen.FrozenBackbone`); built networks are
            frozen.
        distance: ``"cosine"`` (``1 - cos`` on the sphere) or ``"l2"``.
        normalization: ``"augment"`` (default), ``"ball"`` or ``"plain"``.
        data_range, grayscale, interpolation, antialias: see
            :class:`~lipsim_tm.functional.preprocessing.Preprocessing`.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(N,)``).

    The network's weights are not in this module's ``state_dict`` nor in ``parameters()``.
    """

    def __init__(
        self,
        weights: Weights = "default",
        *,
        distance: str = "cosine",
        normalization: str = "augment",
        data_range: DataRange = 1.0,
        reduction: str = "mean",
        grayscale: bool = False,
        interpolation: str = "bicubic",
        antialias: bool = True,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        self.distance = check_distance(distance)
        self.normalization = check_normalization(normalization)
        backbone = resolve_backbone(weights)
        self.net = FrozenBackbone(backbone, owned=not isinstance(weights, LipSimBackbone))
        self.prep = preprocessing_for(
            backbone, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distance between ``x[i]`` and ``y[i]``, reduced; at least float32."""
        images = {"x": x, "y": y}
        check_image_batches(
            images, self.prep, device=self.net.device, owner="the loss's network", fix="call loss.to({name}.device)"
        )
        features_x, features_y = features_of(self.net, torch.cat([x, y]), self.prep, self.net.dtype).chunk(2)
        update = _lipsim_distance_update(
            features_x, features_y, distance=self.distance, normalization=self.normalization
        )
        return reduce(update.distance, self.reduction)
