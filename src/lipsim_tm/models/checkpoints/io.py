"""File-level helpers: safe (weights-only) reading, atomic writing and hashing of checkpoint files."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import torch

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(path: str | os.PathLike[str]) -> object:
    """Unpickle ``path`` onto the CPU with ``weights_only=True`` (tensors and plain containers only).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a file, or is not a readable weights-only PyTorch file (corrupted,
            truncated, arbitrary bytes, or a pickle of objects that weights-only loading refuses).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} is not a regular file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {_explain(error)}") from error


def _explain(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in one line."""
    text = str(error)
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, flags=re.DOTALL)
    detail = (unpickler.group(1) if unpickler else text).strip().split("\n")[0] or "unexpected end of file"
    # "Unsupported global: GLOBAL x.Y" (torch >= 2.4) or "Unsupported class x.Y" / "unsupported GLOBAL x.Y" (older)
    if re.search(r"unsupported (global|class)", text, flags=re.IGNORECASE):
        reason = "it holds objects other than tensors and plain containers, which weights-only loading refuses"
    else:
        reason = "it is corrupted, truncated or not a PyTorch weights file"
    return f"{reason} ({type(error).__name__}: {detail})"


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file here: ``0o666`` less the process umask (read without changing it,
    where the platform allows; else ``0o644``)."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("Umask:"))
        return 0o666 & ~int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError):
        return 0o644


def atomic_torch_save(obj: object, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj)`` to a temporary file in ``path``'s folder, fsync, then ``os.replace`` it onto
    ``path``: readers never see a partial file, and a failure leaves no temporary file behind. The file gets
    the permissions of any newly created file (``0o666`` less the umask), not the temporary file's ``0o600``."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder of path does not exist: {str(folder)!r}")
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
