"""Stage 1: distil a teacher embedding into the 1-Lipschitz student (reference section 5).

Loss per view: ``rmse`` (default) is the root-mean-square error between the student's and the
teacher's embedding, taken per image and averaged over the batch; ``cosine`` is ``1 - cos``. The
loss of a batch is the mean over the plain and the colour-jittered view, both compared with the
teacher's embedding of the plain view.

The official code takes one RMSE over the whole (DataParallel-gathered) batch. A square root of a
batch mean does not split over processes, so this trainer takes the RMSE per image: the loss is
then a plain batch mean, the gradient of a DDP run equals that of one process with the same global
batch, and the value does not depend on the batch size.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipsim_tm.checks import check_callable, check_choice
from lipsim_tm.data.image_folder import ImageFolderDataset
from lipsim_tm.data.transforms import ColorJitter
from lipsim_tm.distributed import DistributedContext, barrier, init_distributed
from lipsim_tm.training.config import DistillConfig
from lipsim_tm.training.teacher_cache import Teacher, TeacherCache, call_teacher
from lipsim_tm.training.trainer import TrainResult, build_student, train


def rmse_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean over the batch of the per-image RMSE ``sqrt(mean_d (s - t)^2)``; ``(N, D), (N, D) -> ()``."""
    squared = (student - teacher).pow(2).mean(dim=1)
    return torch.sqrt(squared + torch.finfo(squared.dtype).tiny).mean()  # tiny: finite gradient at 0


def cosine_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean over the batch of ``1 - cos(s, t)``; ``(N, D), (N, D) -> ()``."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=1, eps=1e-8)).mean()


def distillation_loss(plain: Tensor, jittered: Tensor, target: Tensor, kind: str = "rmse") -> Tensor:
    """``(L(plain, target) + L(jittered, target)) / 2`` for student embeddings of both views, ``(N, D)`` each."""
    losses = {"rmse": rmse_loss, "cosine": cosine_loss}
    check_choice("kind", kind, tuple(losses))
    if plain.shape != target.shape or jittered.shape != target.shape:
        raise ValueError(
            f"student embeddings {tuple(plain.shape)}, {tuple(jittered.shape)} must match "
            f"the teacher's {tuple(target.shape)}"
        )
    return 0.5 * (losses[kind](plain, target) + losses[kind](jittered, target))


class DistillStep:
    """One training step's loss: teacher on the plain view (cached if asked), student on both views."""

    def __init__(self, teacher: Teacher, *, kind: str = "rmse", cache: TeacherCache | None = None) -> None:
        self.teacher = teacher
        self.kind = kind
        self.cache = cache

    def targets(self, plain: Tensor, keys: Sequence[str]) -> Tensor:
        if self.cache is not None:
            return self.cache.embed(plain, keys)
        return call_teacher(self.teacher, plain)

    def __call__(self, model: nn.Module, batch: list[Any]) -> tuple[Tensor, int]:
        plain, jittered, keys = batch
        target = self.targets(plain, keys).detach()
        out = model(torch.cat([plain, jittered]))
        target = target.to(device=out.device, dtype=out.dtype)
        n = plain.shape[0]
        if target.ndim != 2 or target.shape != (n, out.shape[1]):
            raise ValueError(
                f"the teacher's embeddings have shape {tuple(target.shape)}, but the student produces "
                f"({n}, {out.shape[1]}): set the student's out_features to the teacher's width"
            )
        return distillation_loss(out[:n], out[n:], target, self.kind), 2 * n


def load_teacher(spec: str) -> tuple[Teacher, str]:
    """A teacher and its id from a built-in name (``"dreamsim"``, ``"dreamsim:<kind>"``: see
    :data:`~lipsim_tm.training.teachers.BUILT_IN_TEACHERS`), ``"export:PATH|NAME"`` (a LipSim export/checkpoint,
    or a registered weights name such as ``default``; views of another size are resized to its input size, see
    :class:`~lipsim_tm.training.teachers.sized.SizedTeacher`) or ``"package.module:factory"``.

    A factory is called with no arguments and must return the teacher (a module or function that maps
    ``(N, 3, S, S)`` images in [0, 1] to ``(N, D)`` embeddings). The id keys the teacher-embedding cache, so it
    changes whenever the teacher does: for exports the weights' sha256; for a factory the spec, the sha256 of
    the factory module's source file (code identity) and, for an ``nn.Module`` teacher, the sha256 of its state
    dict (weights). A function teacher's weights cannot be read: name its version with ``--teacher-id``.
    """
    if isinstance(spec, str) and (spec == "dreamsim" or spec.startswith("dreamsim:")):
        from lipsim_tm.training.teachers.dreamsim import load_dreamsim_teacher

        teacher = load_dreamsim_teacher(spec.partition(":")[2] or "ensemble")
        return teacher, teacher.identity()
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"teacher must be 'dreamsim', 'dreamsim:<kind>', 'export:PATH' or 'package.module:factory', got {spec!r}"
        )
    kind, _, rest = spec.partition(":")
    if kind == "export":
        from lipsim_tm.models.checkpoints.export import state_dict_sha256
        from lipsim_tm.models.weights import load_backbone
        from lipsim_tm.training.teachers.sized import SizedTeacher

        network = load_backbone(rest)
        identity = f"export:{state_dict_sha256(network.state_dict())}"
        return SizedTeacher(network, network.config.input_size), identity
    try:
        module = importlib.import_module(kind)
        factory = getattr(module, rest)
    except ModuleNotFoundError as error:
        hint = ""
        top = kind.partition(".")[0]
        if error.name == top and (Path(top).is_dir() or Path(f"{top}.py").is_file()):
            hint = (
                f"; {top!r} is in the current folder, which the lipsim command does not search:"
                " run with PYTHONPATH=. (or python -m lipsim_tm.cli)"
            )
        raise ValueError(f"cannot import teacher factory {spec!r}: {error}{hint}") from error
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import teacher factory {spec!r}: {error}") from error
    teacher = factory()
    if not callable(teacher):
        raise TypeError(f"teacher factory {spec!r} returned a non-callable {type(teacher).__name__}")
    return teacher, teacher_identity(spec, teacher, module)


