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

from lipsim_tm.distributed import (
    DistributedContext,
    any_rank,
    barrier,
    check_ranks_in_sync,
    mean_over_ranks,
    unwrap_model,
    wrap_model,
)
from lipsim_tm.files import FolderBusyError, FolderLock, WriteError
from lipsim_tm.models.backbone import LipSimBackbone
from lipsim_tm.models.checkpoints.export import config_to_dict
from lipsim_tm.training.checkpointing import (
    CheckpointManager,
    capture_rng_state,
    load_training_checkpoint,
    restore_rng_state,
)
from lipsim_tm.training.config import TrainConfig
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
    if "checkpoints" in found and not CheckpointManager(out / "checkpoints").checkpoints():
        found.remove("checkpoints")  # no checkpoint in it (at most the temporary file of a killed write)
    return found


def _claim_output_dir(config: TrainConfig, out: Path, resuming: bool, context: DistributedContext) -> None:
    """Refuse to start a fresh run over an earlier one, unless ``overwrite``: then move it aside (never delete).
    ``resume="auto"`` over a run that stopped before its first checkpoint (only logs) starts it again."""
    previous = [] if resuming else _previous_run(out)
    if config.resume == "auto" and previous and set(previous) <= {"log.csv", "eval.csv"}:
        if context.is_main:
            print(f"note: {out} holds no checkpoint of its earlier run: starting it again", file=sys.stderr)
        return  # the logs' rows are dropped as the run starts at step 0
    if previous and not config.overwrite:
        raise ValueError(
            f"the run folder {str(out)!r} holds an earlier run ({', '.join(previous)}): pass --resume latest to"
            " continue it, --overwrite to move it aside and start afresh, or another --out"
        )
    barrier(context)  # every rank has looked before rank 0 moves anything
    if previous and context.is_main:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = out.with_name(f"{out.name}.previous-{stamp}")
        out.rename(aside)
        print(f"moved the earlier run in {out} to {aside}", file=sys.stderr)
    barrier(context)


