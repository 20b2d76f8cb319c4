"""Shared fixtures of the robustness tests: a folder of generated photos and a briefly trained tiny32 LipSim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipsim_tm import LipSimBackbone
from lipsim_tm.data import Synthetic2AFCDataset
from lipsim_tm.training import FinetuneConfig, run_finetune
from lipsim_tm.training.trainer import seed_everything
from torch_threads import one_thread


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """Every robustness test runs with one torch thread."""


def _photo(seed: int, height: int = 48, width: int = 56) -> np.ndarray:
    """An RGB uint8 image with structure: a sinusoidal texture per channel and a few discs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    waves = [np.sin(rng.uniform(0.05, 0.4) * x + rng.uniform(0.05, 0.4) * y) for _ in range(3)]
    image = 0.5 + 0.3 * np.stack(waves, -1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(4, 12)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1, size=3)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six generated PNG photos, shared read-only by the session."""
    folder = tmp_path_factory.mktemp("robustness_photos")
    for i in range(6):
        Image.fromarray(_photo(i)).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, photos: Path) -> tuple[LipSimBackbone, Path]:
    """A tiny32 LipSim fine-tuned for 40 hinge-loss steps on synthetic triplets (a few seconds), and its export."""
    with one_thread():
        seed_everything(0)
        config = FinetuneConfig(
            output_dir=str(tmp_path_factory.mktemp("robustness_run")),
            dataset="synthetic",
            data_dir=str(photos),
            model="tiny32",
            batch_size=16,
            max_steps=40,
            lr=0.003,
            margin=0.05,
            val_split=None,
            progress=False,
            log_every=1000,
            checkpoint_every=1000,
            device="cpu",
        )
        train = Synthetic2AFCDataset(photos, image_size=32, length=640, seed=0)
        result = run_finetune(config, train_dataset=train)
    assert result.export_path is not None
    assert result.export_path.is_file()
    return result.model.eval().requires_grad_(False), result.export_path


@pytest.fixture(scope="session")
def triplets(photos: Path) -> Synthetic2AFCDataset:
    """Held-out synthetic triplets (another seed than training)."""
    return Synthetic2AFCDataset(photos, image_size=32, length=12, seed=7)
