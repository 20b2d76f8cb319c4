"""Image files to tensors, with errors that name the file, and index paths that cannot escape a root.

Decoding uses Pillow only (torchvision does not import next to the CPU torch stack used here).
Every loaded image is an RGB ``float32`` tensor of shape ``(3, H, W)`` with values in ``[0, 1]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def load_pil(path: str | os.PathLike[str]) -> Image.Image:
    """Decode ``path`` fully into an RGB Pillow image; ``FileNotFoundError``/``ValueError`` name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot decode image file {path}: {error}") from error


def pil_to_tensor(image: Image.Image) -> Tensor:
    """RGB Pillow image -> ``float32`` tensor ``(3, H, W)`` in ``[0, 1]``."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)


def tensor_to_pil(image: Tensor) -> Image.Image:
    """``(3, H, W)`` tensor in ``[0, 1]`` -> RGB Pillow image (values rounded to 8 bits)."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    array = image.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def load_image(path: str | os.PathLike[str], size: int | None = None) -> Tensor:
    """Image file -> ``(3, H, W)`` float32 in ``[0, 1]``; resized to ``size x size`` (bicubic) if given."""
    image = load_pil(path)
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"size must be a positive int or None, got {size!r}")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BICUBIC)
    return pil_to_tensor(image).clamp_(0.0, 1.0)


def safe_join(root: str | os.PathLike[str], relative: str, *, source: str) -> Path:
    """``root / relative`` for a path read from an index file, refusing paths that leave ``root``.

    Absolute paths (POSIX or Windows, including drive letters), ``..`` components and symlinks that
    resolve outside ``root`` raise ``ValueError`` naming ``source`` (the index file) and the path.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ValueError(f"{source}: expected a relative image path, got {relative!r}")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or relative.startswith(("/", "\\")):
        raise ValueError(f"{source}: absolute path {relative!r} refused; paths must be relative to {root}")
    if ".." in posix.parts or ".." in windows.parts:
        raise ValueError(f"{source}: path {relative!r} escapes the dataset root {root} ('..' refused)")
    root_path = Path(root).resolve()
    joined = (root_path / posix).resolve()
    if joined != root_path and root_path not in joined.parents:
        raise ValueError(f"{source}: path {relative!r} resolves outside the dataset root {root}")
    return joined


def find_images(root: str | os.PathLike[str], extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Every file under ``root`` (recursively) whose suffix is in ``extensions`` (case-insensitive), sorted as paths.

    One ``os.scandir`` pass per folder (file types come from the directory entries, no ``stat`` per file), so an
    ImageNet-style tree of a million JPEGs in class folders lists in seconds. Symlinks to files count; symlinked
    folders are not followed (as ``Path.rglob``). An unreadable folder raises ``PermissionError`` naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    allowed = {e.lower() for e in extensions}
    files: list[Path] = []
    pending = [os.fspath(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif os.path.splitext(entry.name)[1].lower() in allowed and entry.is_file():
                        files.append(Path(entry.path))
        except PermissionError as error:
            raise PermissionError(f"cannot list the image folder {folder}: {error}") from error
    if not files:
        raise ValueError(f"no image files with extensions {sorted(allowed)} under {root}")
    return sorted(files)


__all__ = ["IMAGE_EXTENSIONS", "find_images", "load_image", "load_pil", "pil_to_tensor", "safe_join", "tensor_to_pil"]
