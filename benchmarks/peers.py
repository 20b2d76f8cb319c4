"""Pure-torch builds of the peer metrics' exact architectures, for speed comparisons only.

**Weights are random.** Pretrained AlexNet/VGG16/DINO/CLIP weights cannot be fetched offline; the
compute cost of a forward pass does not depend on the weight values, so random weights give the
peers' true speed (not their scores). No torchvision is needed (the core environment has none); where
torchvision and torchmetrics are installed, ``tests/benchmarks/test_peers.py`` checks these builds
against ``torchvision.models`` and torchmetrics' LPIPS/DISTS networks, number for number.

Every peer is an ``nn.Module`` ``forward(x, y) -> (N,)`` distance for images ``(N, 3, S, S)`` in
[0, 1], doing the peer's whole computation (input scaling, one batched forward of ``cat([x, y])``,
the distance head). Builders take ``image_size`` (only the ViTs' position tables depend on it).

- LPIPS (torchmetrics/richzhang): ScalingLayer on ``2x - 1``; AlexNet (5 taps relu1..relu5) or VGG16
  (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) features; per tap unit-normalise over channels
  (``x / sqrt(eps + sum x^2)``), squared difference, 1x1 conv to one channel (no bias), spatial mean;
  sum over taps.
- DISTS (Ding et al.; torchmetrics/piq): ImageNet normalisation; VGG16 up to relu5_3 with every
  max-pool replaced by a Hann-window L2 pooling (3x3, stride 2, pad 1, depthwise on ``x^2``, then
  ``sqrt(. + 1e-12)``); structure and texture terms over 6 taps (the input and 5 relus) weighted by
  ``alpha``, ``beta`` (normalised by their sum).
- DreamSim ensemble equivalent: DINO ViT-B/16 (cls token after the final LayerNorm, 768-d), OpenAI
  CLIP ViT-B/16 (QuickGELU, ln_pre, ln_post, projection to 512) and OpenCLIP ViT-B/32 (GELU, 512)
  image towers at 224 px, each with its own input normalisation; the three embeddings concatenated
  (1792-d); distance ``1 - cos``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: torchvision ``vgg16().features`` configuration (channels; "M" = 2x2 max-pool).
VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Indices in ``vgg16().features`` of the ReLUs LPIPS and DISTS tap (relu1_2 .. relu5_3).
VGG16_TAPS: tuple[int, ...] = (3, 8, 15, 22, 29)
#: Indices in ``alexnet().features`` of the ReLUs LPIPS taps (relu1 .. relu5).
ALEXNET_TAPS: tuple[int, ...] = (1, 4, 7, 9, 11)


def _normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    return torch.tensor(mean).reshape(1, 3, 1, 1), torch.tensor(std).reshape(1, 3, 1, 1)


def alexnet_features() -> nn.Sequential:
    """``torchvision.models.alexnet().features`` (same layers, indices and parameter shapes)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),
    )


def vgg16_features(pool: Callable[[int], nn.Module] | None = None) -> nn.Sequential:
    """``torchvision.models.vgg16().features``; ``pool(channels)`` replaces each max-pool when given."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2) if pool is None else pool(channels))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    layers.append(nn.MaxPool2d(2, stride=2))
    return nn.Sequential(*layers)


class TappedFeatures(nn.Module):
    """Runs ``features[: taps[-1] + 1]`` and returns the outputs of the layers at ``taps``."""

    def __init__(self, features: nn.Sequential, taps: tuple[int, ...]) -> None:
        super().__init__()
        self.features = features[: taps[-1] + 1]
        self.taps = frozenset(taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
        return outputs


class LPIPS(nn.Module):
    """LPIPS distance ``(N,)`` between ``x`` and ``y`` in [0, 1] (``net``: ``"alex"`` or ``"vgg"``); random weights."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net == "alex":
            self.net = TappedFeatures(alexnet_features(), ALEXNET_TAPS)
            channels = (64, 192, 384, 256, 256)
        elif net == "vgg":
            self.net = TappedFeatures(vgg16_features(), VGG16_TAPS)
            channels = (64, 128, 256, 512, 512)
        else:
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        shift, scale = torch.tensor([-0.030, -0.088, -0.188]), torch.tensor([0.458, 0.448, 0.450])
        self.register_buffer("shift", shift.reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.reshape(1, 3, 1, 1), persistent=False)
        self.eval()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        images = ((2 * torch.cat([x, y]) - 1) - self.shift) / self.scale
        total = x.new_zeros(x.shape[0])
        for feature, lin in zip(self.net(images), self.lins, strict=True):
            unit = feature / torch.sqrt(1e-8 + feature.pow(2).sum(dim=1, keepdim=True))
            a, b = unit.chunk(2)
            total = total + lin((a - b) ** 2).mean(dim=(1, 2, 3))
        return total


