"""SDP-based Lipschitz layers (SLL) with the exact semantics of the official LipSim code."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipsim_tm.checks import check_int
from lipsim_tm.nn.rescaling import CachedRescaling, safe_reciprocal


class SLLConv2d(CachedRescaling):
    """Residual SLL convolution ``x - 2 * conv_transpose(t * relu(conv(x, K) + b), K)``.

    Shapes: input and output ``(N, channels, H, W)``; kernel ``K`` is ``(inner, channels, 3, 3)``,
    padding 1, stride 1, so H and W are kept.

    Lipschitz bound: 1 in l2. With ``G = conv2d(K, K, padding=2)`` (the Gram operator of the
    convolution, shape ``(inner, inner, 5, 5)``), ``t_i = 1 / sum_{j,u,v} |G_ijuv|`` bounds the Gram
    operator's rows (Gershgorin), which is the condition of Araujo et al. (2023, Thm. 3) for
    ``x - 2 W^T T sigma(W x + b)`` to be 1-Lipschitz with any 1-Lipschitz monotone ``sigma`` (ReLU).
    A row with ``t_i = 1 / 0`` has ``K_i = 0`` and is mapped to 0.

    ``q`` (shape ``(inner,)``) is kept for checkpoint compatibility. In the official code it
    multiplies ``exp(-q)`` and ``exp(q)`` along the same index, so it cancels and has no effect; that
    is the default here (``q_scaled=False``). ``q_scaled=True`` uses the intended (and equally sound)
    ``t_i = 1 / sum_j |G_ij| exp(q_j - q_i)``.
    """

    def __init__(self, channels: int, inner: int, *, q_scaled: bool = False) -> None:
        super().__init__()
        check_int("channels", channels, minimum=1)
        check_int("inner", inner, minimum=1)
        self.channels = channels
        self.inner = inner
        self.q_scaled = q_scaled
        self.kernel = nn.Parameter(torch.empty(inner, channels, 3, 3))
        self.bias = nn.Parameter(torch.empty(1, inner, 1, 1))
        self.q = nn.Parameter(torch.empty(inner))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: xavier-normal kernel, ``q ~ N(0, 1)``, uniform bias."""
        nn.init.xavier_normal_(self.kernel)
        bound = 1.0 / math.sqrt(self.channels * 9)
        nn.init.uniform_(self.bias, -bound, bound)
        nn.init.normal_(self.q)

    def compute_rescaling(self) -> Tensor:
        gram = F.conv2d(self.kernel, self.kernel, padding=2).abs().sum(dim=(2, 3))  # (inner, inner)
        if self.q_scaled:
            gram = gram * torch.exp(self.q[None, :] - self.q[:, None])
        return safe_reciprocal(gram.sum(dim=1))

    def build_inference_tensors(self) -> dict[str, Tensor]:
        t = self.compute_rescaling()
        # -2 conv_transpose2d(t * h, K) == conv2d(h, flip(transpose(-2 t K))): one plain convolution,
        # with the rescaling, the factor 2 and the sign folded into its kernel.
        back = (-2.0 * t.reshape(-1, 1, 1, 1) * self.kernel).transpose(0, 1).flip(2, 3).contiguous()
        return {
            "rescaling": t,
            "kernel": self.kernel.detach(),
            "bias": self.bias.reshape(-1).contiguous(),
            "negative_back_kernel": back,
        }

    @staticmethod
    def cached_forward(x: Tensor, tensors: dict[str, Tensor]) -> Tensor:
        """The layer from its :meth:`build_inference_tensors` alone (a pure function, traceable by torch.compile)."""
        # In-place ReLU and residual add: no fresh activation-sized allocations (page faults on CPU).
        hidden = F.conv2d(x, tensors["kernel"], tensors["bias"], padding=1).relu_()
        return F.conv2d(hidden, tensors["negative_back_kernel"], padding=1).add_(x)

    def forward(self, x: Tensor) -> Tensor:
        cached = self.inference_tensors()
        if cached is not None:
            return self.cached_forward(x, cached)
        t = self.compute_rescaling().reshape(1, -1, 1, 1)
        hidden = t * F.relu(F.conv2d(x, self.kernel, padding=1) + self.bias)
        return x - 2.0 * F.conv_transpose2d(hidden, self.kernel, padding=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, inner={self.inner}, q_scaled={self.q_scaled}"


class SLLLinear(CachedRescaling):
    """Residual SLL dense layer ``x - 2 * W^T (t * relu(W x + b))``.

    Shapes: input and output ``(N, features)``; ``W`` is ``(inner, features)``.

    Lipschitz bound: 1 in l2, by the same theorem as :class:`SLLConv2d` with
    ``t_i = 1 / sum_j |exp(-q_i) (W W^T)_ij exp(q_j)|`` (scaled Gershgorin with weights ``exp(q)``);
    ``1 / 0 -> 0``. The ``inner x inner`` Gram matrix costs ``inner^2 * features`` MACs; in inference
    it is cached (see :class:`~lipsim_tm.nn.rescaling.CachedRescaling`).
    """

    def __init__(self, features: int, inner: int) -> None:
        super().__init__()
        check_int("features", features, minimum=1)
        check_int("inner", inner, minimum=1)
        self.features = features
        self.inner = inner
        self.weight = nn.Parameter(torch.empty(inner, features))
        self.bias = nn.Parameter(torch.empty(1, inner))
        self.q = nn.Parameter(torch.empty(inner))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: xavier-normal weight, ``q ~ N(0, 1)``, uniform bias."""
        nn.init.xavier_normal_(self.weight)
        bound = 1.0 / math.sqrt(self.features)
        nn.init.uniform_(self.bias, -bound, bound)
        nn.init.normal_(self.q)

    def compute_rescaling(self) -> Tensor:
        gram = (self.weight @ self.weight.T).abs()
        scaled = gram * torch.exp(self.q[None, :] - self.q[:, None])
        return safe_reciprocal(scaled.sum(dim=1))

    def build_inference_tensors(self) -> dict[str, Tensor]:
        return {"rescaling": self.compute_rescaling(), "weight": self.weight.detach(), "bias": self.bias.reshape(-1)}

    @staticmethod
    def cached_forward(x: Tensor, tensors: dict[str, Tensor]) -> Tensor:
        """The layer from its :meth:`build_inference_tensors` alone (a pure function, traceable by torch.compile)."""
        return _dense_residual(x, tensors["weight"], tensors["bias"], tensors["rescaling"])

    def forward(self, x: Tensor) -> Tensor:
        cached = self.inference_tensors()
        if cached is not None:
            return self.cached_forward(x, cached)
        return _dense_residual(x, self.weight, self.bias.reshape(-1), self.compute_rescaling())

    def extra_repr(self) -> str:
        return f"features={self.features}, inner={self.inner}"


def _dense_residual(x: Tensor, weight: Tensor, bias: Tensor, rescaling: Tensor) -> Tensor:
    """``x - 2 W^T (t * relu(W x + b))`` for ``x`` ``(N, features)``."""
    hidden = rescaling * F.relu(F.linear(x, weight, bias))
    return x - 2.0 * (hidden @ weight)
