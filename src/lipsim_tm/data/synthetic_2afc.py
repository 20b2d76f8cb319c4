"""Synthetic 2AFC triplets from any folder of photos, deterministic under a seed.

Triplet ``i`` is drawn from a generator seeded with ``(seed, i)``: a photo, a crop, and two
distortions of the crop. In a *same-family* triplet both distortions come from one family at two
different severities and the label is known: the milder one is closer. A *cross-family* triplet
(two different families) has no such ground truth; its label comes from a ``labeller`` callable,
for example a teacher network's 2AFC decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lipsim_tm.checks import check_callable, check_int, check_number
from lipsim_tm.data.distortions import DISTORTION_FAMILIES, apply_distortion
from lipsim_tm.data.images import find_images, load_pil, pil_to_tensor
from lipsim_tm.data.transforms import item_generator, item_rng

#: ``labeller(ref, img0, img1) -> p``: batches ``(N, 3, S, S)`` in [0, 1] to ``(N,)`` values in [0, 1],
#: the probability that ``img1`` is closer to ``ref`` (1.0 = img1 closer).
Labeller = Callable[[Tensor, Tensor, Tensor], Tensor]


def embedding_labeller(embed: Callable[[Tensor], Tensor]) -> Labeller:
    """A :data:`Labeller` from a teacher embedding: 1.0 if ``img1`` is closer to ``ref`` in l2, 0.0 if ``img0``
    is, 0.5 on ties.

    ``embed`` maps ``(N, 3, S, S)`` images in [0, 1] to ``(N, D)`` (any teacher of the distillation).
    """

    def label(ref: Tensor, img0: Tensor, img1: Tensor) -> Tensor:
        e_ref, e0, e1 = embed(torch.cat([ref, img0, img1])).flatten(1).chunk(3)
        d0, d1 = (e_ref - e0).norm(dim=1), (e_ref - e1).norm(dim=1)
        return torch.where(d1 < d0, 1.0, torch.where(d0 < d1, 0.0, 0.5)).float()

    return label


@dataclass(frozen=True)
class TripletSpec:
    """Everything that determines one synthetic triplet."""

    path: Path
    top: int
    left: int
    family0: str
    level0: int
    family1: str
    level1: int

    @property
    def same_family(self) -> bool:
        return self.family0 == self.family1

    @property
    def known_label(self) -> float | None:
        """1.0 if img1 is the milder (closer) distortion of one family, 0.0 if img0 is, None across families."""
        if not self.same_family:
            return None
        return 1.0 if self.level1 < self.level0 else 0.0


class Synthetic2AFCDataset(Dataset):
    """``length`` triplets ``(ref, img0, img1, p)`` made from the photos under ``root``.

    Args:
        root: a folder of photos (searched recursively) or an explicit sequence of image paths.
        image_size: side of the square crops (``(3, S, S)`` float32 in [0, 1]).
        length: number of triplets.
        seed: triplet ``i`` depends only on ``(seed, i)`` and the photos.
        families: distortion families to draw from (keys of :data:`DISTORTION_FAMILIES`).
        cross_family_fraction: probability that a triplet mixes two families; needs a ``labeller``.
        labeller: see :data:`Labeller`; called on single triplets in ``__getitem__`` unless
            :meth:`precompute_labels` has labelled them in batches first.
        cache_images: keep decoded photos in memory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        image_size: int,
        length: int = 1000,
        seed: int = 0,
        families: Sequence[str] = tuple(DISTORTION_FAMILIES),
        cross_family_fraction: float = 0.0,
        labeller: Labeller | None = None,
        cache_images: bool = True,
    ) -> None:
        check_int("image_size", image_size, minimum=1)
        check_int("length", length, minimum=1)
        families = tuple(families)
        unknown = [f for f in families if f not in DISTORTION_FAMILIES]
        if unknown or not families:
            raise ValueError(f"families must be a non-empty subset of {sorted(DISTORTION_FAMILIES)}, got {families}")
        check_number("cross_family_fraction", cross_family_fraction, minimum=0.0, maximum=1.0)
        if cross_family_fraction > 0 and labeller is None:
            raise ValueError("cross_family_fraction > 0 needs a labeller (cross-family triplets have no known label)")
        if cross_family_fraction > 0 and len(families) < 2:
            raise ValueError("cross_family_fraction > 0 needs at least two families")
        check_callable("labeller", labeller, optional=True)
        if isinstance(root, (str, os.PathLike)):
            self.paths = find_images(root)
        else:
            self.paths = [Path(p) for p in root]
            if not self.paths:
                raise ValueError("root must name at least one image")
        self._photo_index = {path: i for i, path in enumerate(self.paths)}
        self.image_size = image_size
        self.length = length
        self.seed = int(seed)
        self.families = families
        self.cross_family_fraction = float(cross_family_fraction)
        self.labeller = labeller
        self.cache_images = cache_images
        self._images: dict[int, Image.Image] = {}
        self._labels: dict[int, float] = {}

    def __len__(self) -> int:
        return self.length

    def _photo(self, photo: int) -> Image.Image:
        if photo in self._images:
            return self._images[photo]
        image = load_pil(self.paths[photo])
        short = min(image.size)
        if short < self.image_size:
            scale = self.image_size / short
            size = tuple(max(self.image_size, round(side * scale)) for side in image.size)
            image = image.resize(size, Image.Resampling.BICUBIC)
        if self.cache_images:
            self._images[photo] = image
        return image

    def spec(self, index: int) -> TripletSpec:
        """The photo, crop and distortions of triplet ``index``."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} triplets")
        rng = item_rng(self.seed, index)
        photo = int(rng.integers(len(self.paths)))
        width, height = self._photo(photo).size
        top = int(rng.integers(height - self.image_size + 1))
        left = int(rng.integers(width - self.image_size + 1))
        if rng.random() < self.cross_family_fraction:
            i0, i1 = rng.choice(len(self.families), size=2, replace=False)
            family0, family1 = self.families[int(i0)], self.families[int(i1)]
            level0 = int(rng.integers(len(DISTORTION_FAMILIES[family0])))
            level1 = int(rng.integers(len(DISTORTION_FAMILIES[family1])))
        else:
            family0 = family1 = self.families[int(rng.integers(len(self.families)))]
            level0, level1 = (int(v) for v in rng.choice(len(DISTORTION_FAMILIES[family0]), size=2, replace=False))
        return TripletSpec(self.paths[photo], top, left, family0, level0, family1, level1)

    def images(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(ref, img0, img1)`` of triplet ``index``, each ``(3, S, S)``."""
        spec = self.spec(index)
        photo = self._photo(self._photo_index[spec.path])
        size = self.image_size
        ref = pil_to_tensor(photo.crop((spec.left, spec.top, spec.left + size, spec.top + size)))
        img0 = apply_distortion(ref, spec.family0, spec.level0, item_generator(self.seed, index, 0))
        img1 = apply_distortion(ref, spec.family1, spec.level1, item_generator(self.seed, index, 1))
        return ref, img0, img1

    def _label(self, ref: Tensor, img0: Tensor, img1: Tensor) -> Tensor:
        if self.labeller is None:
            raise RuntimeError("a cross-family triplet needs a labeller, and this dataset has none")
        with torch.no_grad():
            p = self.labeller(ref, img0, img1)
        p = torch.as_tensor(p, dtype=torch.float32).reshape(-1)
        if p.numel() != ref.shape[0] or not torch.all((p >= 0) & (p <= 1)):
            raise ValueError(f"labeller must return {ref.shape[0]} values in [0, 1], got {p.tolist()}")
        return p

    def precompute_labels(self, batch_size: int = 32) -> None:
        """Label every cross-family triplet with the labeller, in batches (deterministic, done once)."""
        if self.labeller is None:
            return
        pending = [i for i in range(self.length) if i not in self._labels and not self.spec(i).same_family]
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            triplets = [self.images(i) for i in chunk]
            batch = [torch.stack(parts) for parts in zip(*triplets, strict=True)]
            for i, p in zip(chunk, self._label(*batch).tolist(), strict=True):
                self._labels[i] = p

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ref, img0, img1 = self.images(index)
        known = self.spec(index).known_label
        if known is not None:
            p = known
        elif index in self._labels:
            p = self._labels[index]
        else:
            p = float(self._label(ref[None], img0[None], img1[None])[0])
            self._labels[index] = p
        return ref, img0, img1, torch.tensor(p, dtype=torch.float32)
