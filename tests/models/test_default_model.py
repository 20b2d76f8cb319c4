"""The shipped default model: file integrity against its model card, offline loading, perceptual sanity."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from lipsim_tm import LipSimDistance
from lipsim_tm.data.distortions import apply_distortion
from lipsim_tm.data.images import load_pil, pil_to_tensor
from lipsim_tm.models.checkpoints.io import file_sha256
from lipsim_tm.models.pretrained import DEFAULT_FILENAME, DEFAULT_SHA256
from lipsim_tm.models.registry import PRETRAINED_DIR
from lipsim_tm.models.weights import resolve_backbone

PRETRAINED = Path(__file__).resolve().parents[2] / "src" / "lipsim_tm" / "models" / "pretrained"
PHOTOS = Path(__file__).resolve().parents[2] / "src" / "lipsim_tm" / "assets" / "photos"


def test_shipped_file_matches_the_recorded_hash_and_the_model_card():
    digest = file_sha256(PRETRAINED_DIR / DEFAULT_FILENAME)
    assert digest == DEFAULT_SHA256
    card = (PRETRAINED / "MODEL_CARD.md").read_text()
    assert re.search(rf"file sha256 \| `{digest}`", card)
    assert (PRETRAINED_DIR / DEFAULT_FILENAME).stat().st_size < 50 * 2**20  # "tens of MB at most"


def test_default_loads_offline_with_the_card_architecture():
    net = resolve_backbone("default")
    cfg = net.config
    assert (cfg.input_size, cfg.unshuffle, cfg.channels, cfg.out_features) == (224, 4, 48, 512)
    assert sum(p.numel() for p in net.parameters()) == 2_556_320
    assert net.lipschitz_bound == 1.0


def test_default_metric_orders_severities_of_one_distortion():
    """On a held-out photo, a milder distortion is closer than a stronger one of the same family."""
    torch.manual_seed(0)
    photo = pil_to_tensor(load_pil(PHOTOS / "coffee.jpg"))[:, :224, :224]
    metric = LipSimDistance(reduction="none")
    for family in ("noise", "blur", "jpeg"):
        images = [apply_distortion(photo, family, level, torch.Generator().manual_seed(1)) for level in (0, 4)]
        distances = metric(photo.expand(2, -1, -1, -1), torch.stack(images))
        assert distances[0] < distances[1], family
    metric.reset()
    assert float(metric(photo[None], photo[None])) == 0.0
