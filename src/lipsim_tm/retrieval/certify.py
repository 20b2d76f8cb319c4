"""Nearest neighbours of query embeddings in a gallery, with certified radii for the top-1 and the top-k set.

Geometry (exact, any vectors). With ``d_j = ||q - g_j||^2 / 2``, the set of queries whose nearest item
is ``g_i`` is the intersection of the half-spaces ``{q : d_i < d_j}``, bounded by the bisecting hyperplanes
of ``g_i`` and ``g_j``. The distance from ``q`` to the bisecting hyperplane of ``g_i, g_j`` is
``(d_j - d_i) / ||g_i - g_j||``, and the distance from a point inside an intersection of half-spaces to its
complement is the smallest distance to one of their hyperplanes. Hence, in embedding space,

- top-1 radius: ``min over j != i1 of (d_j - d_i1) / ||g_i1 - g_j||``;
- top-k set radius: ``min over i in S, j not in S of (d_j - d_i) / ||g_i - g_j||`` (the set ``S`` stays the
  k nearest while every member stays closer than every non-member).

If the query map ``x -> phi(x)`` is ``L``-Lipschitz in l2, no perturbation of ``x`` with ``||delta|| < r / L``
changes the top-1 (top-k set). Ties (including duplicated gallery items) give radius 0.

Floating point: everything is computed in float64 from the given (float32 or float64) vectors, which are
taken as exact. Dot products of length ``D`` have error at most ``D u |a| |b|`` (``u = 2**-53``); the
numerators are lowered and the squared denominators raised by a slack that bounds every rounding error,
and the result is scaled down by ``1 - 1e-12``, so each reported radius is at most the exact one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lipsim_tm.checks import check_finite, check_int, check_matrix

_U = 2.0**-53
_RESULT_SHRINK = 1.0 - 1e-12


@dataclass(frozen=True)
class Neighbours:
    """Top-k neighbours of ``B`` queries and their certified radii in embedding space.

    Attributes:
        indices: ``(B, k)`` gallery indices, nearest first.
        distances: ``(B, k)`` float64 distances ``||q - g||^2 / 2`` (``1 - cos`` for unit vectors).
        radius_top1: ``(B,)`` float64 embedding-space radius within which the top-1 cannot change.
        radius_topk: ``(B,)`` float64 embedding-space radius within which the top-k set cannot change.
    """

    indices: Tensor
    distances: Tensor
    radius_top1: Tensor
    radius_topk: Tensor


def _check_matrix(name: str, value: object) -> Tensor:
    """``value`` if it is a finite floating-point ``(N, D)`` tensor with ``N >= 1``."""
    check_matrix(name, value)
    if value.shape[0] == 0:  # type: ignore[union-attr]
        raise ValueError(f"{name} must have shape (N, D) with N >= 1, got {tuple(value.shape)}")  # type: ignore[union-attr]
    return check_finite(name, value)  # type: ignore[arg-type]


class PreparedGallery:
    """A gallery ``(M, D)`` checked once and kept in float64 with its squared norms, for repeated searches.

    Holds a float64 copy of the gallery (twice the memory of float32 embeddings) on ``device``.
    """

    def __init__(self, gallery: Tensor, device: torch.device | str | None = None) -> None:
        _check_matrix("gallery", gallery)
        self.vectors = gallery.detach().to(device=device or gallery.device, dtype=torch.float64)
        self.squared_norms = self.vectors.pow(2).sum(dim=1)
        self.max_squared_norm = self.squared_norms.max().item()

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def search(self, queries: Tensor, k: int = 1, *, chunk_elements: int = 1 << 22) -> Neighbours:
        """Top-``k`` items of each query ``(B, D)`` with conservative certified radii (module docstring).

        Args:
            queries: ``(B, D)`` query embeddings, made by the same map as the gallery, on the gallery's device.
            k: number of neighbours, ``1 <= k <= M``.
            chunk_elements: queries go in chunks of about this many ``(query, member, item)`` entries.
        """
        g, g_sq = self.vectors, self.squared_norms
        if isinstance(queries, Tensor) and queries.device != g.device:
            raise ValueError(f"queries are on {queries.device} but the gallery is on {g.device}")
        _check_matrix("queries", queries)
        if queries.shape[1] != g.shape[1]:
            raise ValueError(f"queries have dimension {queries.shape[1]} but the gallery has dimension {g.shape[1]}")
        check_int("k", k, minimum=1, maximum=g.shape[0])
        q_all = queries.detach().to(torch.float64)
        q_sq_all = q_all.pow(2).sum(dim=1)
        dims = g.shape[1]
        # Bound on every squared norm involved, and slacks bounding the rounding of numerators and denominators.
        scale = max(1.0, self.max_squared_norm, q_sq_all.max().item()) * (1 + 1e-6)
        slack_numerator = 10.0 * (dims + 4) * _U * scale
        slack_denominator = 8.0 * (dims + 4) * _U * scale
        rows = max(1, chunk_elements // (k * g.shape[0]))
        parts = []
        for start in range(0, q_all.shape[0], rows):
            q, q_sq = q_all[start : start + rows], q_sq_all[start : start + rows]
            distances = (q_sq[:, None] + g_sq[None, :] - 2.0 * (q @ g.T)) / 2.0  # (b, M)
            top_d, top_i = torch.topk(distances, k, dim=1, largest=False, sorted=True)
            gram = g[top_i] @ g.T  # (b, k, M)
            den_sq = (g_sq[top_i][:, :, None] + g_sq[None, None, :] - 2.0 * gram).clamp_min(0.0) + slack_denominator
            numerator = (distances[:, None, :] - top_d[:, :, None] - slack_numerator).clamp_min(0.0)
            ratio = numerator / den_sq.sqrt()  # (b, k, M): pair radii of member i against item j
            in_set = torch.zeros_like(distances, dtype=torch.bool).scatter_(1, top_i, True)
            is_top1 = torch.zeros_like(in_set).scatter_(1, top_i[:, :1], True)
            top1 = ratio[:, 0, :].masked_fill(is_top1, torch.inf)
            topk = ratio.masked_fill(in_set[:, None, :], torch.inf)
            parts.append((top_i, top_d, top1.amin(dim=1), topk.flatten(1).amin(dim=1)))
        indices, dists, top1_radii, topk_radii = (torch.cat(p) for p in zip(*parts, strict=True))
        return Neighbours(
            indices=indices,
            distances=dists.clamp_min(0.0),  # rounding can take the expanded form of an exact match below 0
            radius_top1=top1_radii * _RESULT_SHRINK,
            radius_topk=topk_radii * _RESULT_SHRINK,
        )
