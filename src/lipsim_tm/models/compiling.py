"""Optional ``torch.compile`` of the network's forward (never of a torchmetrics ``Metric``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lipsim_tm.models.frozen import FrozenBackbone


def _find_inductor_compiler() -> Callable[[], object]:
    """Inductor's own C++ compiler lookup: ``cpp_builder.get_cpp_compiler`` (torch >= 2.5) or
    ``codecache.cpp_compiler`` (older releases). Raises ``RuntimeError`` naming the torch version when this
    release has neither (then torch.compile cannot be checked, and is refused rather than guessed)."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler
    except ImportError:
        pass
    try:
        from torch._inductor.codecache import cpp_compiler

        return cpp_compiler
    except ImportError as error:
        raise RuntimeError(
            f"compile=True: torch {torch.__version__} has no inductor C++ compiler lookup this package knows"
            " (torch._inductor.cpp_builder.get_cpp_compiler or torch._inductor.codecache.cpp_compiler); pass"
            " compile=False"
        ) from error


def check_inductor_compiler() -> None:
    """Raise ``RuntimeError`` unless inductor (torch.compile's default backend) finds a C++ compiler for CPU kernels."""
    lookup = _find_inductor_compiler()
    try:
        lookup()
    except Exception as error:  # inductor raises its own InvalidCxxCompiler
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
