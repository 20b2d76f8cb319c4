"""Run configurations for distillation and 2AFC fine-tuning, validated on construction.

Every invalid value raises ``ValueError``/``TypeError`` naming the field, what was expected and what
came. ``batch_size`` is always the *global* batch (summed over ranks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lipsim_tm.data.distortions import DISTORTION_FAMILIES
from lipsim_tm.data.image_folder import CROP_MODES
from lipsim_tm.data.nights import NIGHTS_SPLITS
from lipsim_tm.models.backbone import LipSimConfig, resolve_config

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: tuple[str, ...] = ("float32", "float64")
DISTILL_LOSSES: tuple[str, ...] = ("rmse", "cosine")
FINETUNE_DATASETS: tuple[str, ...] = ("nights", "bapps", "synthetic")
#: Settings that may change between a run and its resumption without changing what is trained: where files go,
#: how progress is shown and logged, data-loading workers, the device, evaluation batching and the teacher cache.
UNSHAPING_SETTINGS: frozenset[str] = frozenset(
    {
        "output_dir",
        "resume",
        "overwrite",
        "allow_changed_settings",
        "progress",
        "num_workers",
        "device",
        "log_every",
        "checkpoint_every",
        "keep_last",
        "eval_batch_size",
        "teacher_cache",
        "cache_images",
    }
)
CERTIFIED_RADII: tuple[float, ...] = (36 / 255, 72 / 255, 108 / 255)


def _positive_int(name: str, value: object, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _number(name: str, value: object, *, low: float, high: float = float("inf"), low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(kw_only=True)
class TrainConfig:
    """Fields shared by every training run (see ``lipsim train ... --help`` for each one's meaning)."""

    #: The stage's name: the progress label and the export's training kind.
    stage: ClassVar[str] = "train"

    output_dir: str
    model: str = "small"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    min_lr_factor: float = 0.0
    grad_clip: float | None = None
    precision: str = "fp32"
    dtype: str = "float32"
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    log_every: int = 10
    checkpoint_every: int = 500
    keep_last: int = 3
    resume: str | None = None
    overwrite: bool = False
    allow_changed_settings: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ValueError(f"output_dir must be a non-empty path, got {self.output_dir!r}")
        self.model_config()  # validates model and model_overrides
        _positive_int("epochs", self.epochs)
        if self.max_steps is not None:
            _positive_int("max_steps", self.max_steps)
        _positive_int("batch_size", self.batch_size)
        _number("lr", self.lr, low=0.0, low_open=True)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair of numbers, got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            _number(f"betas[{i}]", beta, low=0.0, high=1.0)
            if beta >= 1.0:
                raise ValueError(f"betas[{i}] must be < 1, got {beta}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        _number("weight_decay", self.weight_decay, low=0.0)
        _positive_int("warmup_steps", self.warmup_steps, allow_zero=True)
        _number("min_lr_factor", self.min_lr_factor, low=0.0, high=1.0)
        if self.grad_clip is not None:
            _number("grad_clip", self.grad_clip, low=0.0, low_open=True)
        _choice("precision", self.precision, PRECISIONS)
        _choice("dtype", self.dtype, DTYPES)
        if self.precision != "fp32" and self.dtype != "float32":
            raise ValueError(
                f"precision={self.precision!r} (mixed precision) needs dtype='float32', got {self.dtype!r}"
            )
        _choice("device", self.device, ("auto", "cpu", "cuda"))
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("precision='fp16' needs CUDA; use 'bf16' for mixed precision on the CPU")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        _positive_int("num_workers", self.num_workers, allow_zero=True)
        _positive_int("log_every", self.log_every)
        _positive_int("checkpoint_every", self.checkpoint_every)
        _positive_int("keep_last", self.keep_last)
        for name in ("overwrite", "allow_changed_settings", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
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


@dataclass(kw_only=True)
class DistillConfig(TrainConfig):
    """Distillation of a teacher embedding into the student on a folder of photos.

    Defaults are the official recipe: Adam lr 0.01, betas (0.5, 0.9), 2000 warm-up steps then
    cosine, global batch 512, 40 epochs, RMSE loss on the plain and jittered views.
    """

    stage: ClassVar[str] = "distill"

    data_dir: str
    lr: float = 0.01
    batch_size: int = 512
    epochs: int = 40
    warmup_steps: int = 2000
    loss: str = "rmse"
    crop: str = "random"
    resize: int | None = None
    flip_p: float = 0.5
    jitter: bool = True
    views_per_image: int | None = None
    teacher_cache: str | None = None
    teacher_id: str | None = None
    cache_images: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.data_dir, str) or not self.data_dir:
            raise ValueError(f"data_dir must be a non-empty path, got {self.data_dir!r}")
        _choice("loss", self.loss, DISTILL_LOSSES)
        _choice("crop", self.crop, CROP_MODES)
        size = self.model_config().input_size
        if self.resize is not None:
            _positive_int("resize", self.resize)
            if self.resize < size:
                raise ValueError(f"resize must be >= the model input size {size}, got {self.resize}")
        _number("flip_p", self.flip_p, low=0.0, high=1.0)
        if self.views_per_image is not None:
            _positive_int("views_per_image", self.views_per_image)


@dataclass(kw_only=True)
class FinetuneConfig(TrainConfig):
    """2AFC fine-tuning with the hinge loss on ``d0 - d1`` (official: margin 0.5 or 0.2, batch 32, 1 epoch).

    ``image_size``: the side the triplets are read at (training and evaluation), and so the pixel space of the
    evaluation's certified radii (default: the model's input size).

    ``norm_weight * mean(relu(norm_floor - ||f(x)||))`` is added to the loss when ``norm_weight > 0``:
    hinge-only training shrinks the embedding norms, and with them the norm-aware certificates.
    """

    stage: ClassVar[str] = "finetune"

    dataset: str
    data_dir: str
    train_split: str = "train"
    val_split: str | None = "val"
    margin: float = 0.5
    normalization: str = "augment"
    distance: str = "cosine"
    lr: float = 1e-4
    eval_radii: tuple[float, ...] = CERTIFIED_RADII
    eval_batch_size: int = 64
    eval_max_triplets: int | None = None
    synthetic_length: int = 2000
    synthetic_val_length: int = 500
    synthetic_families: tuple[str, ...] = tuple(DISTORTION_FAMILIES)
    synthetic_cross_family: float = 0.0
    synthetic_labeller: str | None = None
    bapps_subsets: tuple[str, ...] | None = None
    norm_floor: float = 0.0
    norm_weight: float = 0.0
    image_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("dataset", self.dataset, FINETUNE_DATASETS)
        if self.image_size is not None:
            _positive_int("image_size", self.image_size)
        _number("norm_floor", self.norm_floor, low=0.0)
        _number("norm_weight", self.norm_weight, low=0.0)
        if not isinstance(self.data_dir, str) or not self.data_dir:
            raise ValueError(f"data_dir must be a non-empty path, got {self.data_dir!r}")
        if self.dataset == "nights":
            _choice("train_split", self.train_split, NIGHTS_SPLITS)
            if self.val_split is not None:
                _choice("val_split", self.val_split, NIGHTS_SPLITS)
        elif self.dataset == "bapps":
            _choice("train_split", self.train_split, ("train", "val"))
            if self.val_split is not None:
                _choice("val_split", self.val_split, ("train", "val"))
        _number("margin", self.margin, low=0.0)
        _choice("normalization", self.normalization, ("augment", "ball", "plain"))
        _choice("distance", self.distance, ("cosine", "l2"))
        self.eval_radii = tuple(self.eval_radii)
        for i, radius in enumerate(self.eval_radii):
            _number(f"eval_radii[{i}]", radius, low=0.0)
        _positive_int("eval_batch_size", self.eval_batch_size)
        if self.eval_max_triplets is not None:
            _positive_int("eval_max_triplets", self.eval_max_triplets)
        _positive_int("synthetic_length", self.synthetic_length)
        _positive_int("synthetic_val_length", self.synthetic_val_length)
        _number("synthetic_cross_family", self.synthetic_cross_family, low=0.0, high=1.0)
        if self.synthetic_cross_family > 0 and self.synthetic_labeller is None:
            raise ValueError("synthetic_cross_family > 0 needs synthetic_labeller (a teacher spec that labels them)")
        self.synthetic_families = tuple(self.synthetic_families)
        unknown = [f for f in self.synthetic_families if f not in DISTORTION_FAMILIES]
        if unknown or not self.synthetic_families:
            raise ValueError(
                f"synthetic_families must be a non-empty subset of {sorted(DISTORTION_FAMILIES)}, "
                f"got {list(self.synthetic_families)}"
            )


__all__ = [
    "CERTIFIED_RADII",
    "DISTILL_LOSSES",
    "DTYPES",
    "FINETUNE_DATASETS",
    "PRECISIONS",
    "UNSHAPING_SETTINGS",
    "DistillConfig",
    "FinetuneConfig",
    "TrainConfig",
]
