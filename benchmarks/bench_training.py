"""Training throughput of the real trainer (``run_distill`` / ``run_finetune``) on this CPU.

    python benchmarks/bench_training.py [--steps 30] [--threads 1 2] [--configs tiny64 student64 small]

For each configuration the trainer runs ``--steps`` optimiser steps on generated photos (distillation:
a fixed random linear teacher of 4x4-pooled pixels; fine-tuning: same-family synthetic 2AFC triplets,
pre-generated so only the trainer is timed) and the throughput is taken from the per-step log between
step 4 and the last step (so start-up and the first steps are excluded). ``student images/s`` counts
every image the student processes (2 views per distillation sample, 3 images per triplet). Writes
benchmarks/results/training.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from lipsim_tm.data import Synthetic2AFCDataset
from lipsim_tm.models.backbone import LipSimConfig, resolve_config
from lipsim_tm.training import DistillConfig, FinetuneConfig, run_distill, run_finetune

from common import machine_description, write_json

#: The 64 px student of the default model's first feasibility runs (benchmarks/RESULTS-training.md).
STUDENT64 = LipSimConfig(
    input_size=64, channels=32, conv_inner=16, conv_stages=(6, 6), pool_size=4, dense_depth=3,
    dense_inner=512, out_features=512, input_scale=0.25, input_shift=0.5,
)  # fmt: skip


class PooledLinearTeacher(nn.Module):
    """Fixed random linear map of 4x4-average-pooled pixels to ``dim`` features."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        width = 3 * (size // 4) ** 2
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(dim, width, generator=generator) / width**0.5)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 4).flatten(1) @ self.weight.T


def write_photos(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        low = rng.uniform(0, 1, size=(8, 8, 3))
        image = np.kron(low, np.ones((size // 8, size // 8, 1))) + rng.normal(0, 0.05, size=(size, size, 3))
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"photo{i}.png")


def throughput(history: list[dict[str, float]], samples_per_step: int, first: int = 4) -> float:
    start = next(row for row in history if row["step"] == first)
    end = history[-1]
    return samples_per_step * (end["step"] - start["step"]) / (end["elapsed_s"] - start["elapsed_s"])


def bench(name: str, config: LipSimConfig, batch: int, steps: int, folder: Path, out: Path) -> list[dict[str, object]]:
    size = config.input_size
    common = {
        "model": "tiny32", "model_overrides": {f: getattr(config, f) for f in config.__dataclass_fields__},
        "batch_size": batch, "epochs": 10_000, "max_steps": steps, "warmup_steps": 2, "progress": False,
        "log_every": 1, "checkpoint_every": 10**9, "device": "cpu",
    }  # fmt: skip
    teacher = PooledLinearTeacher(size, config.out_features)
    distill = run_distill(
        DistillConfig(output_dir=str(out / f"{name}-distill"), data_dir=str(folder), cache_images=True, **common),
        teacher,
    )
    triplets = Synthetic2AFCDataset(folder, image_size=size, length=batch * 8, seed=0)
    tensors = TensorDataset(*[torch.stack(p) for p in zip(*[triplets[i] for i in range(len(triplets))], strict=True)])
    finetune = run_finetune(
        FinetuneConfig(output_dir=str(out / f"{name}-finetune"), dataset="synthetic", data_dir=str(folder), **common),
        train_dataset=tensors,
    )
    rows = []
    for stage, result, per_sample in (("distill", distill, 2), ("finetune", finetune, 3)):
        samples = throughput(result.history, batch)
        rows.append(
            {
                "config": name,
                "stage": stage,
                "batch": batch,
                "threads": torch.get_num_threads(),
                "samples_per_s": samples,
                "student_images_per_s": samples * per_sample,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()], help="torch threads")
    parser.add_argument(
        "--configs", nargs="+", default=["tiny64", "student64"], choices=["tiny64", "student64", "small"],
        help="configurations to time ('small' is the 224 px released LipSim architecture: slow)",
    )  # fmt: skip
    args = parser.parse_args()
    available = {
        "tiny64": (resolve_config("tiny64"), 32),
        "student64": (STUDENT64, 16),
        "small": (resolve_config("small"), 4),
    }
    configs = [(name, *available[name]) for name in args.configs]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = {}
        for size in sorted({c.input_size for _, c, _ in configs}):
            folders[size] = root / f"photos{size}"
            folders[size].mkdir()
            write_photos(folders[size], 4 * max(batch for _, _, batch in configs), max(size, 64) * 2)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for name, config, batch in configs:
                steps = args.steps if name != "small" else min(args.steps, 8)
                rows.extend(bench(name, config, batch, steps, folders[config.input_size], root / f"t{threads}"))
    name = "training" if args.configs == ["tiny64", "student64"] else "training-" + "-".join(args.configs)
    path = write_json(name, {"machine": machine_description(), "steps": args.steps, "rows": rows})
    print(f"\nwritten {path}\n")
    print("| config | stage | batch | threads | samples/s | student images/s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['config']} | {r['stage']} | {r['batch']} | {r['threads']} | {r['samples_per_s']:.1f} "
            f"| {r['student_images_per_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
