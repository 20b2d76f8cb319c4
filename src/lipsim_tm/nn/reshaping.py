"""Shape-changing layers whose Lipschitz bound is exactly 1 (isometries or coordinate projections)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lipsim_tm.checks import check_int


class NormPreservingSumPool2d(nn.Module):
    """Sum over non-overlapping ``k x k`` windows divided by ``k``: ``(N, C, H, W) -> (N, C, H/k, W/k)``.

    Lipschitz bound: 1 in l2, and it is attained. The map is linear; each output is
    ``sum(window) / k``, and by Cauchy-Schwarz ``(sum of k^2 values)^2 <= k^2 * sum of squares``,
    so ``||y||^2 <= ||x||^2`` (equality for constant windows). Identical to
    ``nn.AvgPool2d(k, divisor_override=k)`` of the official code. H and W must be multiples of ``k``.
    """

    def __init__(self, kernel_size: int = 4) -> None:
        super().__init__()
        check_int("kernel_size", kernel_size, minimum=1)
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel_size
        return F.avg_pool2d(x, k, stride=k, divisor_override=k)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class ChannelZeroPad(nn.Module):
    """Append zero channels: ``(N, C_in, H, W) -> (N, C_out, H, W)``.

    Lipschitz bound: 1; it is an isometry (``||pad(x) - pad(y)|| = ||x - y||``).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        check_int("in_channels", in_channels, minimum=1)
        check_int("out_channels", out_channels, minimum=1)
        if out_channels < in_channels:
            raise ValueError(f"out_channels must be >= in_channels={in_channels}, got {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"


class PixelUnshuffle(nn.PixelUnshuffle):
    """Space-to-depth ``(N, C, H, W) -> (N, C r^2, H/r, W/r)``.

    Lipschitz bound: 1; it is a permutation of coordinates, hence an isometry. Unlike an area
    downsample it keeps every pixel (fine noise stays visible to the network).
    """


class Truncate(nn.Module):
    """Keep the first ``features`` coordinates: ``(N, D) -> (N, features)``.

    Lipschitz bound: 1; a coordinate projection never increases the l2 norm of a difference.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        check_int("features", features, minimum=1)
        self.features = features

    def forward(self, x: Tensor) -> Tensor:
        return x[:, : self.features]

    def extra_repr(self) -> str:
        return f"features={self.features}"
