"""Image distortions of known severity for synthetic 2AFC triplets.

Each family has an ordered tuple of severities (level 0 is the mildest). Images are ``(3, H, W)``
float32 in [0, 1]; every distortion returns the same shape, clamped to [0, 1], and draws its
randomness (noise field, colour direction, warp field) only from the given generator.
"""

from __future__ import annotations

import io
import math

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from lipsim_tm.checks import check_choice, check_int
from lipsim_tm.data.images import pil_to_tensor, tensor_to_pil

#: family -> severities, mildest first. Units: noise std; blur Gaussian sigma in pixels; JPEG quality
#: (lower is worse); colour shift l2 norm of the RGB offset; contrast: fraction of contrast removed;
#: warp: peak displacement in pixels.
DISTORTION_FAMILIES: dict[str, tuple[float, ...]] = {
    "noise": (0.01, 0.02, 0.04, 0.08, 0.16),
    "blur": (0.5, 1.0, 1.5, 2.5, 4.0),
    "jpeg": (90.0, 70.0, 50.0, 30.0, 10.0),
    "color": (0.02, 0.05, 0.1, 0.15, 0.25),
    "contrast": (0.1, 0.2, 0.35, 0.5, 0.7),
    "warp": (0.5, 1.0, 2.0, 3.0, 5.0),
}


def gaussian_noise(image: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    noise = torch.randn(image.shape, generator=generator, dtype=image.dtype)
    return (image + sigma * noise).clamp(0, 1)


def gaussian_blur(image: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode="replicate")
    channels = image.shape[0]
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return out.squeeze(0).clamp(0, 1)


def jpeg_compress(image: Tensor, quality: float, generator: torch.Generator | None = None) -> Tensor:
    buffer = io.BytesIO()
    tensor_to_pil(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return pil_to_tensor(decoded).to(image.dtype)


def color_shift(image: Tensor, magnitude: float, generator: torch.Generator) -> Tensor:
    direction = torch.randn(3, generator=generator, dtype=image.dtype)
    direction = direction / direction.norm().clamp_min(1e-12)
    return (image + magnitude * direction.view(3, 1, 1)).clamp(0, 1)


def reduce_contrast(image: Tensor, amount: float, generator: torch.Generator | None = None) -> Tensor:
    mean = image.mean(dim=(1, 2), keepdim=True)
    return ((1 - amount) * image + amount * mean).clamp(0, 1)


def smooth_warp(image: Tensor, pixels: float, generator: torch.Generator) -> Tensor:
    _, height, width = image.shape
    field = torch.randn(1, 2, 4, 4, generator=generator, dtype=image.dtype)
    field = F.interpolate(field, size=(height, width), mode="bicubic", align_corners=True)
    field = field / field.abs().amax().clamp_min(1e-12) * pixels  # peak displacement in pixels
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height, dtype=image.dtype), torch.linspace(-1, 1, width, dtype=image.dtype), indexing="ij"
    )
    grid = torch.stack([xs + field[0, 0] * 2 / max(width - 1, 1), ys + field[0, 1] * 2 / max(height - 1, 1)], dim=-1)
    out = F.grid_sample(
        image.unsqueeze(0), grid.unsqueeze(0), mode="bilinear", padding_mode="border", align_corners=True
    )
    return out.squeeze(0).clamp(0, 1)


_FUNCTIONS = {
    "noise": gaussian_noise,
    "blur": gaussian_blur,
    "jpeg": jpeg_compress,
    "color": color_shift,
    "contrast": reduce_contrast,
    "warp": smooth_warp,
}


def apply_distortion(image: Tensor, family: str, level: int, generator: torch.Generator) -> Tensor:
    """``image`` distorted by ``family`` at severity index ``level`` (0 = mildest)."""
    check_choice("family", family, tuple(DISTORTION_FAMILIES))
    levels = DISTORTION_FAMILIES[family]
    check_int(f"level for {family!r}", level, minimum=0, maximum=len(levels) - 1)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    return _FUNCTIONS[family](image, levels[level], generator)
