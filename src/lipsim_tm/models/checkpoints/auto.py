"""One entry point for weights: our export files and official checkpoints, detected automatically."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from lipsim_tm.models.backbone import LipSimBackbone, LipSimConfig, resolve_config
from lipsim_tm.models.checkpoints.export import backbone_from_export, is_export
from lipsim_tm.models.checkpoints.io import read_checkpoint
from lipsim_tm.models.checkpoints.official import backbone_from_official


def load_backbone(
    path_or_state: str | os.PathLike[str] | Mapping[str, object],
    *,
    config: str | LipSimConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> LipSimBackbone:
    """A :class:`LipSimBackbone` in eval mode from an export (:func:`save_export`) or an official checkpoint.

    Args:
        path_or_state: a file (read once, with ``weights_only=True``) or an already loaded dict: an
            export, an official training checkpoint, or a bare official state dict.
        config: architecture for official checkpoints (``None``: inferred from the shapes, see
            :func:`infer_official_config`). For exports, which record their config, it must be
            ``None`` or equal to the recorded one.
        map_location: device the returned backbone lives on.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        TypeError: ``path_or_state`` is neither a path nor a dict.
        ValueError: unreadable or invalid file, or weights that do not fit (see the specific loaders).
    """
    device = torch.device(map_location)
    if isinstance(path_or_state, (str, os.PathLike)):
        obj = read_checkpoint(path_or_state, "weights")
        path_label = repr(os.fspath(path_or_state))
        export_source, official_source = f"export {path_label}", f"checkpoint {path_label}"
    elif isinstance(path_or_state, Mapping):
        obj = path_or_state
        export_source, official_source = "<in-memory export>", "<in-memory checkpoint>"
    else:
        raise TypeError(f"path_or_state must be a path or a dict, got {type(path_or_state).__name__}")
    if is_export(obj):
        backbone, _ = backbone_from_export(obj, source=export_source)
        if config is not None and resolve_config(config) != backbone.config:
            raise ValueError(
                f"{export_source}: config={resolve_config(config)} differs from the recorded {backbone.config}"
            )
    else:
        backbone = backbone_from_official(obj, config=config, source=official_source)
    return backbone.to(device).eval()