def _changed_settings(config: TrainConfig, saved: dict[str, Any]) -> dict[str, list[Any]]:
    """``{setting: [checkpoint's value, this run's value]}`` for every setting that shapes training and differs. A
    setting the checkpoint does not record (added to the package after it was written) had its default then."""
    unshaping = config.unshaping_settings()
    defaults = type(config).defaults()
    return {
        name: [saved.get(name, defaults.get(name)), value]
        for name, value in config.to_dict().items()
        if name not in unshaping and saved.get(name, defaults.get(name)) != value
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


def _resolve_resume(
    config: TrainConfig, manager: CheckpointManager, context: DistributedContext
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to resume from and its state: ``config.resume``'s file, or for ``latest``/``auto`` the newest
    readable one (a damaged newer one is skipped, with a note); None to start afresh."""
    if config.resume is None:
        return None
    if config.resume in ("latest", "auto"):
        found = manager.newest_readable()
        if found is None:
            if config.resume == "latest":
                raise FileNotFoundError(f"resume='latest' but there is no checkpoint in {manager.directory}")
            return None
        path, state, skipped = found
        if skipped and context.is_main:
            for line in skipped:
                print(f"note: skipping {line}", file=sys.stderr)
            print(f"note: resuming from {path.name}, the newest readable checkpoint", file=sys.stderr)
        return path, state
    path = Path(config.resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    return path, load_training_checkpoint(path)


class _Run:
    """The state of one training run, in three steps: :meth:`__init__` (set-up: optimiser, schedule, data order,
    resume, the output folder and its logs), :meth:`epoch` (the optimiser steps of one pass over the data) and
    :meth:`finish` (the last checkpoint, evaluation and export)."""

    def __init__(
        self,
        config: TrainConfig,
        model: LipSimBackbone,
        dataset: Dataset,
        context: DistributedContext,
        evaluate: EvaluateFn | None,
    ) -> None:
        world = context.world_size
        if config.batch_size % world:
            raise ValueError(
                f"batch_size (global) must be divisible by the number of processes {world}, got {config.batch_size}"
            )
        self.config, self.model, self.dataset, self.context, self.evaluate = config, model, dataset, context, evaluate
        self.device, self.dtype = context.device, torch_dtype(config.dtype)
        model.to(device=self.device, dtype=self.dtype).train()
        self.wrapped = wrap_model(model, context)
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.batches = ResumableBatchSampler(
            dataset, batch_size=config.batch_size // world, rank=context.rank, world_size=world, seed=config.seed
        )
        self.steps_per_epoch = len(self.batches)
        if self.steps_per_epoch == 0:
            raise ValueError(f"the dataset has {len(dataset)} items: not one full global batch of {config.batch_size}")
        self.total = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            self.total = min(self.total, config.max_steps)
        self.scheduler = warmup_cosine_scheduler(
            self.optimizer, warmup_steps=config.warmup_steps, total_steps=self.total, min_factor=config.min_lr_factor
        )
        self.amp_dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        if self.scaler is not None and self.device.type != "cuda":
            raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' on the CPU")
        self.out = Path(config.output_dir)
        self.manager = CheckpointManager(self.out / "checkpoints", keep_last=config.keep_last)
        self.step = self.epoch_index = self.batch_in_epoch = 0
        self.elapsed_before = 0.0
        self.resumes: list[dict[str, Any]] = []
        self.restored_evaluations: list[dict[str, float]] = []  # of the steps before a resumed checkpoint
        self.last_loss: float | None = None  # the loss of the last step before a resumed checkpoint
        self.model_fields = config_to_dict(model.config)
        resumed = _resolve_resume(config, self.manager, context)
        self.resume_path = resumed[0] if resumed is not None else None
        _claim_output_dir(config, self.out, resumed is not None, context)
        if resumed is not None:
            self._resume(*resumed)
        self.start_step = self.step
        self.logger = CSVLogger(self.out / "log.csv") if context.is_main else None
        self.eval_logger = CSVLogger(self.out / "eval.csv") if context.is_main and evaluate is not None else None
        for log in (self.logger, self.eval_logger):
            if log is not None:
                log.drop_after(self.step)  # rows of steps after the checkpoint are redone now
        if config.max_steps is not None and self.total < config.max_steps and context.is_main:
            print(
                f"note: epochs={config.epochs} ({self.steps_per_epoch} steps each) ends the run after {self.total}"
                f" steps, before max_steps={config.max_steps}",
                file=sys.stderr,
            )
        self.result = TrainResult(
            model=model,
            step=self.step,
            epoch=self.epoch_index,
            interrupted=False,
            last_checkpoint=self.resume_path,
            is_main=context.is_main,
            evaluations=self.restored_evaluations,
        )
        self.bar = ProgressBar(
            self.total, initial=self.step, description=config.stage, enabled=config.progress and context.is_main
        )
        self.saved_step = self.step if self.resume_path is not None else -1
        self.committing = False  # True while an optimiser step may have half-updated the parameters
        self.start_time = time.perf_counter()

    def _resume(self, path: Path, state: dict[str, Any]) -> None:
        """Load a checkpoint's model, optimiser, schedule, position and RNG states (settings checked first)."""
        config = self.config
        if state.get("model_config") != self.model_fields:
            raise ValueError(
                f"checkpoint {path} was written for model config {state.get('model_config')}, "
                f"but this run builds {self.model_fields}"
            )
        changed = _changed_settings(config, state.get("config", {}))
        if changed and not config.allow_changed_settings:
            listing = "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in changed.items())
            raise ValueError(
                f"resuming {path} with settings that differ from the checkpoint's ({listing}): pass the same"
                " settings, or --allow-changed-settings to train on with the new ones (recorded in the export)"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch_index = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        saved_batch = state.get("config", {}).get("batch_size", config.batch_size)
        if saved_batch != config.batch_size:  # the same samples done, in batches of the new size
            self.batch_in_epoch = self.batch_in_epoch * saved_batch // config.batch_size
        if changed:
            _apply_changed_optimiser(config, self.optimizer, self.scheduler, self.total)
        restore_rng_state(state["rng"])
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.restored_evaluations = list(state.get("evaluations", []))
        self.last_loss = state.get("last_loss")
        self.resumes = [*state.get("resumes", []), {"step": self.step, "checkpoint": str(path), "changed": changed}]

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions of a resumed run included."""
        return self.elapsed_before + time.perf_counter() - self.start_time

    @property
    def done(self) -> bool:
        return self.step >= self.total or self.epoch_index >= self.config.epochs

    def checkpoint(self) -> None:
        """Save a checkpoint of the current step (rank 0)."""
        if self.context.is_main:
            state = {
                "model": self.model.state_dict(),
                "model_config": self.model_fields,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": self.step,
                "epoch": self.epoch_index,
                "batch_in_epoch": self.batch_in_epoch,
                "rng": capture_rng_state(),
                "config": self.config.to_dict(),
                "elapsed_s": self.elapsed(),
                "resumes": self.resumes,
                "evaluations": self.result.evaluations,
                "last_loss": self.result.history[-1]["loss"] if self.result.history else self.last_loss,
            }
            if self.scaler is not None:
                state["scaler"] = self.scaler.state_dict()
            try:
                self.result.last_checkpoint = self.manager.save(state, self.step)
            except WriteError as error:
                last = self.manager.latest()
                resume = f"from {last.name}" if last is not None else "from the start (no checkpoint was saved yet)"
                hint = f"free space (or raise the limit), then --resume latest continues {resume}"
                raise WriteError(f"{error}\n{hint}", error.errno) from error
        self.saved_step = self.step

    def _optimiser_step(self, batch: list[Any], step_fn: StepFn) -> Tensor:
        """One step on a local batch; returns its loss. ``committing`` marks the window of a half-updated model."""
        config = self.config
        batch = move_batch(batch, self.device, self.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype) if config.precision != "fp32" else nullcontext()
        )
        with autocast:
            loss, images = step_fn(self.wrapped, batch)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.committing = True
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch == self.steps_per_epoch:
            self.epoch_index, self.batch_in_epoch = self.epoch_index + 1, 0
        self.committing = False
        self.bar.update(images * self.context.world_size, float(loss.detach()))
        return loss

    def _log(self, loss: Tensor) -> None:
        row = {
            "step": self.step,
            "epoch": self.epoch_index,
            "loss": float(mean_over_ranks(loss.detach().float(), self.context)),
            "lr": self.scheduler.get_last_lr()[0],
            "images_per_s": self.bar.images_per_second,
            "elapsed_s": self.elapsed(),
        }
        self.result.history.append(row)
        if self.logger is not None:
            self.logger.log(row)

    def run_evaluation(self) -> None:
        """Rank 0 evaluates the model and logs the scores; every rank waits for it."""
        if self.context.is_main:
            metrics = {"step": self.step, "epoch": self.epoch_index, **self.evaluate(self.model)}  # type: ignore[misc]
            self.result.evaluations.append(metrics)
            self.eval_logger.log(metrics)  # type: ignore[union-attr]
            self.model.train()
        barrier(self.context)

    def epoch(self, step_fn: StepFn, stop: StopFlag) -> None:
        """The optimiser steps of the current epoch (from the resumed batch), with logs, checkpoints and the
        end-of-epoch evaluation; stops early at ``total`` steps or when any rank is asked to stop."""
        config = self.config
        self.batches.set_epoch(self.epoch_index, self.batch_in_epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch_index)
        for batch in DataLoader(self.dataset, batch_sampler=self.batches, num_workers=config.num_workers):
            loss = self._optimiser_step(list(batch), step_fn)
            if self.step % config.log_every == 0 or self.step == self.total:
                self._log(loss)
            if self.step % config.checkpoint_every == 0:
                self.checkpoint()
            if self.batch_in_epoch == 0 and self.evaluate is not None:
                self.run_evaluation()
            if any_rank(stop.requested, self.context):
                self.result.interrupted = True
            if self.result.interrupted or self.step >= self.total:
                return

    def finish(self, summary: dict[str, Any] | None) -> TrainResult:
        """After the loop: checkpoint the last step, evaluate a run stopped mid-epoch, export a completed run."""
        check_ranks_in_sync(self.model, self.context)
        result = self.result
        if self.saved_step != self.step:
            self.checkpoint()
        result.step, result.epoch = self.step, self.epoch_index
        complete = self.step == self.start_step and self.resume_path is not None and not result.interrupted
        if complete and (self.out / "export.pt").is_file():  # a complete run resumed: its export stays as it was
            result.resumed_complete = True
            barrier(self.context)
            return result
        evaluated = bool(result.evaluations) and result.evaluations[-1]["step"] == self.step
        if self.evaluate is not None and not result.interrupted and not evaluated:  # stopped by max_steps mid-epoch
            self.run_evaluation()
        if not result.interrupted and self.context.is_main:
            from lipsim_tm.models.checkpoints.export import save_export

            metadata = {
                "training": {
                    "kind": self.config.stage,
                    "steps": self.step,
                    "elapsed_s": self.elapsed(),
                    "resumes": self.resumes,
                    "epochs_completed": self.epoch_index,
                    "world_size": self.context.world_size,
                    "final_loss": result.history[-1]["loss"] if result.history else self.last_loss,
                    "evaluations": result.evaluations,
                    **(summary or {}),
                },
                "config": self.config.to_dict(),
            }
            result.export_path = self.out / "export.pt"
            result.export_sha256 = save_export(unwrap_model(self.wrapped), result.export_path, metadata=metadata)
        barrier(self.context)
        return result


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
    lock = _lock_output_dir(config, context)
    try:
        run = _Run(config, model, dataset, context, evaluate)
        stop = StopFlag()
        try:
            with stop.installed():
                while not run.done and not run.result.interrupted:
                    run.epoch(step_fn, stop)
        except KeyboardInterrupt:
            run.result.interrupted = True
            if not run.committing and run.saved_step != run.step:  # a half-updated model keeps the last checkpoint
                run.checkpoint()
            raise
        finally:
            run.bar.close()
        return run.finish(summary)
    finally:
        if lock is not None:
            lock.release()


def _lock_output_dir(config: TrainConfig, context: DistributedContext) -> FolderLock | None:
    """Rank 0's exclusive claim on the run folder (:class:`~lipsim_tm.files.FolderLock`), so two runs never write
    one folder; every rank raises when it is taken (the ranks agree through one collective)."""
    lock, refusal = None, None
    if context.is_main:
        try:
            lock = FolderLock(config.output_dir, "run folder").acquire()
        except FolderBusyError as error:
            refusal = error
    if any_rank(refusal is not None, context):
        raise refusal or FolderBusyError(f"the run folder {config.output_dir} is in use by another run")
    return lock


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
