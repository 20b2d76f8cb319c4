"""lipsim-tm: LipSim, the provably robust perceptual similarity metric, for torchmetrics and piq users.

Subpackages: :mod:`lipsim_tm.functional` (functional metrics and certificates), :mod:`lipsim_tm.nn`
(1-Lipschitz layers), :mod:`lipsim_tm.models.checkpoints`, :mod:`lipsim_tm.training`, :mod:`lipsim_tm.data`,
:mod:`lipsim_tm.attacks`, :mod:`lipsim_tm.retrieval`.
"""

from lipsim_tm.losses import LipSimLoss
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
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
