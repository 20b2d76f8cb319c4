"""Helpers of the retrieval tests: a one-off certified search, and an attack objective that changes a query's
nearest gallery item (to validate the top-1 radii)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lipsim_tm.retrieval.certify import Neighbours, PreparedGallery


def nearest_certified(queries: Tensor, gallery: Tensor, k: int = 1, *, chunk_elements: int = 1 << 22) -> Neighbours:
    """Top-``k`` items of ``gallery (M, D)`` for ``queries (B, D)`` with certified radii (the gallery prepared on the
    queries' device)."""
    return PreparedGallery(gallery, queries.device).search(queries, k, chunk_elements=chunk_elements)


class TopOneChange:
    """Change the nearest gallery item of queries ``(x,)``: ``embed_fn(x) -> (N, D)`` against ``gallery (M, D)``.

    Distances are ``||embed_fn(x) - g||^2 / 2``. The score is ``d(clean top-1) - min over other items of d``:
    success when it is ``> 0`` (another item strictly closer).
    """

    def __init__(self, embed_fn: Callable[[Tensor], Tensor], gallery: Tensor, x: Tensor) -> None:
        if not callable(embed_fn):
            raise TypeError(f"embed_fn must be callable, got {type(embed_fn).__name__}")
        if not isinstance(gallery, Tensor) or gallery.ndim != 2 or gallery.shape[0] < 2:
            raise ValueError("gallery must be a tensor of shape (M, D) with M >= 2")
        self.embed_fn, self.gallery = embed_fn, gallery
        with torch.no_grad():
            #: ``(N,)`` index of each query's clean nearest gallery item.
            self.top1 = self._distances(x).argmin(dim=1)

    def _distances(self, x: Tensor) -> Tensor:
        phi = self.embed_fn(x)
        if not isinstance(phi, Tensor) or phi.ndim != 2 or phi.shape != (x.shape[0], self.gallery.shape[1]):
            got = tuple(phi.shape) if isinstance(phi, Tensor) else type(phi).__name__
            raise ValueError(f"embed_fn must return shape ({x.shape[0]}, {self.gallery.shape[1]}), got {got}")
        gallery = self.gallery.to(device=phi.device, dtype=phi.dtype)
        return torch.cdist(phi, gallery, compute_mode="donot_use_mm_for_euclid_dist").pow(2) / 2

    def __call__(self, images: tuple[Tensor, ...]) -> Tensor:
        (x,) = images
        distances = self._distances(x)
        own = distances.gather(1, self.top1.view(-1, 1)).squeeze(1)
        others = distances.scatter(1, self.top1.view(-1, 1), torch.inf).amin(dim=1)
        return own - others

    def succeeded(self, scores: Tensor) -> Tensor:
        return scores > 0
