"""lipsim-tm: LipSim, the provably robust perceptual similarity metric, for torchmetrics and piq users."""

from lipsim_tm.backbone import NAMED_CONFIGS, LipSimBackbone, LipSimConfig

__version__ = "0.1.0"

__all__ = ["NAMED_CONFIGS", "LipSimBackbone", "LipSimConfig", "__version__"]
