"""Stage 2: fine-tune the student on 2AFC judgments with the hinge loss (reference section 5).

For a triplet ``(ref, img0, img1, p)`` with ``d_i = d(phi(ref), phi(img_i))`` computed with the same
sound normalisation and distance the metrics use, ``logit = d0 - d1`` and
``loss = max(0, margin - logit * (2 * round(p) - 1))``, averaged over the batch: the loss is zero
once the distance the majority judged closer is smaller by at least ``margin``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from lipsim_tm.data.bapps import BAPPS2AFCDataset
from lipsim_tm.data.nights import NightsDataset
from lipsim_tm.data.synthetic_2afc import Synthetic2AFCDataset, embedding_labeller
from lipsim_tm.distributed import DistributedContext, init_distributed
from lipsim_tm.functional.distance import embedding_distance
from lipsim_tm.functional.normalization import apply_normalization
from lipsim_tm.functional.preprocessing import resize
from lipsim_tm.training.config import FinetuneConfig
from lipsim_tm.training.evaluation import evaluate_2afc
from lipsim_tm.training.trainer import TrainResult, build_student, train

#: The side triplets of each dataset are read at by default (their own resolution): eps is in those pixels.
NATIVE_SIZES: dict[str, int] = {"nights": NightsDataset.NATIVE_SIZE, "bapps": BAPPS2AFCDataset.NATIVE_SIZE}


def hinge_2afc_loss(d0: Tensor, d1: Tensor, p: Tensor, margin: float) -> Tensor:
    """Mean hinge loss ``max(0, margin - (d0 - d1) * (2 round(p) - 1))`` over ``(N,)`` inputs."""
    if not (d0.shape == d1.shape == p.shape) or d0.ndim != 1:
        raise ValueError(
            f"d0, d1 and p must have the same shape (N,), got {tuple(d0.shape)}, {tuple(d1.shape)}, {tuple(p.shape)}"
        )
    sign = 2.0 * torch.round(p.to(d0.dtype)) - 1.0
    return torch.relu(margin - (d0 - d1) * sign).mean()


def norm_floor_penalty(embeddings: Tensor, floor: float) -> Tensor:
    """Mean of ``relu(floor - ||e||)`` over the rows of ``(N, D)`` embeddings (0 once every norm reaches ``floor``)."""
    return torch.relu(floor - embeddings.norm(dim=1)).mean()


class FinetuneStep:
    """One training step's loss: the student on the three images (one forward), then the hinge loss.

    With ``norm_weight > 0`` the loss adds ``norm_weight * norm_floor_penalty(f, norm_floor)`` on the
    un-normalised embeddings of all three images. Triplets read at another size than ``input_size`` are resized
    to it as the metrics do (bicubic, antialiased).
    """

    def __init__(
        self,
        *,
        margin: float,
        input_size: int | None = None,
        normalization: str = "augment",
        distance: str = "cosine",
        norm_floor: float = 0.0,
        norm_weight: float = 0.0,
    ) -> None:
        self.margin = margin
        self.input_size = input_size
        self.normalization = normalization
        self.distance = distance
        self.norm_floor = norm_floor
        self.norm_weight = norm_weight

    def __call__(self, model: nn.Module, batch: list[Any]) -> tuple[Tensor, int]:
        ref, img0, img1, p = batch
        n = ref.shape[0]
        images = torch.cat([ref, img0, img1])
        if self.input_size is not None:
            images = resize(images, self.input_size)
        embeddings = model(images)
        phi = apply_normalization(embeddings, self.normalization)
        d0 = embedding_distance(phi[:n], phi[n : 2 * n], self.distance)
        d1 = embedding_distance(phi[:n], phi[2 * n :], self.distance)
        loss = hinge_2afc_loss(d0, d1, p, self.margin)
        if self.norm_weight > 0:
            loss = loss + self.norm_weight * norm_floor_penalty(embeddings, self.norm_floor)
        return loss, 3 * n


def build_2afc_datasets(config: FinetuneConfig, image_size: int) -> tuple[Dataset, Dataset | None]:
    """Training and validation 2AFC datasets named by ``config`` (validation None when ``val_split`` is None)."""
    if config.dataset in ("nights", "bapps"):

        def split(name: str) -> Dataset:
            if config.dataset == "nights":
                return NightsDataset(config.data_dir, name, image_size=image_size, min_votes=config.min_votes)
            return BAPPS2AFCDataset(config.data_dir, name, subsets=config.bapps_subsets, image_size=image_size)

        return split(config.train_split), (split(config.val_split) if config.val_split else None)
    common = {
        "image_size": image_size,
        "families": config.synthetic_families,
        "cross_family_fraction": config.synthetic_cross_family,
    }
    if config.synthetic_labeller is not None:
        from lipsim_tm.training.distill import load_teacher
        from lipsim_tm.training.teacher_cache import call_teacher

        teacher, _ = load_teacher(config.synthetic_labeller)
        common["labeller"] = embedding_labeller(lambda images: call_teacher(teacher, images))
    train = Synthetic2AFCDataset(config.data_dir, length=config.synthetic_length, seed=config.seed, **common)
    val = (
        Synthetic2AFCDataset(config.data_dir, length=config.synthetic_val_length, seed=config.seed + 1, **common)
        if config.val_split
        else None
    )
    return train, val


def run_finetune(
    config: FinetuneConfig,
    *,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    context: DistributedContext | None = None,
) -> TrainResult:
    """Fine-tune on 2AFC triplets; datasets default to those named by ``config`` (see :func:`build_2afc_datasets`).

    At the end of each epoch rank 0 evaluates the natural and certified 2AFC scores on the validation
    set (written to ``eval.csv`` and into the export's metadata).
    """
    if not isinstance(config, FinetuneConfig):
        raise TypeError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    context = context or init_distributed(config.device)
    model = build_student(config)
    image_size = config.image_size or NATIVE_SIZES.get(config.dataset, model.config.input_size)
    if train_dataset is None:
        train_dataset, default_val = build_2afc_datasets(config, image_size)
        val_dataset = val_dataset if val_dataset is not None else default_val

    evaluate = None
    if val_dataset is not None:

        def evaluate(backbone: nn.Module) -> dict[str, float]:
            scores = evaluate_2afc(
                backbone,
                val_dataset,
                normalization=config.normalization,
                distance=config.distance,
                radii=config.eval_radii,
                batch_size=config.eval_batch_size,
                max_triplets=config.eval_max_triplets,
            )
            # The certified radii are in the pixels of the images as read: the read size is part of each number.
            return {"image_size": image_size, **scores}

    step = FinetuneStep(
        margin=config.margin,
        input_size=model.config.input_size,
        normalization=config.normalization,
        distance=config.distance,
        norm_floor=config.norm_floor,
        norm_weight=config.norm_weight,
    )
    summary = {
        "train_triplets": len(train_dataset),
        "val_triplets": len(val_dataset) if val_dataset else 0,
        "image_size": image_size,
    }
    return train(
        config, model=model, dataset=train_dataset, step_fn=step, context=context, evaluate=evaluate, summary=summary
    )
