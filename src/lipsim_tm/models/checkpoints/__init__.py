"""Reading and writing backbone weights: official LipSim checkpoints and lipsim-tm exports."""

from lipsim_tm.models.checkpoints.auto import load_backbone
from lipsim_tm.models.checkpoints.export import EXPORT_FORMAT, load_export, save_export, state_dict_sha256
from lipsim_tm.models.checkpoints.io import file_sha256
from lipsim_tm.models.checkpoints.official import infer_official_config, load_official_checkpoint

__all__ = [
    "EXPORT_FORMAT",
    "file_sha256",
    "infer_official_config",
    "load_backbone",
    "load_export",
    "load_official_checkpoint",
    "save_export",
    "state_dict_sha256",
]
