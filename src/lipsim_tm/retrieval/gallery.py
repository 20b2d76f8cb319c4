"""A gallery of embeddings for certified nearest-neighbour retrieval, savable to and loadable from a file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lipsim_tm.checkpoints.io import atomic_torch_save
from lipsim_tm.functional.normalization import SOUND_NORMALIZATIONS
from lipsim_tm.retrieval.certify import PreparedGallery
from lipsim_tm.retrieval.embedder import Embedder, check_lipschitz_bound

FORMAT = "lipsim-tm/embedding-gallery"
VERSION = 1
_KEYS = {"format", "version", "embeddings", "lipschitz_bound", "normalization"}


@dataclass(frozen=True)
class RetrievalResult:
    """Top-k retrieval for ``B`` queries with certified radii.

    Attributes:
        indices: ``(B, k)`` gallery indices, nearest first.
        distances: ``(B, k)`` float64 ``||phi(q) - g||^2 / 2`` (``1 - cos`` on the unit sphere).
        embedding_radius_top1: ``(B,)`` radius in embedding space within which the top-1 cannot change.
        embedding_radius_topk: ``(B,)`` the same for the top-k set.
        radius_top1: ``(B,)`` l2 radius in image (pixel) space: ``embedding_radius_top1 / lipschitz_bound``;
            ``None`` when the gallery has no Lipschitz bound.
        radius_topk: ``(B,)`` the same for the top-k set, or ``None``.
    """

    indices: Tensor
    distances: Tensor
    embedding_radius_top1: Tensor
    embedding_radius_topk: Tensor
    radius_top1: Tensor | None
    radius_topk: Tensor | None


class EmbeddingGallery:
    """Gallery embeddings ``(M, D)`` with the Lipschitz bound of the map that embeds queries.

    Args:
        embeddings: ``(M, D)`` finite floating-point gallery embeddings.
        lipschitz_bound: l2 Lipschitz bound of images -> query embeddings (pixel space), or ``None``.
        normalization: the normalisation the embeddings were made with (recorded only), or ``None``.

    Treat ``embeddings`` as read-only: searches reuse a float64 copy prepared at the first search.
    """

    def __init__(
        self, embeddings: Tensor, *, lipschitz_bound: float | None = None, normalization: str | None = None
    ) -> None:
        if not isinstance(embeddings, Tensor):
            raise TypeError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}")
        if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
            raise ValueError(f"embeddings must have shape (M, D) with M, D >= 1, got {tuple(embeddings.shape)}")
        if not embeddings.is_floating_point():
            raise TypeError(f"embeddings must be a floating-point tensor, got {embeddings.dtype}")
        if not torch.isfinite(embeddings).all():
            raise ValueError("embeddings must be finite")
        if normalization is not None and normalization not in SOUND_NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {SOUND_NORMALIZATIONS} or None, got {normalization!r}")
        self.embeddings = embeddings.detach()
        self._prepared: PreparedGallery | None = None
        self.lipschitz_bound = None if lipschitz_bound is None else check_lipschitz_bound(lipschitz_bound)
        self.normalization = normalization

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @classmethod
    def build(cls, embedder: Embedder, images: Tensor | Iterable[Tensor], batch_size: int = 64) -> EmbeddingGallery:
        """Embed ``images`` (a ``(M, ...)`` tensor or an iterable of batches) in batches with ``embedder``."""
        if not isinstance(embedder, Embedder):
            raise TypeError(f"embedder must be a lipsim_tm.retrieval.Embedder, got {type(embedder).__name__}")
        return cls(
            embedder.embed_batches(images, batch_size),
            lipschitz_bound=embedder.lipschitz_bound,
            normalization=embedder.normalization,
        )

    def search(self, queries: Tensor, k: int = 1) -> RetrievalResult:
        """Top-``k`` items for query embeddings ``(B, D)`` (made by the gallery's map) with certified radii.

        The first search (or one from another device) prepares a float64 copy of the gallery, reused after.
        """
        device = queries.device if isinstance(queries, Tensor) else self.embeddings.device
        if self._prepared is None or self._prepared.vectors.device != device:
            self._prepared = PreparedGallery(self.embeddings, device)
        found = self._prepared.search(queries, k)
        bound = self.lipschitz_bound
        return RetrievalResult(
            indices=found.indices,
            distances=found.distances,
            embedding_radius_top1=found.radius_top1,
            embedding_radius_topk=found.radius_topk,
            # Dividing by a bound >= the true constant, then shrinking by one part in 1e12, stays conservative.
            radius_top1=None if bound is None else found.radius_top1 / bound * (1 - 1e-12),
            radius_topk=None if bound is None else found.radius_topk / bound * (1 - 1e-12),
        )

    def search_images(self, embedder: Embedder, images: Tensor, k: int = 1, batch_size: int = 64) -> RetrievalResult:
        """Embed query ``images`` with ``embedder`` (its Lipschitz bound must match the gallery's) and search."""
        if not isinstance(embedder, Embedder):
            raise TypeError(f"embedder must be a lipsim_tm.retrieval.Embedder, got {type(embedder).__name__}")
        if embedder.lipschitz_bound != self.lipschitz_bound or embedder.normalization != self.normalization:
            raise ValueError(
                f"embedder (lipschitz_bound={embedder.lipschitz_bound}, normalization={embedder.normalization!r})"
                f" does not match the gallery (lipschitz_bound={self.lipschitz_bound},"
                f" normalization={self.normalization!r})"
            )
        return self.search(embedder.embed_batches(images, batch_size), k)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the gallery to ``path`` atomically (a temporary file in the same folder, then renamed)."""
        path = Path(path)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "embeddings": self.embeddings.cpu().contiguous(),
            "lipschitz_bound": self.lipschitz_bound,
            "normalization": self.normalization,
        }
        atomic_torch_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> EmbeddingGallery:
        """Read a gallery written by :meth:`save`; anything else (other keys, format, version) is refused."""
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise ValueError(f"{path} is not a readable gallery file: {error}") from error
        if not isinstance(payload, dict) or set(payload) != _KEYS:
            got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"{path} is not a gallery file: expected keys {sorted(_KEYS)}, got {got}")
        if payload["format"] != FORMAT or payload["version"] != VERSION:
            raise ValueError(
                f"{path}: expected format {FORMAT!r} version {VERSION}, got {payload['format']!r}"
                f" version {payload['version']!r}"
            )
        return cls(
            payload["embeddings"], lipschitz_bound=payload["lipschitz_bound"], normalization=payload["normalization"]
        )
