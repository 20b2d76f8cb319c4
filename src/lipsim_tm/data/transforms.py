"""Torch-only image transforms for the official distillation views, and per-item random generators.

Images are ``(3, H, W)`` float tensors in ``[0, 1]``. The colour jitter follows the semantics of
torchvision's ``ColorJitter`` (brightness, contrast, saturation and hue factors drawn uniformly and
applied in a random order, each clamped to [0, 1]) and ``RandomGrayscale``, without torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

_LUMA = (0.299, 0.587, 0.114)


def item_generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from integer ``keys`` (e.g. seed, epoch, index) by SeedSequence."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator()
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


def item_rng(*keys: int) -> np.random.Generator:
    """A numpy ``Generator`` seeded from integer ``keys`` by SeedSequence."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in keys])))


def grayscale(image: Tensor) -> Tensor:
    """ITU-R 601 luma, ``(3, H, W) -> (1, H, W)``."""
    r, g, b = image.unbind(0)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(0)


def rgb_to_hsv(image: Tensor) -> Tensor:
    """``(3, H, W)`` RGB in [0, 1] -> HSV with hue in [0, 1)."""
    r, g, b = image.unbind(0)
    maxc, _ = image.max(dim=0)
    minc, _ = image.min(dim=0)
    delta = maxc - minc
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    safe_max = torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    saturation = torch.where(maxc > 0, delta / safe_max, torch.zeros_like(maxc))
    hue_r = torch.remainder((g - b) / safe_delta, 6.0)
    hue_g = (b - r) / safe_delta + 2.0
    hue_b = (r - g) / safe_delta + 4.0
    hue = torch.where(maxc == r, hue_r, torch.where(maxc == g, hue_g, hue_b))
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue))
    return torch.stack([torch.remainder(hue, 1.0), saturation, maxc])


def hsv_to_rgb(image: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = image.unbind(0)
    h6 = h * 6.0
    sector = torch.floor(h6)
    f = h6 - sector
    sector = torch.remainder(sector, 6).long()
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v]),
            torch.stack([t, v, v, q, p, p]),
            torch.stack([p, p, t, v, v, q]),
        ]
    )  # (3, 6, H, W)
    return table.gather(1, sector.expand(3, 1, *sector.shape)).squeeze(1)


def adjust_brightness(image: Tensor, factor: float) -> Tensor:
    return (image * factor).clamp(0, 1)


def adjust_contrast(image: Tensor, factor: float) -> Tensor:
    # The mean is summed in float64: a float32 sum's rounding depends on how many threads split it, and a
    # DataLoader worker (one thread) must give the main process's view.
    mean = grayscale(image).mean(dtype=torch.float64).to(image.dtype)
    return (factor * image + (1 - factor) * mean).clamp(0, 1)


def adjust_saturation(image: Tensor, factor: float) -> Tensor:
    return (factor * image + (1 - factor) * grayscale(image)).clamp(0, 1)


def adjust_hue(image: Tensor, shift: float) -> Tensor:
    hsv = rgb_to_hsv(image)
    hsv = torch.stack([torch.remainder(hsv[0] + shift, 1.0), hsv[1], hsv[2]])
    return hsv_to_rgb(hsv).clamp(0, 1)


@dataclass(frozen=True)
class ColorJitter:
    """Random colour jitter (applied with probability ``p``) followed by random grayscale.

    Defaults are the official distillation view: ``ColorJitter(0.4, 0.4, 0.2, 0.1)`` with ``p = 0.8``
    and ``RandomGrayscale(0.2)``.
    """

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"ColorJitter.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"ColorJitter.hue must be in [0, 0.5], got {self.hue}")
        for name in ("p", "grayscale_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ColorJitter.{name} must be in [0, 1], got {getattr(self, name)}")

    def __call__(self, image: Tensor, generator: torch.Generator) -> Tensor:
        """Jittered copy of ``image`` ``(3, H, W)``; all randomness comes from ``generator``."""
        u = torch.rand(7, generator=generator, dtype=torch.float64).tolist()
        order = torch.randperm(4, generator=generator).tolist()
        if u[0] < self.p:
            factors = [
                1 + self.brightness * (2 * u[1] - 1),
                1 + self.contrast * (2 * u[2] - 1),
                1 + self.saturation * (2 * u[3] - 1),
                self.hue * (2 * u[4] - 1),
            ]
            for op in order:
                if op == 0:
                    image = adjust_brightness(image, max(factors[0], 0.0))
                elif op == 1:
                    image = adjust_contrast(image, max(factors[1], 0.0))
                elif op == 2:
                    image = adjust_saturation(image, max(factors[2], 0.0))
                elif self.hue > 0:
                    image = adjust_hue(image, factors[3])
        if u[5] < self.grayscale_p:
            image = grayscale(image).expand(3, -1, -1).clone()
        return image
