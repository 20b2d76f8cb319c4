"""A real Lightning training run with LipSim metrics (run as a script: ``strategy="ddp"`` relaunches it).

A residual 3x3 conv "restorer" is trained with ``LipSimDistance`` as its loss (the metric's forward value,
differentiable) and validated with a certifying ``LipSimDistance`` and ``Certified2AFCAccuracy``, logged the
Lightning way: by object (``self.log(name, metric)``) and through ``metric.loggable()`` views. Rank 0 writes
``<out>/result.json``: every logged epoch value, the final restorer weights, the checkpoint's state-dict keys,
and each rank's warnings (``<out>/warnings-<rank>.json``).

    python lightning_run.py --out DIR --devices 1|2 --max-epochs 2 [--resume CKPT]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import lightning as L
from lipsim_tm import Certified2AFCAccuracy, LipSimDistance

WEIGHTS = "random:tiny32"
EPSILONS = (0.01, 0.05)
CERTIFY_EPS = 0.05
SAMPLES = 16
GLOBAL_BATCH = 4


def datasets() -> tuple[TensorDataset, TensorDataset]:
    """Training pairs (noisy image, clean image) and validation triplets with targets, all seeded."""
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(SAMPLES, 3, 32, 32, generator=g)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    ref = torch.rand(SAMPLES, 3, 32, 32, generator=g)
    img0 = (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    img1 = torch.rand(SAMPLES, 3, 32, 32, generator=g)
    target = torch.rand(SAMPLES, generator=g)
    return TensorDataset(noisy, clean), TensorDataset(ref, img0, img1, target)


class Restorer(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.mul_(0.1)
        self.train_distance = LipSimDistance(WEIGHTS)
        self.val_distance = LipSimDistance(WEIGHTS, certify_eps=CERTIFY_EPS)
        self.val_afc = Certified2AFCAccuracy(WEIGHTS, epsilons=EPSILONS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.conv(x)).clamp(0, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        noisy, clean = batch
        loss = self.train_distance(self(noisy), clean)  # the forward value: this batch, with gradients
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=noisy.shape[0])
        self.log("train/distance", self.train_distance, on_step=False, on_epoch=True)  # by object
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        ref, img0, img1, target = batch
        self.val_distance.update(self(ref), img0)
        self.val_afc.update(ref, img0, img1, target)
        self.log_dict(self.val_distance.loggable("val/"))
        self.log_dict(self.val_afc.loggable("val/"))

    def _loader(self, dataset: TensorDataset) -> DataLoader:
        """Rank r reads samples r, r + W, ... in order (Lightning's own sampler would shuffle the training set), so
        each global batch holds the same samples for any number of processes W."""
        world = self.trainer.world_size
        sampler = DistributedSampler(dataset, num_replicas=world, rank=self.global_rank, shuffle=False)
        return DataLoader(dataset, batch_size=GLOBAL_BATCH // world, sampler=sampler)

    def train_dataloader(self) -> DataLoader:
        return self._loader(datasets()[0])

    def val_dataloader(self) -> DataLoader:
        return self._loader(datasets()[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.conv.parameters(), lr=0.5)


class MemoryLogger(Logger):
    """Keeps every logged metric (rank 0) in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append({"step": step, **{k: float(v) for k, v in metrics.items()}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--resume", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    model = Restorer()
    logger = MemoryLogger()
    checkpoints = ModelCheckpoint(dirpath=args.out / "checkpoints", save_last=True, save_top_k=0)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=args.max_epochs,
        logger=logger,
        callbacks=[checkpoints],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=args.out,
        use_distributed_sampler=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, ckpt_path=args.resume)
    args.out.mkdir(parents=True, exist_ok=True)
    records = [
        {"category": w.category.__name__, "message": str(w.message), "filename": w.filename, "lineno": w.lineno}
        for w in caught
    ]
    (args.out / f"warnings-{trainer.global_rank}.json").write_text(json.dumps(records, indent=1))
    if trainer.global_rank == 0:
        saved = torch.load(args.out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        result = {
            "rows": logger.rows,
            "conv": {k: v.tolist() for k, v in model.conv.state_dict().items()},
            "checkpoint_keys": sorted(saved["state_dict"]),
            "world_size": trainer.world_size,
            "backbones": [
                {
                    "training": m.backbone.training,
                    "requires_grad": any(p.requires_grad for p in m.backbone.parameters()),
                }
                for m in (model.train_distance, model.val_distance, model.val_afc)
            ],
        }
        (args.out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
