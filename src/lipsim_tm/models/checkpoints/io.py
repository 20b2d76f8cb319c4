"""File-level helpers: safe (weights-only) reading and hashing of checkpoint files (atomic writing:
:mod:`lipsim_tm.files`)."""

from __future__ import annotations

import hashlib
import os
import re

import torch

from lipsim_tm.files import check_file

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(path: str | os.PathLike[str], what: str = "checkpoint") -> object:
    """Unpickle ``path`` (a ``what``: "checkpoint", "export", "gallery", ...) onto the CPU with ``weights_only=True``
    (tensors and plain containers only).

    Raises:
        FileNotFoundError: ``path`` does not exist; IsADirectoryError: it is a folder.
        ValueError: ``path`` is not a readable weights-only PyTorch file (corrupted,
            truncated, arbitrary bytes, or a pickle of objects that weights-only loading refuses); the message
            names the file and what it was read as, never torch's advice to turn weights-only loading off.
    """
    path = check_file(path, f"{what} file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read {what} {str(path)!r}: {_explain(error)}") from error


def _explain(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in one line."""
    text = str(error)
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, flags=re.DOTALL)
    detail = (unpickler.group(1) if unpickler else text).strip().split("\n")[0] or "unexpected end of file"
    detail = re.split(r"\s+This is an internal miniz error", detail)[0]  # torch's advice on top of the cause
    # "Unsupported global: GLOBAL x.Y" (torch >= 2.4) or "Unsupported class x.Y" / "unsupported GLOBAL x.Y" (older)
    if re.search(r"unsupported (global|class)", text, flags=re.IGNORECASE):
        reason = "it holds objects other than tensors and plain containers, which weights-only loading refuses"
    else:
        reason = "it is corrupted, truncated or not a PyTorch weights file"
    return f"{reason} ({type(error).__name__}: {detail})"
