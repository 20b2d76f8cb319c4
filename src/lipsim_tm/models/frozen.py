"""A backbone used for evaluation only, inside metrics and losses: frozen, eval-mode, out of ``state_dict``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lipsim_tm.models.backbone import LipSimBackbone

#: Maps user image batches to backbone inputs of a dtype (e.g. :class:`~lipsim_tm.functional.Preprocessing`).
Prep = Callable[[Tensor, torch.dtype], Tensor]


class FrozenBackbone(nn.Module):
    """Wraps a :class:`LipSimBackbone` so that nothing outside can train it, and it can train nothing.

    - ``forward(x)`` runs the backbone with *detached* parameters (:func:`torch.func.functional_call`):
      gradients flow to ``x`` but never to the backbone's parameters, whatever their ``requires_grad``.
    - ``train(mode)`` sets only this wrapper's own ``training`` flag, which nothing reads: the backbone's mode
      is never changed by it (an owned backbone stays in eval; a shared one keeps its owner's mode). The flag
      follows the parent so that frameworks that look for modules left in eval mode at the start of training
      (Lightning's ``PossibleUserWarning``) find none.
    - The backbone is deliberately not a registered submodule: its weights are not in ``state_dict()``
      (a LightningModule holding the metric gets no extra checkpoint keys; the weights are defined by the
      metric's ``weights`` argument), not in ``parameters()`` (a parent's optimizer cannot pick them up),
      and a parent's ``train()``/``requires_grad_()`` cannot reach them. ``.to()``, ``.cuda()``, ``.double()``
      and every other ``_apply`` conversion do reach it, so ``metric.to(device)`` moves the backbone.

    Args:
        backbone: the network.
        owned: True when the network was built for this wrapper (from a path or a configuration name): it
            is then frozen in place (``requires_grad_(False)``, eval). False for a caller's instance, which
            is shared, never copied, and whose ``requires_grad`` and training mode are left untouched
            (a trainer can keep training it; the wrapper always sees its current weights). A shared
            instance in training mode recomputes its SLL rescalings on every call (same numbers, slower).
            Note that ``.to()``/dtype conversions of the wrapper then convert the caller's instance too.
    """

    def __init__(self, backbone: LipSimBackbone, *, owned: bool) -> None:
        super().__init__()
        if not isinstance(backbone, LipSimBackbone):
            raise TypeError(f"backbone must be a LipSimBackbone, got {type(backbone).__name__}")
        object.__setattr__(self, "backbone", backbone)
        self.owned = owned
        if owned:
            backbone.requires_grad_(False).eval()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> FrozenBackbone:
        super()._apply(fn, recurse)
        if recurse:
            self.backbone._apply(fn, recurse)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return next(self.backbone.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def forward(self, *images: Tensor, prep: Prep | None = None) -> Tensor:
        """Features ``(N, out_features)``; no gradient to the weights.

        Without ``prep``: of one batch of backbone inputs ``(N, C, S, S)``. With ``prep``: of user image
        batches ``images`` (concatenated along ``N``, then mapped to backbone inputs of the network's dtype by
        ``prep``). The second form takes the caller's own tensors, so torchmetrics' ``FeatureShare`` (whose
        cache is keyed on the call's arguments) serves every metric fed the same batch from one forward pass.
        """
        if prep is None:
            if len(images) != 1:
                raise TypeError(f"without prep, forward takes one batch of backbone inputs, got {len(images)}")
            (x,) = images
        else:
            x = prep(images[0] if len(images) == 1 else torch.cat(images), self.dtype)
        detached = {name: p.detach() for name, p in self.backbone.named_parameters()}
        return torch.func.functional_call(self.backbone, detached, (x,))

    def extra_repr(self) -> str:
        return f"config={self.backbone.config}, owned={self.owned}"


def unwrap_frozen(net: nn.Module) -> FrozenBackbone:
    """The :class:`FrozenBackbone` behind ``net`` (itself, or inside a torchmetrics ``NetworkCache``)."""
    inner = getattr(net, "network", net)
    if not isinstance(inner, FrozenBackbone):
        raise TypeError(f"expected a FrozenBackbone (possibly shared by FeatureShare), got {type(inner).__name__}")
    return inner
