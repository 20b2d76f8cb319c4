"""``lipsim train distill|finetune``: the training entry point, for one process or under torchrun.

Run on N processes with ``torchrun --nproc_per_node=N -m lipsim_tm.cli train ...`` (or
``torchrun --nproc_per_node=N $(which lipsim) train ...``); ``--batch-size`` is the global batch.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
from typing import Any

from lipsim_tm.training.config import (
    CERTIFIED_RADII,
    DISTILL_LOSSES,
    DTYPES,
    FINETUNE_DATASETS,
    PRECISIONS,
    DistillConfig,
    FinetuneConfig,
    TrainConfig,
)
from lipsim_tm.training.teachers import BUILT_IN_TEACHERS


def _default(cls: type, name: str) -> Any:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError) as error:
        raise argparse.ArgumentTypeError(
            f"VALUE of {key} must be a Python literal (e.g. 2, 0.25, (4, 0)), got {value!r}"
        ) from error


def _optional_split(text: str) -> str | None:
    return None if text.lower() == "none" else text


def _add_common(parser: argparse.ArgumentParser, cls: type[TrainConfig]) -> None:
    d = lambda name: _default(cls, name)  # noqa: E731
    run = parser.add_argument_group("run")
    run.add_argument("--output-dir", required=True, help="folder for checkpoints/, log.csv, eval.csv and export.pt")
    run.add_argument(
        "--model",
        default=None,
        help="student architecture: a named LipSim configuration (small, medium, large, xlarge, tiny32, tiny64)"
        f" (default: the architecture of --init-from, else {d('model')})",
    )
    run.add_argument(
        "--set-model",
        action="append",
        type=_override,
        default=[],
        metavar="KEY=VALUE",
        help="override one LipSimConfig field of the student, e.g. --set-model unshuffle=2 "
        "--set-model input_scale=0.25 (repeatable)",
    )
    run.add_argument(
        "--init-from",
        default=None,
        help="start from these weights (an export, an official checkpoint or a registered name such as 'default')"
        " instead of a fresh initialisation; it supplies the architecture unless --model is given (then they must"
        " agree)",
    )
    run.add_argument(
        "--resume",
        default=None,
        metavar="latest|auto|PATH",
        help="continue from a training checkpoint: 'latest' (the newest in --output-dir, error if "
        "none), 'auto' (the newest if any, else start fresh) or a checkpoint file; every setting that shapes "
        "training must equal the checkpoint's (see --allow-changed-settings)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --output-dir that holds an earlier run, after moving that run aside to "
        "OUTPUT_DIR.previous-<UTC time> (nothing is deleted); without it such a folder is refused",
    )
    run.add_argument(
        "--allow-changed-settings",
        action="store_true",
        help="with --resume: train on with settings that differ from the checkpoint's (lr, schedule, batch size, "
        "...); the new values apply from the resumed step and the changes are recorded in the export",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=d("seed"),
        help="seed of the initialisation, data order, crops and jitter (default: %(default)s)",
    )
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=d("device"),
        help="auto: CUDA when available (each torchrun process takes GPU LOCAL_RANK) (default: %(default)s)",
    )
    run.add_argument(
        "--num-workers",
        type=int,
        default=d("num_workers"),
        help="data-loading worker processes per training process (default: %(default)s)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads per training process (default: torch's choice; on a CPU shared with other jobs "
        "1 is often several times faster, see benchmarks/RESULTS-training.md)",
    )
    opt = parser.add_argument_group("optimisation")
    opt.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"passes over the data (default: {d('epochs')}, or as many as --max-steps needs when it is given)",
    )
    opt.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop after this many optimiser steps in total "
        "(also the length of the cosine schedule when shorter than --epochs)",
    )
    opt.add_argument(
        "--batch-size",
        type=int,
        default=d("batch_size"),
        help="global batch size, split evenly over the processes (default: %(default)s)",
    )
    opt.add_argument("--lr", type=float, default=d("lr"), help="peak Adam learning rate (default: %(default)s)")
    opt.add_argument(
        "--betas",
        type=float,
        nargs=2,
        default=d("betas"),
        metavar=("BETA1", "BETA2"),
        help="Adam betas (default: %(default)s)",
    )
    opt.add_argument(
        "--weight-decay", type=float, default=d("weight_decay"), help="Adam weight decay (default: %(default)s)"
    )
    opt.add_argument(
        "--warmup-steps",
        type=int,
        default=d("warmup_steps"),
        help="linear warm-up steps before the cosine decay (default: %(default)s)",
    )
    opt.add_argument(
        "--min-lr-factor",
        type=float,
        default=d("min_lr_factor"),
        help="final learning rate as a fraction of --lr (default: %(default)s)",
    )
    opt.add_argument(
        "--grad-clip", type=float, default=None, help="clip the global gradient l2 norm to this (default: off)"
    )
    opt.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d("precision"),
        help="fp32; bf16 autocast (CPU or GPU); fp16 autocast with gradient scaling (CUDA only) (default: %(default)s)",
    )
    opt.add_argument(
        "--dtype",
        choices=DTYPES,
        default=d("dtype"),
        help="parameter dtype (float64 for exact comparisons) (default: %(default)s)",
    )
    out = parser.add_argument_group("logging and checkpoints")
    out.add_argument(
        "--log-every", type=int, default=d("log_every"), help="write a log.csv row every N steps (default: %(default)s)"
    )
    out.add_argument(
        "--checkpoint-every",
        type=int,
        default=d("checkpoint_every"),
        help="save a checkpoint every N steps; one is also saved at the end and on Ctrl-C/SIGTERM "
        "(default: %(default)s)",
    )
    out.add_argument("--keep-last", type=int, default=d("keep_last"), help="checkpoints to keep (default: %(default)s)")
    out.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def _architecture(args: argparse.Namespace, cls: type[TrainConfig]) -> tuple[str, dict[str, Any]]:
    """``(model, model_overrides)``: as given, or (no ``--model``) the architecture of ``--init-from``."""
    overrides = dict(args.set_model)
    if args.model is not None or args.init_from is None:
        return args.model or _default(cls, "model"), overrides
    from lipsim_tm.models.checkpoints.export import config_to_dict
    from lipsim_tm.models.weights import load_backbone

    fields = config_to_dict(load_backbone(args.init_from).config)
    return _default(cls, "model"), {**fields, **overrides}


def _epochs(args: argparse.Namespace, cls: type[TrainConfig]) -> int:
    """``--epochs``, or without it: enough for ``--max-steps`` (one step per epoch at least), else the default."""
    if args.epochs is not None:
        return args.epochs
    return max(args.max_steps, 1) if args.max_steps is not None else _default(cls, "epochs")


def _common_kwargs(args: argparse.Namespace, cls: type[TrainConfig]) -> dict[str, Any]:
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    model, overrides = _architecture(args, cls)
    return {
        "output_dir": args.output_dir,
        "model": model,
        "model_overrides": overrides,
        "init_from": args.init_from,
        "resume": args.resume,
        "overwrite": args.overwrite,
        "allow_changed_settings": args.allow_changed_settings,
        "seed": args.seed,
        "device": args.device,
        "num_workers": args.num_workers,
        "epochs": _epochs(args, cls),
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "betas": tuple(args.betas),
        "weight_decay": args.weight_decay,
        "warmup_steps": args.warmup_steps,
        "min_lr_factor": args.min_lr_factor,
        "grad_clip": args.grad_clip,
        "precision": args.precision,
        "dtype": args.dtype,
        "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
        "keep_last": args.keep_last,
        "progress": not args.no_progress,
    }


def add_parser(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a LipSim student (distillation, then 2AFC fine-tuning)",
        description="Train a LipSim student. Stage 1: 'distill'; stage 2: 'finetune'.",
    )
    stages = train.add_subparsers(dest="stage", metavar="STAGE", required=True)

    distill = stages.add_parser(
        "distill",
        help="distil a teacher embedding into the 1-Lipschitz student on a folder of photos",
        description="Distil a teacher's embedding into the student: loss = mean of the per-image RMSE (or 1 - cos) "
        "on the plain crop and on its colour-jittered copy, both against the teacher's embedding of the plain crop. "
        "Defaults are the official recipe (Adam lr 0.01, betas 0.5 0.9, 2000 warm-up steps, cosine, batch 512, "
        "40 epochs).",
    )
    _add_common(distill, DistillConfig)
    d = lambda name: _default(DistillConfig, name)  # noqa: E731
    data = distill.add_argument_group("data and teacher")
    data.add_argument(
        "--data-dir", required=True, help="folder of photos (searched recursively; png, jpg, bmp, gif, tiff, webp, ppm)"
    )
    data.add_argument(
        "--teacher",
        required=True,
        metavar="SPEC",
        help="a built-in teacher: "
        + "; ".join(f"'{name}': {text}" for name, text in BUILT_IN_TEACHERS.items())
        + " (pip install 'lipsim-tm[teachers]'; weights downloaded on first use to <cache>/teachers/dreamsim, "
        "$LIPSIM_CACHE_DIR moves the cache); or 'export:PATH' (a LipSim export or official checkpoint); or "
        "'package.module:factory', a function called with no arguments that returns a callable (N, 3, S, S) images "
        "in [0, 1] -> (N, D) embeddings. D must equal the student's out_features (--set-model out_features=D)",
    )
    data.add_argument(
        "--teacher-id",
        default=None,
        help="name of the teacher's exact version, part of every cache "
        "key (default: derived from the spec, or the weights' hash for a module)",
    )
    data.add_argument(
        "--teacher-cache",
        default=None,
        metavar="DIR",
        help="cache the teacher's embeddings of each view in DIR (reused across epochs with "
        "--views-per-image, and across runs)",
    )
    data.add_argument("--loss", choices=DISTILL_LOSSES, default=d("loss"), help="per-view loss (default: %(default)s)")
    data.add_argument(
        "--crop", choices=("random", "center"), default=d("crop"), help="crop position (default: %(default)s)"
    )
    data.add_argument(
        "--resize",
        type=int,
        default=None,
        help="resize the shorter side to this before cropping (default: only when smaller than the crop)",
    )
    data.add_argument(
        "--flip-p", type=float, default=d("flip_p"), help="horizontal flip probability (default: %(default)s)"
    )
    data.add_argument(
        "--no-jitter", action="store_true", help="make the second view equal the first (no colour jitter)"
    )
    data.add_argument(
        "--views-per-image",
        type=int,
        default=None,
        help="cycle through this many crops per photo (epoch e uses the crops of e mod N)",
    )
    data.add_argument("--cache-images", action="store_true", help="keep decoded photos in memory")
    distill.set_defaults(func=run_distill_command)

    finetune = stages.add_parser(
        "finetune",
        help="fine-tune on 2AFC triplets with the hinge loss",
        description="Fine-tune on 2AFC triplets (NIGHTS, BAPPS or synthetic from photos) with the hinge loss "
        "max(0, margin - (d0 - d1)(2 round(p) - 1)) on sound normalised embeddings; natural and certified 2AFC "
        "scores of the validation split are written to eval.csv after every epoch.",
    )
    _add_common(finetune, FinetuneConfig)
    f = lambda name: _default(FinetuneConfig, name)  # noqa: E731
    data = finetune.add_argument_group("data and loss")
    data.add_argument(
        "--dataset",
        choices=FINETUNE_DATASETS,
        required=True,
        help="nights: NIGHTS folder with data.csv; bapps: folder holding 2afc/; synthetic: a folder of "
        "photos turned into same-family distortion triplets",
    )
    data.add_argument("--data-dir", required=True, help="the dataset folder")
    data.add_argument("--train-split", default=f("train_split"), help="training split (default: %(default)s)")
    data.add_argument(
        "--val-split",
        type=_optional_split,
        default=f("val_split"),
        help="evaluation split after each epoch, or 'none' (default: %(default)s)",
    )
    data.add_argument(
        "--margin", type=float, default=f("margin"), help="hinge margin (official: 0.5 or 0.2) (default: %(default)s)"
    )
    data.add_argument(
        "--normalization",
        choices=("augment", "ball", "plain"),
        default=f("normalization"),
        help="embedding normalisation: augment [f;1]/||[f;1]|| and ball are 1-Lipschitz; plain f/||f|| "
        "is not (no certified scores) (default: %(default)s)",
    )
    data.add_argument("--distance", choices=("cosine", "l2"), default=f("distance"), help="(default: %(default)s)")
    data.add_argument(
        "--eval-radii",
        type=float,
        nargs="*",
        default=list(CERTIFIED_RADII),
        help="l2 radii (pixels in [0, 1]) of the certified 2AFC scores (default: 36/255 72/255 108/255)",
    )
    data.add_argument("--eval-batch-size", type=int, default=f("eval_batch_size"), help="(default: %(default)s)")
    data.add_argument("--eval-max-triplets", type=int, default=None, help="evaluate on at most this many triplets")
    data.add_argument(
        "--synthetic-length",
        type=int,
        default=f("synthetic_length"),
        help="synthetic: training triplets (default: %(default)s)",
    )
    data.add_argument(
        "--synthetic-val-length",
        type=int,
        default=f("synthetic_val_length"),
        help="synthetic: validation triplets (default: %(default)s)",
    )
    data.add_argument(
        "--synthetic-families",
        nargs="+",
        default=list(f("synthetic_families")),
        help="synthetic: distortion families (default: %(default)s)",
    )
    data.add_argument(
        "--synthetic-cross-family",
        type=float,
        default=f("synthetic_cross_family"),
        help="synthetic: fraction of triplets mixing two families, labelled by --synthetic-labeller "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--synthetic-labeller",
        default=None,
        metavar="SPEC",
        help="synthetic: a teacher ('dreamsim', 'dreamsim:<branch>', 'export:PATH' or 'package.module:factory', as "
        "for distillation) whose embedding distances decide cross-family triplets",
    )
    data.add_argument("--bapps-subsets", nargs="+", default=None, help="bapps: subsets to use (default: all present)")
    data.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side the triplets are read at for training and evaluation; the certified radii in eval.csv are in"
        " these pixels, as lipsim certify's --image-size (default: the model's input size)",
    )
    data.add_argument(
        "--norm-floor",
        type=float,
        default=f("norm_floor"),
        help="embedding norm below which --norm-weight penalises (keeps norm-aware certificates large) "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--norm-weight",
        type=float,
        default=f("norm_weight"),
        help="weight of mean(relu(norm_floor - ||f(x)||)) in the loss; 0 turns it off (default: %(default)s)",
    )
    finetune.set_defaults(func=run_finetune_command)


def run_distill_command(args: argparse.Namespace) -> int:
    from lipsim_tm.training.distill import load_teacher_in_turn, run_distill
    from lipsim_tm.training.distributed import init_distributed, shutdown_distributed

    config = DistillConfig(
        **_common_kwargs(args, DistillConfig),
        data_dir=args.data_dir,
        teacher_id=args.teacher_id,
        teacher_cache=args.teacher_cache,
        loss=args.loss,
        crop=args.crop,
        resize=args.resize,
        flip_p=args.flip_p,
        jitter=not args.no_jitter,
        views_per_image=args.views_per_image,
        cache_images=args.cache_images,
    )
    try:
        context = init_distributed(config.device)
        teacher, teacher_id = load_teacher_in_turn(args.teacher, context)
        result = run_distill(config, teacher, teacher_id=teacher_id, context=context)
    finally:
        shutdown_distributed()
    return _report(result)


def run_finetune_command(args: argparse.Namespace) -> int:
    from lipsim_tm.training.distributed import shutdown_distributed
    from lipsim_tm.training.finetune import run_finetune

    config = FinetuneConfig(
        **_common_kwargs(args, FinetuneConfig),
        dataset=args.dataset,
        data_dir=args.data_dir,
        train_split=args.train_split,
        val_split=args.val_split,
        margin=args.margin,
        normalization=args.normalization,
        distance=args.distance,
        eval_radii=tuple(args.eval_radii),
        eval_batch_size=args.eval_batch_size,
        eval_max_triplets=args.eval_max_triplets,
        synthetic_length=args.synthetic_length,
        synthetic_val_length=args.synthetic_val_length,
        synthetic_families=tuple(args.synthetic_families),
        synthetic_cross_family=args.synthetic_cross_family,
        synthetic_labeller=args.synthetic_labeller,
        bapps_subsets=tuple(args.bapps_subsets) if args.bapps_subsets else None,
        norm_floor=args.norm_floor,
        norm_weight=args.norm_weight,
        image_size=args.image_size,
    )
    try:
        result = run_finetune(config)
    finally:
        shutdown_distributed()
    return _report(result)


def _report(result: Any) -> int:
    """One line from rank 0 (the others stay silent); exit code 130 when interrupted."""
    if result.interrupted:
        if result.is_main:
            print(f"interrupted at step {result.step}; checkpoint: {result.last_checkpoint}")
        return 130
    if not result.is_main:
        return 0
    if result.resumed_complete:
        print(f"nothing to train: the run is complete at step {result.step}; its export is unchanged")
    elif result.export_path is not None:
        print(f"done: {result.step} steps; export {result.export_path} sha256={result.export_sha256}")
    return 0
