"""A teacher with a fixed input size given student views of any size: ``--teacher export:NAME`` with a student of
another input size.

A LipSim network accepts only its own ``input_size``; the student's views (``tiny32``: 32 px) are resized to it
the way the DreamSim teacher resizes its input (bicubic, antialiased, clamped to [0, 1]).
"""

from __future__ import annotations

from torch import Tensor, nn

from lipsim_tm.functional.preprocessing import resize


class SizedTeacher(nn.Module):
    """``teacher`` (a module taking ``(N, 3, size, size)`` images in [0, 1]) called on ``(N, 3, H, W)`` views
    resized to ``size``; views already ``size`` pass unchanged. Frozen, in eval mode."""

    def __init__(self, teacher: nn.Module, size: int) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.size = size

    def train(self, mode: bool = True) -> SizedTeacher:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-2:] != (self.size, self.size):
            images = resize(images, self.size).clamp(0.0, 1.0)
        return self.teacher(images)
