"""Optional ``torch.compile`` of the network's forward (never of a torchmetrics ``Metric``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


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


def compiled_forward(network: nn.Module) -> Callable[[Tensor], Tensor]:
    """``torch.compile`` of ``network.forward`` (a function, so nothing is registered as a submodule).

    Only the network is compiled: compiling a ``Metric`` would recompile on its changing counters. The
    first call compiles (seconds to minutes on CPU); a new input shape, dtype or device recompiles.
    """
    check_inductor_compiler()
    return torch.compile(network.forward, dynamic=False)
