"""Training checkpoints: atomic writes, exact resume, keep-last-K.

A checkpoint holds everything that determines the rest of the run: model, optimiser, scheduler and
(with fp16) grad-scaler states, the number of optimiser steps taken, the epoch and the number of
batches of that epoch already consumed (the sampler position), and the RNG states of Python,
numpy, torch and CUDA. Files are written to a temporary file and renamed into place, so a run
killed at any moment leaves only complete checkpoints; they load with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipsim_tm.checks import check_int
from lipsim_tm.files import atomic_torch_save
from lipsim_tm.models.checkpoints.io import read_checkpoint

CHECKPOINT_FORMAT = "lipsim-tm-train/1"
_NAME = re.compile(r"^checkpoint-(\d{9})\.pt$")


def capture_rng_state() -> dict[str, Any]:
    """RNG states of Python, numpy, torch (CPU) and every CUDA device, as weights-only-loadable values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states are restored when CUDA is present)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Writes ``checkpoint-<step>.pt`` files in ``directory`` and keeps the last ``keep_last`` of them."""

    def __init__(self, directory: str | os.PathLike[str], *, keep_last: int = 3) -> None:
        check_int("keep_last", keep_last, minimum=1)
        self.directory = Path(directory)
        self.keep_last = keep_last

    def path_for(self, step: int) -> Path:
        return self.directory / f"checkpoint-{step:09d}.pt"

    def checkpoints(self) -> list[Path]:
        """Existing checkpoint files, oldest step first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The checkpoint with the most steps, or None."""
        found = self.checkpoints()
        return found[-1] if found else None

    def newest_readable(self) -> tuple[Path, dict[str, Any], list[str]] | None:
        """The newest checkpoint that reads as a training checkpoint, its state, and one line for each newer one that
        does not (damaged: truncated or corrupted by a crash or a full disk, or not a checkpoint); None when the
        folder holds no checkpoint. ``ValueError`` when it holds checkpoints and none of them reads."""
        skipped = []
        for path in reversed(self.checkpoints()):
            try:
                return path, load_training_checkpoint(path), skipped
            except ValueError as error:
                skipped.append(f"{path.name} is damaged ({error})")
        if skipped:
            raise ValueError(f"no readable checkpoint in {self.directory}: " + "; ".join(skipped))
        return None

    def save(self, state: dict[str, Any], step: int) -> Path:
        """Write ``state`` atomically as the checkpoint of ``step``, then prune to the last ``keep_last``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(step)
        atomic_torch_save({"format": CHECKPOINT_FORMAT, **state}, path, "training checkpoint")
        for old in self.checkpoints()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path


def load_training_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :class:`CheckpointManager` (weights-only), checking its format."""
    state = read_checkpoint(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{os.fspath(path)!r} is not a training checkpoint ({CHECKPOINT_FORMAT!r}), found {found!r}")
    missing = [
        k for k in ("model", "optimizer", "scheduler", "step", "epoch", "batch_in_epoch", "rng") if k not in state
    ]
    if missing:
        raise ValueError(f"training checkpoint {os.fspath(path)!r} is missing {missing}")
    return state
