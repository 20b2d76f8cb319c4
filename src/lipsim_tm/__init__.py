"""lipsim-tm: LipSim, the provably robust perceptual similarity metric, for torchmetrics and piq users.

The names below are imported on first use, so ``import lipsim_tm`` (and the ``lipsim`` command's start) loads
neither torch's heavier parts nor torchmetrics until something needs them. Subpackages:
:mod:`lipsim_tm.functional` (functional metrics and certificates), :mod:`lipsim_tm.metrics` (torchmetrics),
:mod:`lipsim_tm.models` (the network, checkpoints, named weights), :mod:`lipsim_tm.nn` (1-Lipschitz layers),
:mod:`lipsim_tm.data`, :mod:`lipsim_tm.training`, :mod:`lipsim_tm.attacks`, :mod:`lipsim_tm.robustness`,
:mod:`lipsim_tm.retrieval`. The public API is the union of the packages' ``__all__`` lists (``docs/api.md``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public names -> the module that defines them (imported when first asked for).
_PUBLIC = {
    "Certified2AFCAccuracy": "lipsim_tm.metrics",
    "LipSimDistance": "lipsim_tm.metrics",
    "LipSimLoss": "lipsim_tm.losses",
    "LipSimBackbone": "lipsim_tm.models",
    "load_backbone": "lipsim_tm.models",
    "read_image": "lipsim_tm.data",
}
#: Names earlier READMEs imported from here, still served (see :mod:`lipsim_tm.models`).
_ALIASES = {
    "LipSimConfig": "lipsim_tm.models",
    "NAMED_CONFIGS": "lipsim_tm.models.backbone",
    "load_export": "lipsim_tm.models",
    "load_official_checkpoint": "lipsim_tm.models",
    "save_export": "lipsim_tm.models",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name) or _ALIASES.get(name)
    if module is None:
        raise AttributeError(f"module 'lipsim_tm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC, *_ALIASES])


__all__ = ["Certified2AFCAccuracy", "LipSimBackbone", "LipSimDistance", "LipSimLoss", "load_backbone", "read_image"]
