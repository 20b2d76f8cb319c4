"""Training LipSim: distillation of a teacher embedding, then 2AFC fine-tuning, on one process or many."""

from lipsim_tm.training.config import DistillConfig, FinetuneConfig
from lipsim_tm.training.distill import run_distill
from lipsim_tm.training.finetune import run_finetune
from lipsim_tm.training.trainer import TrainResult

__all__ = ["DistillConfig", "FinetuneConfig", "TrainResult", "run_distill", "run_finetune"]
