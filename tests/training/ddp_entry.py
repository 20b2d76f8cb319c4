"""Entry point of the distributed test: the same run_distill call on one process or under torchrun.

Usage: ``python ddp_entry.py OUT PHOTOS`` or ``torchrun --nproc_per_node=2 ddp_entry.py OUT PHOTOS``.
Each rank saves its final parameters to ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from lipsim_tm.distributed import shutdown_distributed
from lipsim_tm.training import DistillConfig, run_distill
from training_fixtures import LinearTeacher


def main(out: str, photos: str) -> None:
    config = DistillConfig(
        output_dir=out,
        data_dir=photos,
        model="tiny32",
        dtype="float64",
        batch_size=4,
        epochs=3,
        warmup_steps=2,
        seed=3,
        device="cpu",
        progress=False,
        log_every=1,
        checkpoint_every=100,
    )
    result = run_distill(config, LinearTeacher())
    rank = int(os.environ.get("RANK", "0"))
    state = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
    torch.save(
        {"state": state, "steps": result.step, "world_size": int(os.environ.get("WORLD_SIZE", "1"))},
        Path(out) / f"rank{rank}.pt",
    )
    shutdown_distributed()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
