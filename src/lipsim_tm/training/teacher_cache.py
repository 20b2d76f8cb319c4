"""Teacher embeddings cached on disk, one file per (teacher, view).

A cached embedding is valid only for the exact pixels the teacher saw and the exact teacher. The
key therefore combines ``teacher_id`` (which must change whenever the teacher's weights or code
change; for an ``nn.Module`` teacher the default is its class name plus a hash of its state dict)
with the view key of :class:`~lipsim_tm.data.image_folder.ViewSpec` (file path, size and
modification time, resize, crop box, flip). Each file also stores its full key, checked on read.

An entry is recomputable by definition: one that cannot be read back (truncated or corrupted by a crash or a
full disk, or holding another key) is computed again and rewritten, and counted in ``replaced``. Entries are
written atomically, so processes sharing one cache folder never read a partial entry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from lipsim_tm.checks import check_callable
from lipsim_tm.files import atomic_torch_save
from lipsim_tm.models.checkpoints.io import read_checkpoint

Teacher = Callable[[Tensor], Tensor]


def default_teacher_id(teacher: Teacher) -> str:
    """``ClassName:sha256-of-state-dict`` for a module teacher; ValueError for other callables."""
    if isinstance(teacher, nn.Module):
        from lipsim_tm.models.checkpoints.export import state_dict_sha256

        return f"{type(teacher).__qualname__}:{state_dict_sha256(teacher.state_dict())}"
    raise ValueError(
        "teacher_id is required to cache the embeddings of a teacher that is not an nn.Module "
        f"(got {type(teacher).__name__}): name it so that it changes whenever the teacher does"
    )


def call_teacher(teacher: Teacher, images: Tensor) -> Tensor:
    """``teacher(images)`` without gradients, casting the images to a module teacher's parameter dtype."""
    if isinstance(teacher, nn.Module):
        first = next(iter(teacher.parameters()), None)
        if first is not None:
            images = images.to(first.dtype)
    with torch.no_grad():
        return teacher(images)


class TeacherCache:
    """Embeddings of ``teacher`` under ``directory``, computed only for views not seen before."""

    def __init__(self, directory: str | os.PathLike[str], teacher: Teacher, teacher_id: str | None = None) -> None:
        check_callable("teacher", teacher)
        self.directory = Path(directory)
        self.teacher = teacher
        self.teacher_id = teacher_id if teacher_id is not None else default_teacher_id(teacher)
        self.hits = 0
        self.misses = 0
        #: Damaged entries computed again and rewritten.
        self.replaced = 0

    def _path(self, key: str) -> tuple[Path, str]:
        full = f"{self.teacher_id}\n{key}"
        digest = hashlib.sha256(full.encode("utf-8")).hexdigest()
        return self.directory / digest[:2] / f"{digest}.pt", full

    @staticmethod
    def _read(path: Path, full: str) -> Tensor | None:
        """The embedding stored at ``path`` under ``full``, or None when the entry is damaged."""
        try:
            stored = read_checkpoint(path, "teacher-cache entry")
        except (ValueError, OSError):
            return None
        if not isinstance(stored, dict) or stored.get("key") != full:
            return None
        embedding = stored.get("embedding")
        return embedding if isinstance(embedding, Tensor) and embedding.ndim == 1 else None

    def embed(self, images: Tensor, keys: Sequence[str]) -> Tensor:
        """Teacher embeddings ``(N, D)`` of ``images`` ``(N, 3, S, S)`` whose views are named by ``keys``."""
        if len(keys) != images.shape[0]:
            raise ValueError(f"need one key per image: {images.shape[0]} images, {len(keys)} keys")
        found: list[Tensor | None] = []
        for key in keys:
            path, full = self._path(key)
            stored = path.is_file()  # once: another process may write the entry meanwhile
            embedding = self._read(path, full) if stored else None
            if stored and embedding is None:
                self.replaced += 1
            found.append(embedding)
        missing = [i for i, e in enumerate(found) if e is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = call_teacher(self.teacher, images[missing])
            if not isinstance(computed, Tensor) or computed.ndim != 2 or computed.shape[0] != len(missing):
                shape = tuple(computed.shape) if isinstance(computed, Tensor) else type(computed).__name__
                raise ValueError(f"teacher must return embeddings of shape (N, D) for N={len(missing)}, got {shape}")
            for i, embedding in zip(missing, computed, strict=True):
                path, full = self._path(keys[i])
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_torch_save(
                    {"key": full, "embedding": embedding.detach().cpu().clone()}, path, "teacher-cache entry"
                )
                found[i] = embedding.detach()
        device = images.device
        return torch.stack([e.to(device) for e in found])  # type: ignore[union-attr]
