"""Rescaling vectors of SLL layers and their inference cache.

An SLL layer ``x - 2 W^T T relu(W x + b)`` is 1-Lipschitz whenever the diagonal ``T`` satisfies
``W^T T W <= T^{-1}``-type conditions; Araujo et al. (2023, Thm. 3) show that
``T_ii = 1 / sum_j |W W^T|_ij q_j / q_i`` (for any positive ``q``) suffices. The Gram operator
``W W^T`` of a dense layer costs ``inner^2 * features`` MACs (9.25 GMAC for LipSim ``small``), so in
inference the vector is computed once and reused until the parameters change.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

import torch
from torch import Tensor, nn


def safe_reciprocal(x: Tensor) -> Tensor:
    """Elementwise ``1 / x`` with ``1 / 0 -> 0`` (the official convention), with finite gradients."""
    is_zero = x == 0
    return torch.where(is_zero, torch.zeros_like(x), 1.0 / torch.where(is_zero, torch.ones_like(x), x))


class CachedRescaling(nn.Module):
    """Base of the SLL layers: computes the rescaling vector, caching it when that is safe.

    The cache is used when the layer is in eval mode and no gradient with respect to the layer's
    parameters is being recorded (a frozen metric backbone, ``torch.no_grad``, ``inference_mode``).
    It is keyed on every parameter's storage pointer, autograd version counter, dtype and device, so
    optimiser steps, ``load_state_dict``, ``nn.init`` calls and ``.to()`` all invalidate it. Writes
    through ``param.data`` bypass the version counter: call :meth:`clear_rescaling_cache` after them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._inference_tensors: dict[str, Tensor] | None = None
        self._inference_key: tuple | None = None

    @abstractmethod
    def compute_rescaling(self) -> Tensor:
        """The rescaling vector ``t`` of shape ``(inner,)``, recomputed from the parameters."""

    def build_inference_tensors(self) -> dict[str, Tensor]:
        """Tensors derived from the parameters once per parameter change; at least ``"rescaling"``."""
        return {"rescaling": self.compute_rescaling()}

    def _rescaling_parameters(self) -> Iterator[nn.Parameter]:
        return self.parameters(recurse=False)

    def _can_use_cache(self) -> bool:
        if self.training:
            return False
        if not torch.is_grad_enabled():
            return True
        return not any(p.requires_grad for p in self._rescaling_parameters())

    def inference_tensors(self) -> dict[str, Tensor] | None:
        """The cached :meth:`build_inference_tensors`, or ``None`` where the cache must not be used."""
        if not self._can_use_cache():
            return None
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self._rescaling_parameters())
        if self._inference_tensors is None or key != self._inference_key:
            # Normal (non-inference) tensors, so they can later be saved for backward to the inputs.
            with torch.inference_mode(False), torch.no_grad():
                self._inference_tensors = self.build_inference_tensors()
            self._inference_key = key
        return self._inference_tensors

    def rescaling(self) -> Tensor:
        """The rescaling vector, from the cache when it is valid and usable (see class docstring)."""
        cached = self.inference_tensors()
        return self.compute_rescaling() if cached is None else cached["rescaling"]

    def clear_rescaling_cache(self) -> None:
        """Drop the cached tensors (needed only after writes through ``param.data``)."""
        self._inference_tensors = None
        self._inference_key = None
