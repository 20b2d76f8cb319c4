"""Run configurations for distillation and 2AFC fine-tuning: each setting's name, type, default, help and command-line
form in one place (the ``lipsim train`` parser is generated from these dataclasses), validated on construction.

Every invalid value raises ``ValueError``/``TypeError`` naming the field, what was expected and what came
(:mod:`lipsim_tm.checks`). ``batch_size`` is always the *global* batch (summed over ranks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lipsim_tm.checks import check_bool, check_choice, check_int, check_number
from lipsim_tm.data.distortions import DISTORTION_FAMILIES
from lipsim_tm.data.image_folder import CROP_MODES
from lipsim_tm.data.nights import NIGHTS_SPLITS
from lipsim_tm.functional.certificates.policy import PAPER_EPSILONS
from lipsim_tm.models.backbone import NAMED_CONFIGS, LipSimConfig, resolve_config

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: tuple[str, ...] = ("float32", "float64")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DISTILL_LOSSES: tuple[str, ...] = ("rmse", "cosine")
FINETUNE_DATASETS: tuple[str, ...] = ("nights", "bapps", "synthetic")
NORMALIZATIONS: tuple[str, ...] = ("augment", "ball", "plain")
DISTANCES: tuple[str, ...] = ("cosine", "l2")

#: Option groups of ``lipsim train --help``, in order.
GROUPS: tuple[str, ...] = ("run", "optimisation", "logging and checkpoints", "data")


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    group: str = "run",
    shapes_training: bool = True,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    old_flag: str | None = None,
    parse: Callable[[str], Any] | str | None = None,
    metavar: str | tuple[str, ...] | None = None,
    shown_default: str | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A config field with its command-line form in ``metadata``.

    Args:
        help: the option's help (the default is appended, written as a user types it, unless ``shown_default``).
        group: the ``--help`` group, one of :data:`GROUPS`.
        shapes_training: False for settings that may change when a run is resumed without changing what is
            trained (where files go, how progress is shown, workers, device, evaluation batching, caches).
        choices, metavar: as in ``argparse``; ``flag``: the option's name (default ``--field-name``); ``old_flag``:
            its earlier name, still accepted with a note; ``parse``: the argparse type (default from the annotation;
            ``"eps"``: an l2 budget such as ``36/255``).
    """
    metadata = {
        "help": help,
        "group": group,
        "shapes_training": shapes_training,
        "choices": choices,
        "flag": flag,
        "old_flag": old_flag,
        "parse": parse,
        "metavar": metavar,
        "shown_default": shown_default,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def redefault(cls: type, name: str, default: Any) -> Any:
    """``cls``'s field ``name`` with another default (a subclass's recipe), its help and command-line form kept."""
    return field(default=default, metadata=cls.__dataclass_fields__[name].metadata)


def optional_split(text: str) -> str | None:
    """``--val-split none`` (any case) means no evaluation split."""
    return None if text.lower() == "none" else text


@dataclass(kw_only=True)
class TrainConfig:
    """Fields shared by every training run (see ``lipsim train ... --help`` for each one's meaning)."""

    #: The stage's name: the progress label and the export's training kind.
    stage: ClassVar[str] = "train"

    output_dir: str = setting(
        flag="--out",
        old_flag="--output-dir",
        shapes_training=False,
        help="the run's folder: checkpoints/, log.csv, eval.csv and export.pt",
    )
    model: str = setting(
        "small",
        help="student architecture: a named LipSim configuration (" + ", ".join(NAMED_CONFIGS) + ")",
        shown_default="the architecture of --init-from, else small",
    )
    model_overrides: dict[str, Any] = setting(
        factory=dict,
        flag="--set-model",
        metavar="KEY=VALUE",
        help="override one LipSimConfig field of the student, e.g. --set-model unshuffle=2"
        " --set-model input_scale=0.25 (repeatable)",
    )
    init_from: str | None = setting(
        None,
        help="start from these weights (an export, an official checkpoint or a registered name such as 'default')"
        " instead of a fresh initialisation; it supplies the architecture unless --model is given (then they must"
        " agree)",
    )
    epochs: int = setting(
        1,
        group="optimisation",
        help="passes over the data",
        shown_default="{default}, or as many as --max-steps needs when it is given",
    )
    max_steps: int | None = setting(
        None,
        group="optimisation",
        help="stop after this many optimiser steps in total (also the length of the cosine schedule when shorter"
        " than --epochs)",
    )
    batch_size: int = setting(32, group="optimisation", help="global batch size, split evenly over the processes")
    lr: float = setting(1e-3, group="optimisation", help="peak Adam learning rate")
    betas: tuple[float, float] = setting(
        (0.5, 0.9), group="optimisation", metavar=("BETA1", "BETA2"), help="Adam betas"
    )
    weight_decay: float = setting(0.0, group="optimisation", help="Adam weight decay")
    warmup_steps: int = setting(0, group="optimisation", help="linear warm-up steps before the cosine decay")
    min_lr_factor: float = setting(0.0, group="optimisation", help="final learning rate as a fraction of --lr")
    grad_clip: float | None = setting(
        None, group="optimisation", help="clip the global gradient l2 norm to this", shown_default="off"
    )
    precision: str = setting(
        "fp32",
        group="optimisation",
        choices=PRECISIONS,
        help="fp32; bf16 autocast (CPU or GPU); fp16 autocast with gradient scaling (CUDA only)",
    )
    dtype: str = setting(
        "float32", group="optimisation", choices=DTYPES, help="parameter dtype (float64 for exact comparisons)"
    )
    seed: int = setting(0, help="seed of the initialisation, data order, crops and jitter")
    num_workers: int = setting(
        0,
        flag="--workers",
        old_flag="--num-workers",
        shapes_training=False,
        help="data-loading worker processes per training process",
    )
    device: str = setting(
        "auto",
        choices=DEVICES,
        shapes_training=False,
        help="auto: CUDA when available (each torchrun process takes GPU LOCAL_RANK)",
    )
    log_every: int = setting(
        10, group="logging and checkpoints", shapes_training=False, help="write a log.csv row every N steps"
    )
    checkpoint_every: int = setting(
        500,
        group="logging and checkpoints",
        shapes_training=False,
        help="save a checkpoint every N steps; one is also saved at the end and on Ctrl-C/SIGTERM",
    )
    keep_last: int = setting(3, group="logging and checkpoints", shapes_training=False, help="checkpoints to keep")
    resume: str | None = setting(
        None,
        shapes_training=False,
        metavar="latest|auto|PATH",
        help="continue from a training checkpoint: 'latest' (the newest in --out, error if none), 'auto'"
        " (the newest if any, else start fresh) or a checkpoint file; every setting that shapes training must"
        " equal the checkpoint's (see --allow-changed-settings)",
    )
    overwrite: bool = setting(
        False,
        shapes_training=False,
        help="start afresh in an --out folder that holds an earlier run, after moving that run aside to"
        " OUT.previous-<UTC time> (nothing is deleted); without it such a folder is refused",
    )
    allow_changed_settings: bool = setting(
        False,
        shapes_training=False,
        help="with --resume: train on with settings that differ from the checkpoint's (lr, schedule, batch size,"
        " ...); the new values apply from the resumed step and the changes are recorded in the export",
    )
    progress: bool = setting(
        True, group="logging and checkpoints", shapes_training=False, help="do not show the progress bar"
    )

    def __post_init__(self) -> None:
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ValueError(f"output_dir must be a non-empty path, got {self.output_dir!r}")
        self.model_config()  # validates model and model_overrides
        check_int("epochs", self.epochs, minimum=1)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_number("lr", self.lr, minimum=0.0, open_minimum=True)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair of numbers, got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            check_number(f"betas[{i}]", beta, minimum=0.0, maximum=1.0)
            if beta >= 1.0:
                raise ValueError(f"betas[{i}] must be < 1, got {beta}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        check_number("weight_decay", self.weight_decay, minimum=0.0)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_number("min_lr_factor", self.min_lr_factor, minimum=0.0, maximum=1.0)
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip, minimum=0.0, open_minimum=True)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("dtype", self.dtype, DTYPES)
        if self.precision != "fp32" and self.dtype != "float32":
            raise ValueError(
                f"precision={self.precision!r} (mixed precision) needs dtype='float32', got {self.dtype!r}"
            )
        check_choice("device", self.device, DEVICES)
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("precision='fp16' needs CUDA; use 'bf16' for mixed precision on the CPU")
        check_int("seed", self.seed, minimum=0)
        check_int("num_workers", self.num_workers, minimum=0)
        check_int("log_every", self.log_every, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_int("keep_last", self.keep_last, minimum=1)
        for name in ("overwrite", "allow_changed_settings", "progress"):
            check_bool(name, getattr(self, name))
        if self.overwrite and self.resume is not None:
            raise ValueError("overwrite=True starts afresh and cannot be combined with resume")

    def model_config(self) -> LipSimConfig:
        """The student's architecture: the named configuration with ``model_overrides`` applied."""
        if not isinstance(self.model_overrides, dict):
            raise TypeError(f"model_overrides must be a dict, got {type(self.model_overrides).__name__}")
        try:
            return resolve_config(self.model, **self.model_overrides)
        except (TypeError, ValueError) as error:
            raise ValueError(f"model={self.model!r} with overrides {self.model_overrides}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """Plain-value dict of every field (tuples as lists), for metadata and logs."""

        def plain(value: Any) -> Any:
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each setting's default as :meth:`to_dict` writes it (settings without a default are left out)."""
        found = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                found[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                found[f.name] = f.default_factory()
        return {name: [*value] if isinstance(value, tuple) else value for name, value in found.items()}

    @classmethod
    def unshaping_settings(cls) -> frozenset[str]:
        """Settings that may change between a run and its resumption without changing what is trained."""
        return frozenset(f.name for f in dataclasses.fields(cls) if not f.metadata["shapes_training"])


@dataclass(kw_only=True)
class DistillConfig(TrainConfig):
    """Distillation of a teacher embedding into the student on a folder of photos.

    Defaults are the official recipe: Adam lr 0.01, betas (0.5, 0.9), 2000 warm-up steps then
    cosine, global batch 512, 40 epochs, RMSE loss on the plain and jittered views.
    """

    stage: ClassVar[str] = "distill"

    data_dir: str = setting(
        group="data", help="folder of photos (searched recursively; png, jpg, bmp, gif, tiff, webp, ppm)"
    )
    lr: float = redefault(TrainConfig, "lr", 0.01)
    batch_size: int = redefault(TrainConfig, "batch_size", 512)
    epochs: int = redefault(TrainConfig, "epochs", 40)
    warmup_steps: int = redefault(TrainConfig, "warmup_steps", 2000)
    loss: str = setting("rmse", group="data", choices=DISTILL_LOSSES, help="per-view loss")
    crop: str = setting("random", group="data", choices=CROP_MODES, help="crop position")
    resize: int | None = setting(
        None,
        group="data",
        help="resize the shorter side to this before cropping",
        shown_default="only when smaller than the crop",
    )
    flip_p: float = setting(0.5, group="data", help="horizontal flip probability")
    jitter: bool = setting(True, group="data", help="make the second view equal the first (no colour jitter)")
    views_per_image: int | None = setting(
        None, group="data", help="cycle through this many crops per photo (epoch e uses the crops of e mod N)"
    )
    teacher_cache: str | None = setting(
        None,
        group="data",
        shapes_training=False,
        metavar="DIR",
        help="cache the teacher's embeddings of each view in DIR (reused across epochs with --views-per-image, and"
        " across runs)",
    )
    teacher_id: str | None = setting(
        None,
        group="data",
        help="name of the teacher's exact version, part of every cache key",
        shown_default="derived from the spec, or the weights' hash for a module",
    )
    cache_images: bool = setting(False, group="data", shapes_training=False, help="keep decoded photos in memory")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.data_dir, str) or not self.data_dir:
            raise ValueError(f"data_dir must be a non-empty path, got {self.data_dir!r}")
        check_choice("loss", self.loss, DISTILL_LOSSES)
        check_choice("crop", self.crop, CROP_MODES)
        size = self.model_config().input_size
        if self.resize is not None:
            check_int("resize", self.resize, minimum=1)
            if self.resize < size:
                raise ValueError(f"resize must be >= the model input size {size}, got {self.resize}")
        check_number("flip_p", self.flip_p, minimum=0.0, maximum=1.0)
        if self.views_per_image is not None:
            check_int("views_per_image", self.views_per_image, minimum=1)


@dataclass(kw_only=True)
class FinetuneConfig(TrainConfig):
    """2AFC fine-tuning with the hinge loss on ``d0 - d1`` (official: margin 0.5 or 0.2, batch 32, 1 epoch).

    ``image_size``: the side the triplets are read at (training and evaluation), and so the pixel space of the
    evaluation's certified radii (default: the dataset's own resolution, NIGHTS 224 and BAPPS 64; synthetic
    triplets: the model's input size).

    ``norm_weight * mean(relu(norm_floor - ||f(x)||))`` is added to the loss when ``norm_weight > 0``:
    hinge-only training shrinks the embedding norms, and with them the norm-aware certificates.
    """

    stage: ClassVar[str] = "finetune"

    dataset: str = setting(
        group="data",
        flag="--format",
        old_flag="--dataset",
        choices=FINETUNE_DATASETS,
        help="layout of --data-dir: nights: a NIGHTS folder (data.csv, ref/, distort/); bapps: a BAPPS folder (holding"
        " 2afc/); synthetic: a folder of photos, turned into same-family distortion triplets",
    )
    data_dir: str = setting(group="data", help="the dataset folder")
    train_split: str = setting("train", group="data", help="training split")
    val_split: str | None = setting(
        "val", group="data", parse=optional_split, help="evaluation split after each epoch, or 'none'"
    )
    min_votes: int = setting(
        6, group="data", help="nights: keep the rows of data.csv with at least this many votes (official filter: 6)"
    )
    margin: float = setting(0.5, group="data", help="hinge margin (official: 0.5 or 0.2)")
    normalization: str = setting(
        "augment",
        group="data",
        choices=NORMALIZATIONS,
        help="embedding normalisation: augment [f;1]/||[f;1]|| and ball are 1-Lipschitz; plain f/||f|| is not"
        " (no certified scores)",
    )
    distance: str = setting("cosine", group="data", choices=DISTANCES, help="distance form of the hinge loss")
    lr: float = redefault(TrainConfig, "lr", 1e-4)
    eval_radii: tuple[float, ...] = setting(
        PAPER_EPSILONS,
        group="data",
        flag="--eval-eps",
        old_flag="--eval-radii",
        parse="eps",
        help="l2 budgets (pixels in [0, 1], numbers or fractions such as 36/255) of the certified 2AFC scores",
        shown_default="36/255 72/255 108/255",
    )
    eval_batch_size: int = setting(64, group="data", shapes_training=False, help="evaluation batch size")
    eval_max_triplets: int | None = setting(
        None, group="data", flag="--eval-limit", old_flag="--eval-max-triplets", help="evaluate the first N triplets"
    )
    synthetic_length: int = setting(2000, group="data", help="synthetic: training triplets")
    synthetic_val_length: int = setting(500, group="data", help="synthetic: validation triplets")
    synthetic_families: tuple[str, ...] = setting(
        tuple(DISTORTION_FAMILIES), group="data", help="synthetic: distortion families"
    )
    synthetic_cross_family: float = setting(
        0.0,
        group="data",
        help="synthetic: fraction of triplets mixing two families, labelled by --synthetic-labeller",
    )
    synthetic_labeller: str | None = setting(
        None,
        group="data",
        metavar="SPEC",
        help="synthetic: a teacher ('dreamsim', 'dreamsim:<branch>', 'export:PATH' or 'package.module:factory', as"
        " for distillation) whose embedding distances decide cross-family triplets",
    )
    bapps_subsets: tuple[str, ...] | None = setting(
        None, group="data", help="bapps: subsets to use", shown_default="all present"
    )
    norm_floor: float = setting(
        0.0,
        group="data",
        help="embedding norm below which --norm-weight penalises (keeps norm-aware certificates large)",
    )
    norm_weight: float = setting(
        0.0, group="data", help="weight of mean(relu(norm_floor - ||f(x)||)) in the loss; 0 turns it off"
    )
    image_size: int | None = setting(
        None,
        group="data",
        help="side the triplets are read at for training and evaluation, and the space the certified radii in"
        " eval.csv are measured in (as lipsim certify's and lipsim robustness's --image-size)",
        shown_default="nights 224, bapps 64, synthetic: the model's input size",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("dataset", self.dataset, FINETUNE_DATASETS)
        check_int("min_votes", self.min_votes, minimum=1)
        if self.image_size is not None:
            check_int("image_size", self.image_size, minimum=1)
        check_number("norm_floor", self.norm_floor, minimum=0.0)
        check_number("norm_weight", self.norm_weight, minimum=0.0)
        if not isinstance(self.data_dir, str) or not self.data_dir:
            raise ValueError(f"data_dir must be a non-empty path, got {self.data_dir!r}")
        if self.dataset == "nights":
            check_choice("train_split", self.train_split, NIGHTS_SPLITS)
            if self.val_split is not None:
                check_choice("val_split", self.val_split, NIGHTS_SPLITS)
        elif self.dataset == "bapps":
            check_choice("train_split", self.train_split, ("train", "val"))
            if self.val_split is not None:
                check_choice("val_split", self.val_split, ("train", "val"))
        check_number("margin", self.margin, minimum=0.0)
        check_choice("normalization", self.normalization, NORMALIZATIONS)
        check_choice("distance", self.distance, DISTANCES)
        self.eval_radii = tuple(self.eval_radii)
        for i, radius in enumerate(self.eval_radii):
            check_number(f"eval_radii[{i}]", radius, minimum=0.0)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        if self.eval_max_triplets is not None:
            check_int("eval_max_triplets", self.eval_max_triplets, minimum=1)
        check_int("synthetic_length", self.synthetic_length, minimum=1)
        check_int("synthetic_val_length", self.synthetic_val_length, minimum=1)
        check_number("synthetic_cross_family", self.synthetic_cross_family, minimum=0.0, maximum=1.0)
        if self.synthetic_cross_family > 0 and self.synthetic_labeller is None:
            raise ValueError("synthetic_cross_family > 0 needs synthetic_labeller (a teacher spec that labels them)")
        self.synthetic_families = tuple(self.synthetic_families)
        if self.bapps_subsets is not None:
            self.bapps_subsets = tuple(self.bapps_subsets)
        unknown = [f for f in self.synthetic_families if f not in DISTORTION_FAMILIES]
        if unknown or not self.synthetic_families:
            raise ValueError(
                f"synthetic_families must be a non-empty subset of {sorted(DISTORTION_FAMILIES)}, "
                f"got {list(self.synthetic_families)}"
            )
