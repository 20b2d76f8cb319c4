"""lipsim-tm: LipSim, the provably robust perceptual similarity metric, for torchmetrics and piq users.

Subpackages: :mod:`lipsim_tm.functional` (functional metrics and certificates), :mod:`lipsim_tm.nn`
(1-Lipschitz layers), :mod:`lipsim_tm.models` (the network, checkpoints, named weights),
:mod:`lipsim_tm.metrics`, :mod:`lipsim_tm.training`, :mod:`lipsim_tm.data`, :mod:`lipsim_tm.attacks`,
:mod:`lipsim_tm.retrieval`. The torchmetrics metrics are imported on first use (``import lipsim_tm`` does not
import torchmetrics, so the command line's ``distance`` and ``2afc`` start without it).
"""

from __future__ import annotations

import importlib
from typing import Any

from lipsim_tm.losses import LipSimLoss
from lipsim_tm.models import (
    NAMED_CONFIGS,
    LipSimBackbone,
    LipSimConfig,
    load_backbone,
    load_export,
    load_official_checkpoint,
    save_export,
)

__version__ = "0.1.0"

#: Names served by :mod:`lipsim_tm.metrics`, imported (with torchmetrics) when first asked for.
_LAZY = {"Certified2AFCAccuracy": "lipsim_tm.metrics", "LipSimDistance": "lipsim_tm.metrics"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lipsim_tm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "NAMED_CONFIGS",
    "Certified2AFCAccuracy",
    "LipSimBackbone",
    "LipSimConfig",
    "LipSimDistance",
    "LipSimLoss",
    "__version__",
    "load_backbone",
    "load_export",
    "load_official_checkpoint",
    "save_export",
]
