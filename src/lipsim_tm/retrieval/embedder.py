"""The query map of retrieval: images -> (optionally normalised) embeddings, with its Lipschitz bound."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from lipsim_tm.checks import check_callable, check_int, check_number
from lipsim_tm.functional.certificates.norm_aware import norm_and_floor
from lipsim_tm.functional.embedding import features_of, network_dtype, preprocessing_for
from lipsim_tm.functional.normalization import apply_normalization, check_normalization, check_sound_normalization
from lipsim_tm.functional.preprocessing import DataRange, Preprocessing, input_operator_norm
from lipsim_tm.models.backbone import LipSimBackbone


class Embedder:
    """``phi(x) = normalize(embed(x))``: images ``(N, ...)`` -> embeddings ``(N, D')``.

    With a :class:`~lipsim_tm.LipSimBackbone` as ``embed``, images are taken as the metrics take them: any
    ``H, W`` (resized to the network's input by the metrics' preprocessing), values checked against
    ``data_range`` (``ValueError`` outside it), grey images with ``grayscale=True``; the Lipschitz bound of
    a batch then includes the exact operator norm of its preprocessing (:meth:`image_lipschitz`), so radii are
    in the caller's pixels at the caller's size.

    Args:
        embed: images -> features ``(N, D)``, e.g. a :class:`~lipsim_tm.LipSimBackbone` or any callable.
        normalization: ``"augment"`` (default, ``[v; 1] / ||[v; 1]||``) or ``"ball"``, both 1-Lipschitz, or
            ``None`` when ``embed`` already returns the embeddings to compare. ``"plain"`` is refused (not
            1-Lipschitz, no sound certificate).
        lipschitz_bound: l2 Lipschitz bound of ``embed`` with respect to the images in the user's pixel
            space (include any preprocessing's operator norm). Default: ``embed.lipschitz_bound`` when it
            has one (as :class:`~lipsim_tm.LipSimBackbone` does), else ``None`` (no image-space radii).
            The normalisations are 1-Lipschitz, so this also bounds ``phi``. For a backbone: the network's bound
            (inputs at its size); :meth:`image_lipschitz` adds the preprocessing's norm.
        data_range, grayscale, interpolation, antialias: the preprocessing of a backbone's inputs (see
            :class:`~lipsim_tm.functional.preprocessing.Preprocessing`); ignored for other callables.
    """

    def __init__(
        self,
        embed: Callable[[Tensor], Tensor],
        normalization: str | None = "augment",
        lipschitz_bound: float | None = None,
        *,
        data_range: DataRange = 1.0,
        grayscale: bool = False,
        interpolation: str = "bicubic",
        antialias: bool = True,
    ) -> None:
        check_callable("embed", embed)
        if normalization is not None:
            check_sound_normalization(check_normalization(normalization), "certified retrieval")
        if lipschitz_bound is None:
            lipschitz_bound = getattr(embed, "lipschitz_bound", None)
        self.embed, self.normalization = embed, normalization
        self.lipschitz_bound = None if lipschitz_bound is None else check_lipschitz_bound(lipschitz_bound)
        self.prep: Preprocessing | None = None
        if isinstance(embed, LipSimBackbone):
            self.prep = preprocessing_for(
                embed, data_range=data_range, grayscale=grayscale, interpolation=interpolation, antialias=antialias
            )

    def image_lipschitz(self, images: Tensor) -> float | None:
        """The Lipschitz bound of ``images -> phi(images)`` in the caller's pixels for this batch's size: the
        bound times the preprocessing's exact operator norm for a backbone, the bound itself otherwise."""
        if self.lipschitz_bound is None or self.prep is None:
            return self.lipschitz_bound
        return self.lipschitz_bound * input_operator_norm(self.prep, images)

    def __call__(self, images: Tensor) -> Tensor:
        """Embeddings ``(N, D')`` of ``images``; differentiable (usable by attacks)."""
        return self._normalize(self._features(images))

    def embed_batches(
        self, images: Tensor | Iterable[Tensor], batch_size: int = 64, *, with_norms: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Embeddings of many images without gradients: a ``(N, ...)`` tensor cut into batches of
        ``batch_size``, or an iterable of image batches (e.g. a DataLoader yielding tensors).

        ``with_norms``: also return the float64 ``(N,)`` effective pre-normalisation norms that norm-aware
        radii use (:func:`~lipsim_tm.functional.certificates.norm_and_floor`); needs a normalisation.
        """
        check_int("batch_size", batch_size, minimum=1)
        if with_norms and self.normalization is None:
            raise ValueError("with_norms needs the embedder's normalization ('augment' or 'ball'), got None")
        batches = images.split(batch_size) if isinstance(images, Tensor) else images
        outputs, norms = [], []
        with torch.no_grad():
            for i, batch in enumerate(batches):
                if not isinstance(batch, Tensor):
                    raise TypeError(f"image batch {i} must be a torch.Tensor, got {type(batch).__name__}")
                features = self._features(batch).detach()
                outputs.append(self._normalize(features))
                if with_norms:
                    norms.append(norm_and_floor(features, self.normalization)[0])
        if not outputs:
            raise ValueError("images must hold at least one image")
        return (torch.cat(outputs), torch.cat(norms)) if with_norms else torch.cat(outputs)

    def _features(self, images: Tensor) -> Tensor:
        if self.prep is not None:
            return features_of(self.embed, self.prep.check(images, "images"), self.prep, network_dtype(self.embed))
        features = self.embed(images)
        if not isinstance(features, Tensor) or features.ndim != 2 or features.shape[0] != images.shape[0]:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"embed must return a tensor of shape ({images.shape[0]}, D), got {got}")
        return features

    def _normalize(self, features: Tensor) -> Tensor:
        return features if self.normalization is None else apply_normalization(features, self.normalization)


def check_lipschitz_bound(value: object) -> float:
    """``value`` as a float, required positive and finite."""
    return check_number("lipschitz_bound", value, minimum=0.0, open_minimum=True)
