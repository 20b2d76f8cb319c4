"""Certified image retrieval: a gallery of embeddings, top-k neighbours and radii within which they cannot change."""

from lipsim_tm.retrieval.certify import Neighbours, PreparedGallery, nearest_certified
from lipsim_tm.retrieval.embedder import Embedder
from lipsim_tm.retrieval.gallery import EmbeddingGallery, RetrievalResult

__all__ = ["Embedder", "EmbeddingGallery", "Neighbours", "PreparedGallery", "RetrievalResult", "nearest_certified"]
