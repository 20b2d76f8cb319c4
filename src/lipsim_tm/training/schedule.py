"""Learning-rate schedule: linear warm-up then cosine decay (the official LipSim recipe)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from lipsim_tm.checks import check_int, check_number


@dataclass(frozen=True)
class WarmupCosine:
    """Multiplier of the base learning rate after ``step`` optimiser steps.

    ``(step + 1) / warmup_steps`` during warm-up, then ``min_factor + (1 - min_factor) *
    (1 + cos(pi * progress)) / 2`` with ``progress = (step - warmup_steps) / (total_steps - warmup_steps)``
    clipped to [0, 1]. A frozen dataclass (not a closure), so ``LambdaLR.state_dict`` records it.
    """

    warmup_steps: int
    total_steps: int
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_int("total_steps", self.total_steps, minimum=1)
        check_number("min_factor", self.min_factor, minimum=0.0, maximum=1.0)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min(max((step - self.warmup_steps) / span, 0.0), 1.0)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: Optimizer, *, warmup_steps: int, total_steps: int, min_factor: float = 0.0
) -> LambdaLR:
    """A ``LambdaLR`` stepping :class:`WarmupCosine` once per optimiser step."""
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, min_factor))
