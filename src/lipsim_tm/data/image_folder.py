"""A folder of photos as distillation data: crops and the two official views, reproducible per item.

Every random choice for item ``i`` in epoch ``e`` comes from a generator seeded with
``(seed, i, e)``, so a run is reproducible and resumable regardless of loader workers or ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lipsim_tm.checks import check_choice, check_int, check_number
from lipsim_tm.data.images import IMAGE_EXTENSIONS, find_images, load_pil, pil_to_tensor
from lipsim_tm.data.transforms import ColorJitter, item_generator

CROP_MODES: tuple[str, ...] = ("random", "center")


@dataclass(frozen=True)
class ViewSpec:
    """Where the plain view of one item comes from (everything the teacher's input depends on)."""

    path: Path
    top: int
    left: int
    flip: bool

    def cache_key(self, dataset: ImageFolderDataset) -> str:
        """A string that changes whenever the plain view's pixels could change.

        It holds the file's path, size and modification time (so an edited file is a new key), the
        resize and crop geometry and the flip.
        """
        stat = self.path.stat()
        return (
            f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|resize={dataset.resize}"
            f"|crop={dataset.crop_size}@{self.top},{self.left}|flip={int(self.flip)}"
        )


class ImageFolderDataset(Dataset):
    """Photos under ``root`` (recursive) -> ``(plain, jittered, key)`` for distillation.

    ``plain`` is a ``crop_size`` crop (random or centre) of the image, horizontally flipped with
    probability ``flip_p``; ``jittered`` is the same crop after :class:`ColorJitter` (the official
    second view). The official views (reference section 5) are ``crop="center"`` (torchvision's
    ``CenterCrop(crop_size)``, offsets and all, on the image as read), ``flip_p=0.5`` and ``ColorJitter()``;
    where torchvision pads an image smaller than the crop with black, this reader resizes it up instead.
    Both views are ``(3, crop_size, crop_size)`` float32 in [0, 1]. ``key`` identifies the plain view (see
    :meth:`ViewSpec.cache_key`), for caching teacher embeddings.

    Args:
        root: folder searched recursively for files with ``extensions``.
        crop_size: side of the crops (the student's input size).
        crop: ``"random"`` or ``"center"``.
        resize: if given, the shorter side is first resized to this (bicubic); images whose shorter
            side is below ``crop_size`` are always resized up to it.
        flip_p: probability of a horizontal flip.
        jitter: the colour jitter of the second view (``None`` makes the second view equal the first).
        seed: base seed of every random choice.
        views_per_image: if given, epoch ``e`` reuses the crops/flips of epoch ``e % views_per_image``,
            so teacher embeddings cached in early epochs are reused later.
        cache_images: keep decoded (resized) images in memory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        crop_size: int,
        crop: str = "random",
        resize: int | None = None,
        flip_p: float = 0.5,
        jitter: ColorJitter | None = None,
        seed: int = 0,
        views_per_image: int | None = None,
        cache_images: bool = False,
        extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    ) -> None:
        check_int("crop_size", crop_size, minimum=1)
        check_choice("crop", crop, CROP_MODES)
        if resize is not None:
            check_int("resize", resize, minimum=crop_size)
        check_number("flip_p", flip_p, minimum=0.0, maximum=1.0)
        if views_per_image is not None:
            check_int("views_per_image", views_per_image, minimum=1)
        self.root = Path(root)
        self.paths = find_images(root, extensions)
        self.crop_size = crop_size
        self.crop = crop
        self.resize = resize
        self.flip_p = flip_p
        self.jitter = jitter
        self.seed = int(seed)
        self.views_per_image = views_per_image
        self.cache_images = cache_images
        self.epoch = 0
        self._cache: dict[int, Image.Image] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (call before creating the epoch's loader iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def _image(self, index: int) -> Image.Image:
        if index in self._cache:
            return self._cache[index]
        image = load_pil(self.paths[index])
        short = min(image.size)
        target = max(self.resize or 0, self.crop_size) if (self.resize or short < self.crop_size) else short
        if target != short:
            scale = target / short
            size = (max(target, round(image.size[0] * scale)), max(target, round(image.size[1] * scale)))
            image = image.resize(size, Image.Resampling.BICUBIC)
        if self.cache_images:
            self._cache[index] = image
        return image

    def view_spec(self, index: int, image_size: tuple[int, int] | None = None) -> ViewSpec:
        """The crop and flip of item ``index`` in the current epoch."""
        width, height = image_size if image_size is not None else self._image(index).size
        view_epoch = self.epoch % self.views_per_image if self.views_per_image else self.epoch
        generator = item_generator(self.seed, index, view_epoch, 0)
        u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
        if self.crop == "center":  # torchvision's CenterCrop: offsets rounded half to even
            top, left = round((height - self.crop_size) / 2), round((width - self.crop_size) / 2)
        else:
            top = min(int(u[0] * (height - self.crop_size + 1)), height - self.crop_size)
            left = min(int(u[1] * (width - self.crop_size + 1)), width - self.crop_size)
        return ViewSpec(self.paths[index], top, left, u[2] < self.flip_p)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str]:
        image = self._image(index)
        spec = self.view_spec(index, image.size)
        box = (spec.left, spec.top, spec.left + self.crop_size, spec.top + self.crop_size)
        plain = pil_to_tensor(image.crop(box))
        if spec.flip:
            plain = plain.flip(-1)
        if self.jitter is None:
            jittered = plain.clone()
        else:
            jittered = self.jitter(plain, item_generator(self.seed, index, self.epoch, 1))
        return plain, jittered, spec.cache_key(self)
