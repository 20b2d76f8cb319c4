"""Literal, unoptimised oracle of the official LipSim network (reference section 3) and its checkpoints.

Written as plainly as the formulas, independently of ``lipsim_tm`` (nothing here imports it), with
the official module structure so that ``state_dict()`` has exactly the official keys:

    OfficialDataParallel.module = OfficialNormalizedModel
    OfficialNormalizedModel.model = OfficialL2LipschitzNetwork
        .convs = ModuleList(conv_0 .. conv_{depth-1})
        .linear = Sequential(Flatten, dense_1 .. dense_{depth_linear})
        .base = Sequential(pad, Sequential(conv_0 .. conv_{depth-1}, pool, pool), linear)

so every parameter appears under two aliases (``module.model.convs.i`` / ``module.model.base.1.i``
and ``module.model.linear.k`` / ``module.model.base.2.k``). Every rescaling vector is recomputed on
every call, the conv layer keeps the official ``exp(-q)`` / ``exp(q)`` factors broadcast along the
same index (so they cancel), and ``1/0 -> 0``. It is the reference every fast path is tested against
and the "official-style forward" baseline of the benchmarks.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def safe_inv(x: Tensor) -> Tensor:
    """``1 / x`` elementwise with ``1 / 0`` mapped to 0 (the official ``safe_inv``)."""
    mask = x == 0
    x_inv = x ** (-1)
    x_inv[mask] = 0
    return x_inv


class OfficialConvLayer(nn.Module):
    """SLL conv: ``x - 2 conv_transpose(t * relu(conv(x, K) + b), K)``, K ``(inner, channels, 3, 3)``."""

    def __init__(self, channels: int, inner: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(inner, channels, 3, 3))
        self.bias = nn.Parameter(torch.empty(1, inner, 1, 1))
        self.q = nn.Parameter(torch.empty(inner))
        nn.init.xavier_normal_(self.kernel, generator=generator)
        bound = 1 / math.sqrt(channels * 3 * 3)
        nn.init.uniform_(self.bias, -bound, bound, generator=generator)
        nn.init.normal_(self.q, generator=generator)

    def rescaling(self) -> Tensor:
        """``t`` of shape ``(inner,)``, with the official (cancelling) q factors."""
        ktk = F.conv2d(self.kernel, self.kernel, padding=2)  # (inner, inner, 5, 5)
        q = torch.exp(self.q).reshape(-1, 1, 1, 1)
        q_inv = torch.exp(-self.q).reshape(-1, 1, 1, 1)
        t = torch.abs(q_inv * ktk * q).sum((1, 2, 3))
        return safe_inv(t)

    def forward(self, x: Tensor) -> Tensor:
        t = self.rescaling().reshape(1, -1, 1, 1)
        res = F.conv2d(x, self.kernel, padding=1)
        res = res + self.bias
        res = t * F.relu(res)
        res = 2 * F.conv_transpose2d(res, self.kernel, padding=1)
        return x - res


class OfficialLinearLayer(nn.Module):
    """SLL dense: ``x - 2 W^T (t * relu(W x + b))``, W ``(inner, features)``."""

    def __init__(self, features: int, inner: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(inner, features))
        self.bias = nn.Parameter(torch.empty(1, inner))
        self.q = nn.Parameter(torch.empty(inner))
        nn.init.xavier_normal_(self.weight, generator=generator)
        bound = 1 / math.sqrt(features)
        nn.init.uniform_(self.bias, -bound, bound, generator=generator)
        nn.init.normal_(self.q, generator=generator)

    def rescaling(self) -> Tensor:
        """``t_i = 1 / sum_j |exp(-q_i) (W W^T)_ij exp(q_j)|``, shape ``(inner,)``."""
        q = torch.exp(self.q)[None, :]
        q_inv = torch.exp(-self.q)[:, None]
        t = torch.abs(q_inv * (self.weight @ self.weight.T) * q).sum(1)
        return safe_inv(t)

    def forward(self, x: Tensor) -> Tensor:
        t = self.rescaling()
        res = F.linear(x, self.weight)
        res = res + self.bias
        res = t * F.relu(res)
        res = 2 * F.linear(res, self.weight.T)
        return x - res


class PaddingChannels(nn.Module):
    """Zero-pad ``(N, C, H, W)`` to ``(N, channels, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        zeros = torch.zeros(
            x.shape[0], self.channels - x.shape[1], x.shape[2], x.shape[3], dtype=x.dtype, device=x.device
        )
        return torch.cat([x, zeros], dim=1)


class OfficialL2LipschitzNetwork(nn.Module):
    """``(N, 3, S, S) -> (N, out_features)``: pad, ``depth`` convs, two 4x4 sum-pools / 4, flatten,
    ``depth_linear`` dense layers, truncation. Defaults are the released ``small`` model."""

    def __init__(
        self,
        depth: int = 20,
        num_channels: int = 45,
        conv_size: int = 5,
        input_size: int = 224,
        depth_linear: int = 7,
        n_features: int = 1024,
        out_features: int = 1792,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.out_features = out_features
        flat = num_channels * (input_size // 16) ** 2
        convs = [OfficialConvLayer(num_channels, conv_size, generator) for _ in range(depth)]
        dense = [OfficialLinearLayer(flat, n_features, generator) for _ in range(depth_linear)]
        self.convs = nn.ModuleList(convs)
        self.linear = nn.Sequential(nn.Flatten(), *dense)
        pool = nn.AvgPool2d(4, divisor_override=4)
        self.base = nn.Sequential(PaddingChannels(num_channels), nn.Sequential(*convs, pool, pool), self.linear)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x)[:, : self.out_features]


class OfficialNormalizedModel(nn.Module):
    """``model((x - mean) / std)`` with mean 0 and std 1 (plain floats, no buffers), as released."""

    def __init__(self, model: nn.Module, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.mean = mean
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)


class OfficialDataParallel(nn.Module):
    """Stand-in for ``nn.DataParallel``: only the ``module.`` key prefix matters."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)


#: A small official network (2 conv layers of 8 channels, 32 px, 2 dense layers of 16, 20 outputs) for fast tests.
TINY_OFFICIAL_SIZES: dict[str, int] = {
    "depth": 2,
    "num_channels": 8,
    "conv_size": 3,
    "input_size": 32,
    "depth_linear": 2,
    "n_features": 16,
    "out_features": 20,
}


def build_official_model(seed: int = 0, **sizes: int) -> OfficialDataParallel:
    """The wrapped official network with official initialisation from ``seed``; ``sizes`` are the
    keyword arguments of :class:`OfficialL2LipschitzNetwork` (defaults: ``small``)."""
    generator = torch.Generator().manual_seed(seed)
    return OfficialDataParallel(OfficialNormalizedModel(OfficialL2LipschitzNetwork(generator=generator, **sizes)))


def save_official_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    epoch: int = 40,
    global_step: int = 100_000,
    with_scheduler: bool = True,
) -> None:
    """Write ``model`` (a wrapped official network) as an official training checkpoint.

    Layout (reference section 4): ``{"epoch", "global_step", "model_state_dict",
    "optimizer_state_dict", "scheduler"?}``. The Adam state is that of a fresh optimizer with the
    official hyper-parameters (no moment buffers, which keeps test files small).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.5, 0.9), weight_decay=0.0)
    checkpoint: dict[str, object] = {
        "epoch": epoch,
        "global_step": global_step,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
    }
    if with_scheduler:
        checkpoint["scheduler"] = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=global_step).state_dict()
    torch.save(checkpoint, path)


SMALL_SIZES = {
    "depth": 20,
    "num_channels": 45,
    "conv_size": 5,
    "input_size": 224,
    "depth_linear": 7,
    "n_features": 1024,
    "out_features": 1792,
}


def lipsim_config_fields(**sizes: int) -> dict[str, object]:
    """Keyword arguments of ``lipsim_tm.LipSimConfig`` describing the same network as ``sizes`` (the
    keyword arguments of :class:`OfficialL2LipschitzNetwork`, defaults ``small``)."""
    s = {**SMALL_SIZES, **sizes}
    return {
        "input_size": s["input_size"],
        "channels": s["num_channels"],
        "conv_inner": s["conv_size"],
        "conv_stages": (s["depth"], 0),
        "pool_size": 4,
        "dense_depth": s["depth_linear"],
        "dense_inner": s["n_features"],
        "out_features": s["out_features"],
    }
