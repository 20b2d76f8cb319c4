"""The training loop shared by distillation and fine-tuning.

One loop for one process or many: the global batch is split over ranks (see
:mod:`lipsim_tm.training.sampling`), gradients are averaged by DistributedDataParallel, and only
rank 0 logs, checkpoints and exports. A run stopped by Ctrl-C/SIGTERM saves a checkpoint of its
last completed step; ``resume`` continues from a checkpoint and reproduces the uninterrupted run
exactly (same parameters, optimiser and scheduler states, data order and RNG states).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.checkpoints.export import config_to_dict
from lipsim_tm.training.checkpointing import (
    CheckpointManager,
    capture_rng_state,
    load_training_checkpoint,
    restore_rng_state,
)
from lipsim_tm.training.config import UNSHAPING_SETTINGS, TrainConfig
from lipsim_tm.training.distributed import (
    DistributedContext,
    any_rank,
    barrier,
    check_ranks_in_sync,
    mean_over_ranks,
    unwrap_model,
    wrap_model,
)
from lipsim_tm.training.interrupt import StopFlag
from lipsim_tm.training.logging import CSVLogger, ProgressBar
from lipsim_tm.training.sampling import ResumableBatchSampler
from lipsim_tm.training.schedule import WarmupCosine, warmup_cosine_scheduler

#: ``step_fn(model, batch) -> (loss, images)``: the scalar loss of one local batch (already on the
#: device) and the number of images the student processed (for images/s).
StepFn = Callable[[nn.Module, list[Any]], tuple[Tensor, int]]
#: ``evaluate(model) -> metrics`` on rank 0 at the end of each epoch.
EvaluateFn = Callable[[LipSimBackbone], dict[str, float]]


@dataclass
class TrainResult:
    """What a run produced (``model`` is the unwrapped student, on its training device)."""

    model: LipSimBackbone
    step: int
    epoch: int
    interrupted: bool
    last_checkpoint: Path | None
    export_path: Path | None = None
    export_sha256: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    is_main: bool = True
    resumed_complete: bool = False


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def move_batch(batch: list[Any], device: torch.device, dtype: torch.dtype) -> list[Any]:
    """Floating tensors of ``batch`` to ``device`` and ``dtype``; other entries unchanged."""
    return [b.to(device=device, dtype=dtype) if isinstance(b, Tensor) and b.is_floating_point() else b for b in batch]


#: What a run writes into its output folder; any of them there means the folder holds an earlier run.
RUN_FILES: tuple[str, ...] = ("log.csv", "eval.csv", "export.pt", "checkpoints")


def _previous_run(out: Path) -> list[str]:
    """The files of an earlier run in ``out`` (empty when there are none)."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if "checkpoints" in found and not any((out / "checkpoints").iterdir()):
        found.remove("checkpoints")
    return found


def _claim_output_dir(config: TrainConfig, out: Path, resuming: bool, context: DistributedContext) -> None:
    """Refuse to start a fresh run over an earlier one, unless ``overwrite``: then move it aside (never delete)."""
    previous = [] if resuming else _previous_run(out)
    if previous and not config.overwrite:
        raise ValueError(
            f"output_dir {str(out)!r} holds an earlier run ({', '.join(previous)}): pass --resume latest to continue"
            " it, --overwrite to move it aside and start afresh, or another --output-dir"
        )
    barrier(context)  # every rank has looked before rank 0 moves anything
    if previous and context.is_main:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = out.with_name(f"{out.name}.previous-{stamp}")
        out.rename(aside)
        print(f"moved the earlier run in {out} to {aside}", file=sys.stderr)
    barrier(context)


def _changed_settings(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, list[Any]]:
    """``{setting: [checkpoint's value, this run's value]}`` for every setting that shapes training and differs."""
    return {
        name: [saved.get(name), value]
        for name, value in current.items()
        if name not in UNSHAPING_SETTINGS and saved.get(name) != value
    }