class L2Pooling(nn.Module):
    """DISTS' L2 pooling: ``sqrt(depthwise_conv(x^2, hann3x3, stride 2, pad 1) + 1e-12)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.hann_window(5, periodic=False, dtype=torch.float64)[1:-1]
        g = a[:, None] * a[None, :]
        self.register_buffer("filter", (g / g.sum()).float()[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x.pow(2), self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """DISTS distance ``(N,)`` between ``x`` and ``y`` in [0, 1]; random VGG weights, alpha/beta ~ N(0.1, 0.01)."""

    channels: tuple[int, ...] = (3, 64, 128, 256, 512, 512)

    def __init__(self) -> None:
        super().__init__()
        self.net = TappedFeatures(vgg16_features(pool=L2Pooling), VGG16_TAPS)
        self.alpha = nn.Parameter(torch.empty(1, sum(self.channels), 1, 1).normal_(0.1, 0.01))
        self.beta = nn.Parameter(torch.empty(1, sum(self.channels), 1, 1).normal_(0.1, 0.01))
        mean, std = _normalizer(IMAGENET_MEAN, IMAGENET_STD)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.eval()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        images = torch.cat([x, y])
        features = [images, *self.net((images - self.mean) / self.std)]
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, self.channels, dim=1)
        betas = torch.split(self.beta / w_sum, self.channels, dim=1)
        c1 = c2 = 1e-6
        structure = texture = x.new_zeros(x.shape[0], 1, 1, 1)
        for feature, alpha, beta in zip(features, alphas, betas, strict=True):
            f0, f1 = feature.chunk(2)
            m0, m1 = f0.mean((2, 3), keepdim=True), f1.mean((2, 3), keepdim=True)
            texture = texture + (alpha * (2 * m0 * m1 + c1) / (m0**2 + m1**2 + c1)).sum(1, keepdim=True)
            v0, v1 = ((f0 - m0) ** 2).mean((2, 3), keepdim=True), ((f1 - m1) ** 2).mean((2, 3), keepdim=True)
            cov = (f0 * f1).mean((2, 3), keepdim=True) - m0 * m1
            structure = structure + (beta * (2 * cov + c2) / (v0 + v1 + c2)).sum(1, keepdim=True)
        return 1 - (texture + structure).reshape(-1)


class QuickGELU(nn.Module):
    """OpenAI CLIP's ``x * sigmoid(1.702 x)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (fused qkv, SDPA)."""

    def __init__(self, width: int, heads: int, activation: Callable[[], nn.Module], eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), activation(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor) -> Tensor:
        n, tokens, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(n, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, tokens, width)
        x = x + self.proj(attended)
        return x + self.mlp(self.ln2(x))


