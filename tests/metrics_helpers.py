"""Shared helpers of the metric tests: seeded images, float64 references and an l2 PGD attack."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lipsim_tm.functional.certificates.margins import triplet_margins
from lipsim_tm.functional.certificates.plain import plain_radii
from lipsim_tm.functional.embedding import features_of
from lipsim_tm.functional.normalization import apply_normalization
from lipsim_tm.functional.preprocessing import Preprocessing
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.weights import RANDOM_SEED


def images(seed: int, n: int = 4, size: tuple[int, int] = (32, 32), channels: int = 3) -> Tensor:
    return torch.rand(n, channels, *size, generator=torch.Generator().manual_seed(seed))


def triplets(seed: int, n: int = 6, size: tuple[int, int] = (32, 32), noise: float = 0.05) -> tuple[Tensor, ...]:
    """``(ref, img0, img1, target)``: img0 a light distortion of ref, img1 another image, mixed targets."""
    gen = torch.Generator().manual_seed(seed)
    ref = torch.rand(n, 3, *size, generator=gen)
    img0 = (ref + noise * torch.randn(n, 3, *size, generator=gen)).clamp(0, 1)
    img1 = torch.rand(n, 3, *size, generator=gen)
    swap = torch.rand(n, generator=gen) < 0.5
    img0, img1 = torch.where(swap[:, None, None, None], img1, img0), torch.where(swap[:, None, None, None], img0, img1)
    target = torch.rand(n, generator=gen)
    return ref, img0, img1, target


def tiny(config: str = "tiny32", dtype: torch.dtype = torch.float32) -> LipSimBackbone:
    """The same network as ``weights="random:<config>"``, as a separate instance."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return LipSimBackbone(config).to(dtype).eval()


def reference_phi(backbone: LipSimBackbone, x: Tensor, size: int, normalization: str = "augment") -> Tensor:
    """float64 embeddings by the textbook pipeline (bicubic antialiased resize, backbone, normalisation)."""
    net = backbone.double()
    x = x.double()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    f = net(x)
    if normalization == "augment":
        g = torch.cat([f, torch.ones(f.shape[0], 1, dtype=f.dtype)], 1)
        return g / g.norm(dim=1, keepdim=True)
    return f / torch.clamp(f.norm(dim=1, keepdim=True), min=1.0)


def dense_resize_norm(height: int, width: int, size: int) -> float:
    """Brute-force operator norm of the bicubic antialiased resize (full matrix from one-pixel images)."""
    basis = torch.eye(height * width, dtype=torch.float64).reshape(-1, 1, height, width)
    if (height, width) == (size, size):
        return 1.0
    out = F.interpolate(basis, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return float(torch.linalg.matrix_norm(out.reshape(height * width, -1), ord=2))


def pgd_l2(objective: Callable[[Tensor], Tensor], x: Tensor, eps: Tensor, steps: int = 20) -> Tensor:
    """Per-sample l2 PGD maximising ``objective(x + delta)`` (shape ``(N,)``) with ``||delta_i|| <= eps_i``."""
    eps = eps.to(x.dtype).reshape(-1, 1, 1, 1)
    delta = torch.zeros_like(x)
    step = 2.5 * eps / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x + delta).sum(), delta)
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-20).reshape(-1, 1, 1, 1)
        delta = delta.detach() + step * grad / norms
        scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-20).reshape(-1, 1, 1, 1)).clamp(max=1.0)
        delta = delta * scale
    return (x + delta).detach()


def embed(net: LipSimBackbone, x: Tensor, prep: Preprocessing, dtype: torch.dtype, normalization: str) -> Tensor:
    """Normalised embeddings of validated images through the library's feature path (differentiable)."""
    return apply_normalization(features_of(net, x, prep, dtype), normalization)


def reference_radius(phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor, lipschitz: float) -> Tensor:
    """The plain rule's reference radius of normalised embeddings (the certificates' own code)."""
    return plain_radii(triplet_margins(phi_ref, phi_0, phi_1), lipschitz, lipschitz)[0]


def all_images_radius(phi_ref: Tensor, phi_0: Tensor, phi_1: Tensor, lipschitz: float) -> Tensor:
    """The plain rule's all-images radius of normalised embeddings (the certificates' own code)."""
    return plain_radii(triplet_margins(phi_ref, phi_0, phi_1), lipschitz, lipschitz)[1]