def _apply_changed_optimiser(config: TrainConfig, optimizer: torch.optim.Optimizer, scheduler: Any, total: int) -> None:
    """After loading a checkpoint's optimiser and schedule: use this run's lr, betas and weight decay, and this
    run's schedule (warm-up, ``total`` steps, floor) from the current step on (loading restored the old one)."""
    scheduler.base_lrs = [config.lr for _ in optimizer.param_groups]
    scheduler.lr_lambdas = [
        WarmupCosine(config.warmup_steps, total, config.min_lr_factor) for _ in optimizer.param_groups
    ]
    for group, fn in zip(optimizer.param_groups, scheduler.lr_lambdas, strict=True):
        group.update(initial_lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        group["lr"] = config.lr * fn(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _resolve_resume(config: TrainConfig, manager: CheckpointManager) -> Path | None:
    if config.resume is None:
        return None
    if config.resume in ("latest", "auto"):
        latest = manager.latest()
        if latest is None and config.resume == "latest":
            raise FileNotFoundError(f"resume='latest' but there is no checkpoint in {manager.directory}")
        return latest
    path = Path(config.resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    return path


def train(
    config: TrainConfig,
    *,
    model: LipSimBackbone,
    dataset: Dataset,
    step_fn: StepFn,
    context: DistributedContext,
    evaluate: EvaluateFn | None = None,
    summary: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` with ``step_fn`` according to ``config``; see the module docstring.

    Writes into ``config.output_dir``: ``checkpoints/checkpoint-<step>.pt``, ``log.csv`` (every
    ``log_every`` steps), ``eval.csv`` (every epoch, when ``evaluate`` is given) and, when the run
    completes, ``export.pt`` (inference weights with metadata, loadable by the metrics).
    """
    from lipsim_tm.models.checkpoints import save_export

    world = context.world_size
    if config.batch_size % world:
        raise ValueError(
            f"batch_size (global) must be divisible by the number of processes {world}, got {config.batch_size}"
        )
    device, dtype = context.device, torch_dtype(config.dtype)
    model.to(device=device, dtype=dtype).train()
    wrapped = wrap_model(model, context)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    batches = ResumableBatchSampler(
        dataset, batch_size=config.batch_size // world, rank=context.rank, world_size=world, seed=config.seed
    )
    steps_per_epoch = len(batches)
    if steps_per_epoch == 0:
        raise ValueError(f"the dataset has {len(dataset)} items: not one full global batch of {config.batch_size}")
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=config.warmup_steps, total_steps=total, min_factor=config.min_lr_factor
    )
    use_amp = config.precision != "fp32"
    amp_dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
    if scaler is not None and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' on the CPU")

    out = Path(config.output_dir)
    manager = CheckpointManager(out / "checkpoints", keep_last=config.keep_last)
    step = epoch = batch_in_epoch = 0
    elapsed_before = 0.0
    resumes: list[dict[str, Any]] = []
    model_fields = config_to_dict(model.config)
    resume_path = _resolve_resume(config, manager)
    _claim_output_dir(config, out, resume_path is not None, context)
    if resume_path is not None:
        state = load_training_checkpoint(resume_path)
        if state.get("model_config") != model_fields:
            raise ValueError(
                f"checkpoint {resume_path} was written for model config {state.get('model_config')}, "
                f"but this run builds {model_fields}"
            )
        changed = _changed_settings(state.get("config", {}), config.to_dict())
        if changed and not config.allow_changed_settings:
            listing = "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in changed.items())
            raise ValueError(
                f"resuming {resume_path} with settings that differ from the checkpoint's ({listing}): pass the same"
                " settings, or --allow-changed-settings to train on with the new ones (recorded in the export)"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        step, epoch, batch_in_epoch = int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"])
        saved_batch = state.get("config", {}).get("batch_size", config.batch_size)
        if saved_batch != config.batch_size:  # the same samples done, in batches of the new size
            batch_in_epoch = batch_in_epoch * saved_batch // config.batch_size
        if changed:
            _apply_changed_optimiser(config, optimizer, scheduler, total)
        restore_rng_state(state["rng"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        resumes = [*state.get("resumes", []), {"step": step, "checkpoint": str(resume_path), "changed": changed}]
    start_step = step

    def checkpoint() -> Path | None:
        if not context.is_main:
            return None
        state = {
            "model": model.state_dict(),
            "model_config": model_fields,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "rng": capture_rng_state(),
            "config": config.to_dict(),
            "elapsed_s": elapsed_before + time.perf_counter() - start_time,
            "resumes": resumes,
        }
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        return manager.save(state, step)

    logger = CSVLogger(out / "log.csv") if context.is_main else None
    eval_logger = CSVLogger(out / "eval.csv") if context.is_main and evaluate is not None else None
    for log in (logger, eval_logger):
        if log is not None:
            log.drop_after(step)  # rows of steps after the checkpoint are redone now
    if config.max_steps is not None and total < config.max_steps and context.is_main:
        print(
            f"note: epochs={config.epochs} ({steps_per_epoch} steps each) ends the run after {total} steps, before"
            f" max_steps={config.max_steps}",
            file=sys.stderr,
        )
    result = TrainResult(
        model=model, step=step, epoch=epoch, interrupted=False, last_checkpoint=resume_path, is_main=context.is_main
    )
    bar = ProgressBar(total, initial=step, description=config.stage, enabled=config.progress and context.is_main)
    stop = StopFlag()
    saved_step = step if resume_path is not None else -1
    committing = False
    start_time = time.perf_counter()
    try:
        with stop.installed():
            while step < total and epoch < config.epochs:
                batches.set_epoch(epoch, batch_in_epoch)
                if hasattr(dataset, "set_epoch"):
                    dataset.set_epoch(epoch)
                loader = DataLoader(dataset, batch_sampler=batches, num_workers=config.num_workers)
                for batch in loader:
                    batch = move_batch(list(batch), device, dtype)
                    optimizer.zero_grad(set_to_none=True)
                    autocast = torch.autocast(device.type, dtype=amp_dtype) if use_amp else nullcontext()
                    with autocast:
                        loss, images = step_fn(wrapped, batch)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.unscale_(optimizer)
                    else:
                        loss.backward()
                    if config.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    committing = True
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    scheduler.step()
                    step += 1
                    batch_in_epoch += 1
                    if batch_in_epoch == steps_per_epoch:
                        epoch, batch_in_epoch = epoch + 1, 0
                    committing = False
                    bar.update(images * world, float(loss.detach()))
                    if step % config.log_every == 0 or step == total:
                        row = {
                            "step": step,
                            "epoch": epoch,
                            "loss": float(mean_over_ranks(loss.detach().float(), context)),
                            "lr": scheduler.get_last_lr()[0],
                            "images_per_s": bar.images_per_second,
                            "elapsed_s": elapsed_before + time.perf_counter() - start_time,
                        }
                        result.history.append(row)
                        if logger is not None:
                            logger.log(row)
                    end_of_epoch = batch_in_epoch == 0
                    if step % config.checkpoint_every == 0:
                        result.last_checkpoint = checkpoint() or result.last_checkpoint
                        saved_step = step
                    if end_of_epoch and evaluate is not None:
                        if context.is_main:
                            metrics = {"step": step, "epoch": epoch, **evaluate(model)}
                            result.evaluations.append(metrics)
                            eval_logger.log(metrics)
                            model.train()
                        barrier(context)
                    if any_rank(stop.requested, context):
                        result.interrupted = True
                    if result.interrupted or step >= total:
                        break
                if result.interrupted:
                    break
    except KeyboardInterrupt:
        result.interrupted = True
        if committing:  # the parameters may be half-updated: keep the last checkpoint as it is
            raise
        if saved_step != step:
            result.last_checkpoint = checkpoint() or result.last_checkpoint
        raise
    finally:
        bar.close()
    check_ranks_in_sync(model, context)
    if saved_step != step:
        result.last_checkpoint = checkpoint() or result.last_checkpoint
    result.step, result.epoch = step, epoch
    if step == start_step and resume_path is not None and not result.interrupted:  # a complete run resumed
        result.resumed_complete = True
        barrier(context)
        return result
    evaluated = bool(result.evaluations) and result.evaluations[-1]["step"] == step
    if evaluate is not None and not result.interrupted and not evaluated:  # a run stopped by max_steps mid-epoch
        if context.is_main:
            metrics = {"step": step, "epoch": epoch, **evaluate(model)}
            result.evaluations.append(metrics)
            eval_logger.log(metrics)
        barrier(context)
    if not result.interrupted and context.is_main:
        metadata = {
            "training": {
                "kind": config.stage,
                "steps": step,
                "elapsed_s": elapsed_before + time.perf_counter() - start_time,
                "resumes": resumes,
                "epochs_completed": epoch,
                "world_size": world,
                "final_loss": result.history[-1]["loss"] if result.history else None,
                "evaluations": result.evaluations,
                **(summary or {}),
            },
            "config": config.to_dict(),
        }
        result.export_path = out / "export.pt"
        result.export_sha256 = save_export(unwrap_model(wrapped), result.export_path, metadata=metadata)
    barrier(context)
    return result


def build_student(config: TrainConfig) -> LipSimBackbone:
    """The student: seeded fresh initialisation, or the weights of ``config.init_from`` (export or official).

    Seeds every RNG with ``config.seed`` first, so every rank builds the same network.
    """
    seed_everything(config.seed)
    if config.init_from is None:
        return LipSimBackbone(config.model_config())
    from lipsim_tm.models.weights import load_backbone

    model = load_backbone(config.init_from)
    if config_to_dict(model.config) != config_to_dict(config.model_config()):
        raise ValueError(
            f"init_from={os.fspath(config.init_from)!r} holds model config {config_to_dict(model.config)}, "
            f"but model={config.model!r} with overrides {config.model_overrides} is "
            f"{config_to_dict(config.model_config())}"
        )
    return model.requires_grad_(True).train()


__all__ = ["EvaluateFn", "StepFn", "TrainResult", "build_student", "move_batch", "seed_everything", "train"]
