"""Image files to tensors, with errors that name the file, and index paths that cannot escape a root.

Decoding uses Pillow only (torchvision does not import next to the CPU torch stack used here).
:func:`read_image` gives a file as it is (grey files one channel, any size), the pixel space certificates are
stated in; :func:`load_image` gives the RGB ``(3, H, W)`` view datasets use, optionally resized. Values are
``float32`` in ``[0, 1]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from lipsim_tm.checks import check_int
from lipsim_tm.files import check_file, check_folder

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


#: Pillow modes read as one grey channel (8-bit); ``I;16*`` modes are 16-bit grey (divided by 65535).
GREY_MODES: tuple[str, ...] = ("1", "L", "LA", "La", "P;L")
SIXTEEN_BIT_GREY_MODES: tuple[str, ...] = ("I;16", "I;16L", "I;16B", "I;16N")
#: Pillow modes without a defined pixel range (32-bit integer or float), refused.
UNRANGED_MODES: tuple[str, ...] = ("I", "F")


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """``path`` decoded fully by Pillow (closed on exit); ``FileNotFoundError``/``IsADirectoryError``/``ValueError``
    name the file."""
    check_file(path, "image file")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot decode image file {path}: {_reason(error)}") from error
    with image:
        yield image


def _reason(error: BaseException) -> str:
    """Why Pillow could not decode a file, without repeating its path."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image format Pillow can read (or the file is damaged)"
    return str(error)


def load_pil(path: str | os.PathLike[str]) -> Image.Image:
    """Decode ``path`` fully into an RGB Pillow image; errors name the file."""
    with _opened(Path(path)) as image:
        return image.convert("RGB")


def read_image(path: str | os.PathLike[str]) -> Tensor:
    """Image file -> float32 ``(1, C, H, W)`` in ``[0, 1]``, the pixel space certificates are stated in.

    Grey files (modes :data:`GREY_MODES` and 16-bit :data:`SIXTEEN_BIT_GREY_MODES`) give ``C = 1``; every
    other mode is converted to RGB (``C = 3``; an alpha channel is dropped). 32-bit integer and float
    files (:data:`UNRANGED_MODES`) have no defined range and are refused.

    Raises:
        FileNotFoundError: ``path`` does not exist; ``IsADirectoryError``: it is a folder.
        ValueError: the file cannot be decoded or has an unranged mode; the message names the file.
    """
    with _opened(Path(path)) as image:
        if image.mode in UNRANGED_MODES:
            raise ValueError(f"image file {path} has mode {image.mode!r} (32-bit) with no defined pixel range")
        if image.mode in SIXTEEN_BIT_GREY_MODES:
            array = np.asarray(image, dtype=np.float64) / 65535.0
        elif image.mode in GREY_MODES:
            array = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
        else:
            array = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    tensor = torch.from_numpy(array).to(torch.float32).clamp_(0.0, 1.0)
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor.unsqueeze(0).contiguous()


def image_shape(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """``(C, H, W)`` that :func:`read_image` gives ``path``, from the file's header alone (no decoding)."""
    path = Path(path)
    check_file(path, "image file")
    try:
        with Image.open(path) as image:
            grey = image.mode in GREY_MODES or image.mode in SIXTEEN_BIT_GREY_MODES
            return (1 if grey else 3, image.height, image.width)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode image file {path}: {_reason(error)}") from error


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
        check_int("size", size, minimum=1)
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
    check_folder(root, "image folder")
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
