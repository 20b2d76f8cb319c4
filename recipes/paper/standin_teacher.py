"""A stand-in for the DreamSim ensemble where the dreamsim package is absent (the smoke run in plain CI).

Same interface as ``--teacher dreamsim``: ``(N, 3, S, S)`` images in [0, 1] -> ``(N, 1792)`` embeddings,
centred and of unit norm as DreamSim's (``normalize_embeds=True``). The map is a fixed random projection of
8x8-average-pooled pixels: it exercises the recipe's commands, it is not a perceptual teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EMBEDDING_DIM = 1792


class StandinTeacher(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(EMBEDDING_DIM, 3 * 8 * 8, generator=generator) / 8**1.5)
        self.embedding_dim = EMBEDDING_DIM

    def forward(self, images: Tensor) -> Tensor:
        pooled = F.adaptive_avg_pool2d(images.to(self.weight.dtype), 8).flatten(1)
        embedding = pooled @ self.weight.T
        embedding = embedding - embedding.mean(dim=1, keepdim=True)
        return embedding / embedding.norm(dim=1, keepdim=True)


def make() -> StandinTeacher:
    return StandinTeacher()