class VisionTransformer(nn.Module):
    """ViT image tower ``(N, 3, S, S) -> (N, out)``: patchify, cls token, position table, blocks, cls output.

    ``kind="dino"``: timm/DINO layout (patch conv with bias, LayerNorm eps 1e-6, GELU, final norm,
    no projection). ``kind="clip"``: CLIP layout (patch conv without bias, ln_pre, eps 1e-5,
    QuickGELU if ``quick_gelu``, ln_post, linear projection to ``proj_dim`` without bias).
    """

    def __init__(
        self,
        *,
        patch: int,
        image_size: int = 224,
        width: int = 768,
        depth: int = 12,
        heads: int = 12,
        kind: str = "dino",
        quick_gelu: bool = False,
        proj_dim: int = 512,
    ) -> None:
        super().__init__()
        if kind not in ("dino", "clip"):
            raise ValueError(f"kind must be 'dino' or 'clip', got {kind!r}")
        if image_size % patch:
            raise ValueError(f"image_size must be a multiple of patch={patch}, got {image_size}")
        clip = kind == "clip"
        eps = 1e-5 if clip else 1e-6
        activation: Callable[[], nn.Module] = QuickGELU if quick_gelu else nn.GELU
        self.patch_embed = nn.Conv2d(3, width, patch, stride=patch, bias=not clip)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (image_size // patch) ** 2 + 1, width) * 0.02)
        self.ln_pre = nn.LayerNorm(width, eps=eps) if clip else nn.Identity()
        self.blocks = nn.Sequential(*(Block(width, heads, activation, eps) for _ in range(depth)))
        self.norm = nn.LayerNorm(width, eps=eps)
        self.proj = nn.Parameter(torch.randn(width, proj_dim) * width**-0.5) if clip else None

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        cls = self.norm(self.blocks(self.ln_pre(tokens))[:, 0])
        return cls if self.proj is None else cls @ self.proj


class DreamSimEnsemble(nn.Module):
    """DreamSim-ensemble equivalent: ``1 - cos`` of concatenated DINO/CLIP/OpenCLIP embeddings; random weights.

    ``width``/``depth`` (768/12: the real ViT-B towers, 64 heads-width per head) shrink only for smoke tests.
    """

    def __init__(self, image_size: int = 224, *, width: int = 768, depth: int = 12) -> None:
        super().__init__()
        size = {"image_size": image_size, "width": width, "depth": depth, "heads": max(1, width // 64)}
        self.towers = nn.ModuleList(
            [
                VisionTransformer(patch=16, kind="dino", **size),
                VisionTransformer(patch=16, kind="clip", quick_gelu=True, **size),
                VisionTransformer(patch=32, kind="clip", **size),
            ]
        )
        for name, (mean, std) in zip(
            ("dino", "clip", "openclip"),
            ((IMAGENET_MEAN, IMAGENET_STD), (CLIP_MEAN, CLIP_STD), (CLIP_MEAN, CLIP_STD)),
            strict=True,
        ):
            m, s = _normalizer(mean, std)
            self.register_buffer(f"{name}_mean", m, persistent=False)
            self.register_buffer(f"{name}_std", s, persistent=False)
        self.eval()

    def embed(self, images: Tensor) -> Tensor:
        """``(N, 1792)`` concatenated tower embeddings of ``images`` in [0, 1]."""
        parts = []
        for tower, name in zip(self.towers, ("dino", "clip", "openclip"), strict=True):
            normalized = (images - getattr(self, f"{name}_mean")) / getattr(self, f"{name}_std")
            parts.append(tower(normalized))
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        a, b = self.embed(torch.cat([x, y])).chunk(2)
        return 1 - F.cosine_similarity(a, b, dim=1)


#: Peer name -> builder taking ``image_size``.
PEERS: dict[str, Callable[[int], nn.Module]] = {
    "lpips-alex": lambda image_size: LPIPS("alex"),
    "lpips-vgg": lambda image_size: LPIPS("vgg"),
    "dists": lambda image_size: DISTS(),
    "dreamsim-ensemble": lambda image_size: DreamSimEnsemble(image_size),
}


def build_peer(name: str, image_size: int = 224, *, tiny: bool = False) -> nn.Module:
    """The peer ``name`` (a key of :data:`PEERS`) with random weights, in eval mode, without gradients.

    ``tiny``: DreamSim's towers with width 64 and depth 1 (for smoke tests of the benchmark code only).
    """
    if name not in PEERS:
        raise ValueError(f"peer must be one of {sorted(PEERS)}, got {name!r}")
    if tiny and name == "dreamsim-ensemble":
        return DreamSimEnsemble(image_size, width=64, depth=1).requires_grad_(False).eval()
    return PEERS[name](image_size).requires_grad_(False).eval()
