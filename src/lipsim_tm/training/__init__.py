"""Training LipSim: distillation of a teacher embedding, then 2AFC fine-tuning, on one process or many."""

from lipsim_tm.training.checkpointing import CheckpointManager, load_training_checkpoint
from lipsim_tm.training.config import DistillConfig, FinetuneConfig, TrainConfig
from lipsim_tm.training.distill import distillation_loss, load_teacher, precompute_teacher_embeddings, run_distill
from lipsim_tm.training.evaluation import evaluate_2afc
from lipsim_tm.training.finetune import hinge_2afc_loss, run_finetune
from lipsim_tm.training.schedule import WarmupCosine, warmup_cosine_scheduler
from lipsim_tm.training.teacher_cache import TeacherCache
from lipsim_tm.training.trainer import TrainResult, train

__all__ = [
    "CheckpointManager",
    "DistillConfig",
    "FinetuneConfig",
    "TeacherCache",
    "TrainConfig",
    "TrainResult",
    "WarmupCosine",
    "distillation_loss",
    "evaluate_2afc",
    "hinge_2afc_loss",
    "load_teacher",
    "load_training_checkpoint",
    "precompute_teacher_embeddings",
    "run_distill",
    "run_finetune",
    "train",
    "warmup_cosine_scheduler",
]