def load_teacher_in_turn(spec: str, context: DistributedContext) -> tuple[Teacher, str]:
    """:func:`load_teacher` on every process of a torchrun job without two processes fetching the same weights at
    once: rank 0 first (a shared cache), then the first process of each other node (node-local caches), then the
    rest, each reading what the earlier ones wrote. One process: just :func:`load_teacher`."""
    if not context.distributed:
        return load_teacher(spec)
    turn = 0 if context.rank == 0 else 1 if context.local_rank == 0 else 2
    for _ in range(turn):  # every process passes 3 barriers: its turn comes after `turn` of them
        barrier(context)
    loaded = load_teacher(spec)
    for _ in range(turn, 3):
        barrier(context)
    return loaded


def teacher_identity(spec: str, teacher: Teacher, module: Any) -> str:
    """``spec|code:<sha256 of the factory module's file>|weights:<sha256 of the state dict>`` (weights for
    ``nn.Module`` teachers only): the cache key changes with the teacher's code or weights."""
    from lipsim_tm.models.checkpoints.export import state_dict_sha256
    from lipsim_tm.models.checkpoints.io import file_sha256

    parts = [spec]
    source = getattr(module, "__file__", None)
    if source is not None and Path(source).is_file():
        parts.append(f"code:{file_sha256(source)}")
    if isinstance(teacher, nn.Module):
        parts.append(f"weights:{state_dict_sha256(teacher.state_dict())}")
    return "|".join(parts)


def run_distill(
    config: DistillConfig,
    teacher: Teacher,
    *,
    teacher_id: str | None = None,
    context: DistributedContext | None = None,
) -> TrainResult:
    """Distil ``teacher`` into a fresh (or ``config.init_from``) student; see :func:`.trainer.train`."""
    if not isinstance(config, DistillConfig):
        raise TypeError(f"config must be a DistillConfig, got {type(config).__name__}")
    check_callable("teacher", teacher)
    context = context or init_distributed(config.device)
    if isinstance(teacher, nn.Module):
        teacher = teacher.to(context.device).eval().requires_grad_(False)
    model = build_student(config)
    width = getattr(teacher, "embedding_dim", None)
    if isinstance(width, int) and width != model.config.out_features:
        raise ValueError(
            f"the teacher produces {width}-d embeddings but the student's out_features is "
            f"{model.config.out_features}: set it to the teacher's width (--set-model out_features={width})"
        )
    dataset = ImageFolderDataset(
        config.data_dir,
        crop_size=model.config.input_size,
        crop=config.crop,
        resize=config.resize,
        flip_p=config.flip_p,
        jitter=ColorJitter() if config.jitter else None,
        seed=config.seed,
        views_per_image=config.views_per_image,
        cache_images=config.cache_images,
    )
    cache = None
    if config.teacher_cache is not None:
        cache = TeacherCache(config.teacher_cache, teacher, config.teacher_id or teacher_id)
    step = DistillStep(teacher, kind=config.loss, cache=cache)
    summary = {"images": len(dataset), "teacher_id": cache.teacher_id if cache else (config.teacher_id or teacher_id)}
    result = train(config, model=model, dataset=dataset, step_fn=step, context=context, summary=summary)
    if cache is not None and cache.replaced:
        process = f" (rank {context.rank})" if context.distributed else ""
        print(f"note: recomputed {cache.replaced} damaged teacher-cache entries in {cache.directory}{process}",
              file=sys.stderr)  # fmt: skip
    return result


def precompute_teacher_embeddings(
    dataset: ImageFolderDataset, cache: TeacherCache, *, epochs: Sequence[int] = (0,), batch_size: int = 64
) -> int:
    """Fill ``cache`` with the teacher's embeddings of the plain views of ``epochs``; returns the number computed."""
    before = cache.misses
    for epoch in epochs:
        dataset.set_epoch(epoch)
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            cache.embed(torch.stack([item[0] for item in items]), [item[2] for item in items])
    return cache.misses - before
