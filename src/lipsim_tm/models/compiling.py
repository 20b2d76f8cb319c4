"""Optional ``torch.compile`` of the network's forward (never of a torchmetrics ``Metric``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lipsim_tm.models.frozen import FrozenBackbone


def check_inductor_compiler() -> None:
    """Raise ``RuntimeError`` unless inductor (torch.compile's default backend) finds a C++ compiler for CPU kernels."""
    try:
        from torch._inductor import cpp_builder

        cpp_builder.get_cpp_compiler()
    except Exception as error:  # inductor raises its own InvalidCxxCompiler (or an import error)
        raise RuntimeError(
            "compile=True needs a C++ compiler: torch.compile's inductor backend builds CPU kernels with one"
            f" and none is usable here ({type(error).__name__}: {error}). Install g++ (or set CXX), or pass"
            " compile=False"
        ) from error


def compiled_forward(network: FrozenBackbone) -> Callable[[Tensor], Tensor]:
    """A forward of ``network`` whose network part runs through ``torch.compile`` (nothing is registered as a module).

    Only the network is compiled (compiling a ``Metric`` would recompile on its changing counters), and only
    its pure cached form :meth:`~lipsim_tm.models.backbone.LipSimBackbone.cached_forward`: the rescaling cache's
    bookkeeping (pointer and version checks) stays eager, so one graph serves every call and parameter
    updates of a shared backbone need no recompilation. Where the cache is unusable (a shared backbone in
    training mode, or recording gradients to its parameters) the call runs eagerly. The first call compiles
    (tens of seconds on CPU); a new input shape, dtype or device recompiles.
    """
    check_inductor_compiler()
    backbone = network.backbone
    graph = torch.compile(backbone.cached_forward, dynamic=False)

    def forward(x: Tensor) -> Tensor:
        tensors = backbone.inference_tensors()
        return network(x) if tensors is None else graph(x, tensors)

    return forward
