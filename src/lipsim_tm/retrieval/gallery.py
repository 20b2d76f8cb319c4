"""A gallery of embeddings for certified nearest-neighbour retrieval, savable to and loadable from a file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lipsim_tm.checks import check_choice, check_finite, check_matrix
from lipsim_tm.files import atomic_torch_save
from lipsim_tm.functional.certificates.norm_aware import NORM_FLOORS, invert_shift
from lipsim_tm.functional.certificates.policy import CERTIFICATES, RELATIVE_SLACK
from lipsim_tm.functional.normalization import SOUND_NORMALIZATIONS
from lipsim_tm.models.checkpoints.io import read_checkpoint
from lipsim_tm.retrieval.certify import PreparedGallery
from lipsim_tm.retrieval.embedder import Embedder, check_lipschitz_bound

FORMAT = "lipsim-tm/embedding-gallery"
VERSION = 2
#: The keys of a gallery file, per version (version 1 had no labels and no source).
_KEYS = {
    1: {"format", "version", "embeddings", "lipschitz_bound", "normalization"},
    2: {"format", "version", "embeddings", "lipschitz_bound", "normalization", "labels", "source"},
}
#: The hint of a file that is not a gallery.
_WRITTEN_BY = "galleries are written by 'lipsim retrieve index PHOTOS/ --out GALLERY.pt' or EmbeddingGallery.save"


@dataclass(frozen=True)
class RetrievalResult:
    """Top-k retrieval for ``B`` queries with certified radii.

    Attributes:
        indices: ``(B, k)`` gallery indices, nearest first.
        distances: ``(B, k)`` float64 ``||phi(q) - g||^2 / 2`` (``1 - cos`` on the unit sphere).
        embedding_radius_top1: ``(B,)`` radius in embedding space within which the top-1 cannot change.
        embedding_radius_topk: ``(B,)`` the same for the top-k set.
        radius_top1: ``(B,)`` l2 radius in image (pixel) space: ``embedding_radius_top1 / lipschitz_bound``
            (plain rule), or with query norms the larger of that and the norm-aware radius
            ``invert_shift(embedding_radius_top1, n, m) / lipschitz_bound`` (see
            :mod:`~lipsim_tm.functional.certificates`: the normalised query moves by at most
            ``B(L eps, n, m) <= L eps``); ``None`` when the gallery has no Lipschitz bound.
        radius_topk: ``(B,)`` the same for the top-k set, or ``None``.
        certificate: ``"norm_aware"`` when query norms were used, else ``"plain"``.
    """

    indices: Tensor
    distances: Tensor
    embedding_radius_top1: Tensor
    embedding_radius_topk: Tensor
    radius_top1: Tensor | None
    radius_topk: Tensor | None
    certificate: str = "plain"


class EmbeddingGallery:
    """Gallery embeddings ``(M, D)`` with the Lipschitz bound of the map that embeds queries.

    Args:
        embeddings: ``(M, D)`` finite floating-point gallery embeddings.
        lipschitz_bound: l2 Lipschitz bound of images -> query embeddings (pixel space), or ``None``.
        normalization: the normalisation the embeddings were made with (recorded only), or ``None``.
        labels: optional name of each item (e.g. its image file), ``M`` strings.
        source: optional plain-value description of what built the gallery (weights name and sha256 ...).

    Treat ``embeddings`` as read-only: searches reuse a float64 copy prepared at the first search.
    """

    def __init__(
        self,
        embeddings: Tensor,
        *,
        lipschitz_bound: float | None = None,
        normalization: str | None = None,
        labels: list[str] | None = None,
        source: dict[str, str] | None = None,
    ) -> None:
        check_matrix("embeddings", embeddings)
        if embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
            raise ValueError(f"embeddings must have shape (M, D) with M, D >= 1, got {tuple(embeddings.shape)}")
        check_finite("embeddings", embeddings)
        if normalization is not None:
            check_choice("normalization", normalization, SOUND_NORMALIZATIONS)
        if labels is not None and (
            not isinstance(labels, list)
            or len(labels) != embeddings.shape[0]
            or not all(isinstance(x, str) for x in labels)
        ):
            raise ValueError(f"labels must be a list of {embeddings.shape[0]} strings, one per embedding")
        if source is not None and not isinstance(source, dict):
            raise TypeError(f"source must be a dict, got {type(source).__name__}")
        self.labels, self.source = labels, source
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

    def search(
        self,
        queries: Tensor,
        k: int = 1,
        *,
        query_norms: Tensor | None = None,
        lipschitz_bound: float | None = None,
    ) -> RetrievalResult:
        """Top-``k`` items for query embeddings ``(B, D)`` (made by the gallery's map) with certified radii.

        ``query_norms``: float64 ``(B,)`` effective pre-normalisation norms of the queries (from
        ``Embedder.embed_batches(..., with_norms=True)``) for norm-aware image-space radii; needs the
        gallery's ``normalization`` (``"augment"`` or ``"ball"``). The first search (or one from another
        device) prepares a float64 copy of the gallery, reused after. ``lipschitz_bound``: the bound of these
        queries' map from their pixels (e.g. :meth:`Embedder.image_lipschitz` for their size); default the
        gallery's.
        """
        bound = self.lipschitz_bound if lipschitz_bound is None else check_lipschitz_bound(lipschitz_bound)
        device = queries.device if isinstance(queries, Tensor) else self.embeddings.device
        if self._prepared is None or self._prepared.vectors.device != device:
            self._prepared = PreparedGallery(self.embeddings, device)
        found = self._prepared.search(queries, k)
        if query_norms is not None:
            self._check_query_norms(query_norms, found.indices.shape[0])
        return RetrievalResult(
            indices=found.indices,
            distances=found.distances,
            embedding_radius_top1=found.radius_top1,
            embedding_radius_topk=found.radius_topk,
            radius_top1=self._image_radius(found.radius_top1, query_norms, bound),
            radius_topk=self._image_radius(found.radius_topk, query_norms, bound),
            certificate="plain" if query_norms is None else "norm_aware",
        )

    def _image_radius(self, embedding_radius: Tensor, query_norms: Tensor | None, bound: float | None) -> Tensor | None:
        if bound is None:
            return None
        # Dividing by a bound >= the true constant, then shrinking by one part in 1e12, stays conservative.
        plain = embedding_radius / bound * (1 - 1e-12)
        if query_norms is None:
            return plain
        finite = torch.isfinite(embedding_radius)  # a one-item gallery: infinite, kept as is
        target = torch.where(finite, embedding_radius, 0.0)
        aware = invert_shift(target, query_norms.to(target), NORM_FLOORS[self.normalization])
        return torch.where(finite, torch.maximum(plain, aware * ((1 - RELATIVE_SLACK) / bound)), plain)

    def _check_query_norms(self, query_norms: object, count: int) -> None:
        if self.normalization not in SOUND_NORMALIZATIONS:
            raise ValueError(
                f"query_norms need the gallery's normalization ('augment' or 'ball'), got {self.normalization!r}"
            )
        if not isinstance(query_norms, Tensor):
            raise TypeError(f"query_norms must be a torch.Tensor, got {type(query_norms).__name__}")
        if query_norms.shape != (count,):
            raise ValueError(f"query_norms must have shape ({count},), got {tuple(query_norms.shape)}")
        if not bool(torch.isfinite(query_norms).all()) or bool((query_norms < 1).any()):
            raise ValueError("query_norms must be finite effective norms >= 1 (from embed_batches(with_norms=True))")

    def search_images(
        self, embedder: Embedder, images: Tensor, k: int = 1, batch_size: int = 64, *, certificate: str = "norm_aware"
    ) -> RetrievalResult:
        """Embed query ``images`` with ``embedder`` (its Lipschitz bound must match the gallery's) and search.

        ``certificate="norm_aware"`` (default) uses the queries' norms where the normalisation allows (the
        larger of the plain and the norm-aware radius); ``"plain"`` the 1-Lipschitz radius only.
        """
        check_choice("certificate", certificate, CERTIFICATES)
        if not isinstance(embedder, Embedder):
            raise TypeError(f"embedder must be a lipsim_tm.retrieval.Embedder, got {type(embedder).__name__}")
        if embedder.lipschitz_bound != self.lipschitz_bound or embedder.normalization != self.normalization:
            raise ValueError(
                f"embedder (lipschitz_bound={embedder.lipschitz_bound}, normalization={embedder.normalization!r})"
                f" does not match the gallery (lipschitz_bound={self.lipschitz_bound},"
                f" normalization={self.normalization!r})"
            )
        bound = embedder.image_lipschitz(images) if isinstance(images, Tensor) else None
        if certificate == "plain" or embedder.normalization is None:
            return self.search(embedder.embed_batches(images, batch_size), k, lipschitz_bound=bound)
        embeddings, norms = embedder.embed_batches(images, batch_size, with_norms=True)
        return self.search(embeddings, k, query_norms=norms, lipschitz_bound=bound)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the gallery to ``path`` atomically (a temporary file in the same folder, then renamed)."""
        path = Path(path)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "embeddings": self.embeddings.cpu().contiguous(),
            "lipschitz_bound": self.lipschitz_bound,
            "normalization": self.normalization,
            "labels": self.labels,
            "source": self.source,
        }
        atomic_torch_save(payload, path, "gallery")

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> EmbeddingGallery:
        """Read a gallery written by :meth:`save`; anything else (other keys, format, version) is refused with a
        ``ValueError`` naming the file."""
        payload = read_checkpoint(path, "gallery")
        version = payload.get("version") if isinstance(payload, dict) else None
        if payload.get("format") != FORMAT if isinstance(payload, dict) else True:
            got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"{path} is not a gallery file: expected format {FORMAT!r}, got {got!r}\n{_WRITTEN_BY}")
        if version not in _KEYS:
            raise ValueError(f"{path}: gallery version {version!r} is not one of {sorted(_KEYS)}")
        if set(payload) != _KEYS[version]:
            raise ValueError(
                f"{path} is not a gallery file: expected keys {sorted(_KEYS[version])}, got {sorted(payload)}\n"
                + _WRITTEN_BY
            )
        embeddings = payload["embeddings"]
        return cls(
            embeddings.to(map_location) if isinstance(embeddings, Tensor) else embeddings,
            lipschitz_bound=payload["lipschitz_bound"],
            normalization=payload["normalization"],
            labels=payload.get("labels"),
            source=payload.get("source"),
        )
