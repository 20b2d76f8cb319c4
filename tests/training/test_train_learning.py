"""The trainer learns: distillation loss falls by a large factor; fine-tuning lifts 2AFC agreement above chance."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from lipsim_tm import LipSimBackbone
from lipsim_tm.data import ImageFolderDataset, Synthetic2AFCDataset
from lipsim_tm.training import DistillConfig, FinetuneConfig, run_distill, run_finetune
from lipsim_tm.training.distill import rmse_loss
from lipsim_tm.training.evaluation import evaluate_2afc
from lipsim_tm.training.trainer import seed_everything
from training_fixtures import LinearTeacher


def held_out_views(photos_dir, n: int = 8) -> torch.Tensor:
    dataset = ImageFolderDataset(photos_dir, crop_size=32, seed=12345)
    return torch.stack([dataset[i][0] for i in range(n)])


def test_distillation_loss_falls_by_a_large_factor(tmp_path, photos_dir):
    teacher = LinearTeacher()
    views = held_out_views(photos_dir)
    seed_everything(0)
    untrained = LipSimBackbone("tiny32")
    with torch.no_grad():
        before = float(rmse_loss(untrained(views), teacher(views).float()))
    config = DistillConfig(
        output_dir=str(tmp_path),
        data_dir=str(photos_dir),
        model="tiny32",
        batch_size=8,
        epochs=1000,
        max_steps=200,
        warmup_steps=20,
        progress=False,
        log_every=50,
        checkpoint_every=1000,
        cache_images=True,
    )
    result = run_distill(config, teacher)
    with torch.no_grad():
        after = float(rmse_loss(result.model(views), teacher(views).float()))
    assert before / after > 8, (before, after)
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def _grayscale_embedding(x: torch.Tensor) -> torch.Tensor:
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    return (gray - gray.mean(dim=(1, 2), keepdim=True)).flatten(1)


def colour_blind_labeller(ref: torch.Tensor, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
    """A judge blind to colour and brightness offsets: pixel-like distances often disagree with it."""
    e = _grayscale_embedding
    return ((e(ref) - e(img1)).norm(dim=1) < (e(ref) - e(img0)).norm(dim=1)).float()


def materialise(dataset) -> TensorDataset:
    return TensorDataset(
        *[torch.stack(parts) for parts in zip(*[dataset[i] for i in range(len(dataset))], strict=True)]
    )


@pytest.fixture(scope="module")
def cross_family_triplets(tmp_path_factory):
    from dataset_writers import write_photos

    folder = tmp_path_factory.mktemp("ft_photos")
    write_photos(folder, 8)
    common = {
        "image_size": 32,
        "cross_family_fraction": 1.0,
        "labeller": colour_blind_labeller,
        "families": ("color", "noise", "blur", "contrast"),
    }
    train = materialise(Synthetic2AFCDataset(folder, length=384, seed=0, **common))
    val = materialise(Synthetic2AFCDataset(folder, length=160, seed=1, **common))
    return folder, train, val


def test_finetuning_raises_2afc_agreement_well_above_chance(tmp_path, cross_family_triplets):
    folder, train, val = cross_family_triplets
    seed_everything(0)
    before = evaluate_2afc(LipSimBackbone("tiny32"), val)["score_2afc"]
    config = FinetuneConfig(
        output_dir=str(tmp_path),
        dataset="synthetic",
        data_dir=str(folder),
        model="tiny32",
        batch_size=16,
        epochs=20,
        max_steps=150,
        lr=0.003,
        margin=0.05,
        progress=False,
        log_every=50,
        checkpoint_every=1000,
    )
    result = run_finetune(config, train_dataset=train, val_dataset=val)
    after = result.evaluations[-1]["score_2afc"]
    assert after > 0.8, (before, after)
    assert after > before + 0.1, (before, after)
    assert 0.0 <= result.evaluations[-1]["certified_2afc@0.1412"] <= after


@pytest.mark.slow
def test_one_distillation_step_of_the_released_small_architecture(tmp_path):
    from dataset_writers import write_photos

    folder = tmp_path / "photos"
    write_photos(folder, 2, size=(240, 256))
    config = DistillConfig(
        output_dir=str(tmp_path / "run"), data_dir=str(folder), model="small", batch_size=2, epochs=1,
        warmup_steps=1, progress=False, log_every=1,
    )  # fmt: skip
    result = run_distill(config, LinearTeacher(size=224, dim=1792, scale=0.5).float())
    assert result.step == 1
    assert torch.isfinite(torch.tensor(result.history[0]["loss"]))
