"""Certified image retrieval: a gallery of embeddings, top-k neighbours and radii within which they cannot change.

::

    from lipsim_tm import LipSimBackbone
    from lipsim_tm.retrieval import Embedder, EmbeddingGallery

    embedder = Embedder(LipSimBackbone("small").eval(), normalization="augment")  # Lipschitz bound 1
    gallery = EmbeddingGallery.build(embedder, gallery_images, batch_size=32)
    gallery.save("gallery.pt")                      # atomic; EmbeddingGallery.load is strict
    found = gallery.search_images(embedder, query_images, k=5)
    found.indices, found.distances                  # (B, 5) nearest first
    found.radius_top1, found.radius_topk            # (B,) l2 radii in pixel space: no perturbation of a
                                                    # query with a smaller norm changes its top-1 / top-5 set
                                                    # (norm-aware rule; certificate="plain" for 1-Lipschitz)
"""

from lipsim_tm.retrieval.embedder import Embedder
from lipsim_tm.retrieval.gallery import EmbeddingGallery, RetrievalResult

__all__ = ["Embedder", "EmbeddingGallery", "RetrievalResult"]
