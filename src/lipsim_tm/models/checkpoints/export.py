"""lipsim-tm's own export format: a backbone's configuration, weights, weights hash and metadata.

File content (``torch.save``, readable with ``weights_only=True``)::

    {"format": "lipsim-tm-export/1",
     "config": {LipSimConfig field: plain value},       # conv_stages as a list
     "state_dict": {name: tensor},                      # LipSimBackbone.state_dict(), on CPU
     "weights_sha256": hex digest of state_dict_sha256(state_dict),
     "metadata": {str: plain value}}                    # e.g. a training summary
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping

import torch
from torch import Tensor

from lipsim_tm.files import atomic_torch_save
from lipsim_tm.models.backbone import LipSimBackbone, LipSimConfig
from lipsim_tm.models.checkpoints.io import file_sha256, read_checkpoint
from lipsim_tm.models.checkpoints.strict import load_state_strict

EXPORT_FORMAT = "lipsim-tm-export/1"
_FIELDS = ("format", "config", "state_dict", "weights_sha256", "metadata")


def state_dict_sha256(state: Mapping[str, Tensor]) -> str:
    """Hex sha256 over the canonical bytes of ``state``: for each key in sorted order, the key, the
    dtype, the shape and the raw (native, i.e. little-endian on all supported platforms) bytes of
    the contiguous CPU tensor, each length-prefixed. Independent of devices, strides and pickling."""
    digest = hashlib.sha256()

    def field(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    for key in sorted(state):
        tensor = state[key]
        if not isinstance(tensor, Tensor):
            raise TypeError(f"state[{key!r}] must be a tensor, got {type(tensor).__name__}")
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        field(key.encode("utf-8"))
        field(str(tensor.dtype).encode())
        field(repr(tuple(tensor.shape)).encode())
        field(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_plain(value: object, where: str) -> object:
    """``value`` with tuples turned into lists; TypeError unless it is built of plain types only."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_check_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} keys must be str, got {k!r}")
            out[k] = _check_plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(
        f"{where} must hold only None, bool, int, float, str, lists and str-keyed dicts, got {type(value).__name__}"
    )


def config_to_dict(config: LipSimConfig) -> dict[str, object]:
    """``config`` as a dict of plain values (``conv_stages`` as a list)."""
    return {f.name: _check_plain(getattr(config, f.name), f"config.{f.name}") for f in dataclasses.fields(config)}


def config_from_dict(fields: Mapping[str, object], *, source: str = "<config>") -> LipSimConfig:
    """Inverse of :func:`config_to_dict`; ValueError on missing or unknown fields."""
    names = {f.name for f in dataclasses.fields(LipSimConfig)}
    unknown, missing = sorted(set(fields) - names), sorted(names - set(fields))
    if unknown or missing:
        raise ValueError(f"{source}: config fields do not match LipSimConfig: unknown {unknown}, missing {missing}")
    values = dict(fields)
    values["conv_stages"] = tuple(values["conv_stages"])  # type: ignore[arg-type]
    try:
        return LipSimConfig(**values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: invalid config: {error}") from error


def save_export(
    backbone: LipSimBackbone, path: str | os.PathLike[str], *, metadata: Mapping[str, object] | None = None
) -> str:
    """Write ``backbone`` to ``path`` atomically in the export format; return the file's sha256 hex digest.

    Args:
        backbone: the network to export (any device and dtype; stored on the CPU as is).
        path: target file; its folder must exist. Replaced atomically if it exists.
        metadata: str-keyed dict of plain values (None, bool, int, float, str, lists, dicts).

    Raises:
        TypeError: ``backbone`` is not a LipSimBackbone or ``metadata`` holds non-plain values.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    if not isinstance(backbone, LipSimBackbone):
        raise TypeError(f"backbone must be a LipSimBackbone, got {type(backbone).__name__}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    payload = {
        "format": EXPORT_FORMAT,
        "config": config_to_dict(backbone.config),
        "state_dict": state,
        "weights_sha256": state_dict_sha256(state),
        "metadata": _check_plain(dict(metadata or {}), "metadata"),
    }
    atomic_torch_save(payload, path, "export")
    return file_sha256(path)


def is_export(obj: object) -> bool:
    """Whether a loaded object claims to be an export (has a ``format`` string)."""
    return isinstance(obj, Mapping) and isinstance(obj.get("format"), str)


def backbone_from_export(obj: object, *, source: str = "<in-memory export>") -> tuple[LipSimBackbone, dict]:
    """``(backbone in eval mode on the CPU, metadata)`` from a loaded export dict, verified.

    Raises:
        ValueError: wrong format tag, missing fields, invalid config, weights hash mismatch, or weights
            that do not fit the config.
    """
    if not isinstance(obj, Mapping) or obj.get("format") != EXPORT_FORMAT:
        found = obj.get("format") if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{source}: expected export format {EXPORT_FORMAT!r}, got {found!r}")
    missing = [name for name in _FIELDS if name not in obj]
    if missing:
        raise ValueError(f"{source}: export is missing fields {missing}")
    config, state, metadata = obj["config"], obj["state_dict"], obj["metadata"]
    if not isinstance(config, Mapping) or not isinstance(state, Mapping) or not isinstance(metadata, Mapping):
        raise ValueError(f"{source}: export fields config, state_dict and metadata must be dicts")
    try:
        actual = state_dict_sha256(state)
    except TypeError as error:
        raise ValueError(f"{source}: {error}") from error
    if actual != obj["weights_sha256"]:
        raise ValueError(
            f"{source}: weights_sha256 mismatch: file records {obj['weights_sha256']!r}, weights hash to {actual!r}"
            " (the weights were modified or corrupted)"
        )
    backbone = LipSimBackbone(config_from_dict(config, source=source))
    return load_state_strict(backbone, state, source=source), dict(metadata)


def load_export(path: str | os.PathLike[str]) -> tuple[LipSimBackbone, dict]:
    """``(backbone in eval mode on the CPU, metadata)`` from an export file written by :func:`save_export`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file, not an export, or a verification failure (see :func:`backbone_from_export`).
    """
    return backbone_from_export(read_checkpoint(path, "export"), source=f"export {os.fspath(path)!r}")
