"""The LipSim network and where its weights come from.

:mod:`.backbone` (architecture and configurations, built from :mod:`lipsim_tm.nn`) -> :mod:`.checkpoints`
(strict loading of official checkpoints and lipsim-tm exports) -> :mod:`.download` and :mod:`.registry`
(named weights, the shipped :mod:`.pretrained` model, the download cache) -> :mod:`.weights` (what a
``weights=`` argument resolves to) -> :mod:`.frozen` and :mod:`.compiling` (the frozen evaluation wrapper
the metrics and the loss hold, and its optional ``torch.compile``).
"""

from lipsim_tm.models.backbone import LipSimBackbone, LipSimConfig
from lipsim_tm.models.checkpoints.export import load_export, save_export
from lipsim_tm.models.checkpoints.official import load_official_checkpoint
from lipsim_tm.models.registry import describe_weights
from lipsim_tm.models.weights import load_backbone

__all__ = [
    "LipSimBackbone",
    "LipSimConfig",
    "describe_weights",
    "load_backbone",
    "load_export",
    "load_official_checkpoint",
    "save_export",
]
