"""Built-in distillation teachers, each behind an optional dependency imported only when asked for.

``--teacher dreamsim`` (the paper's teacher, the DreamSim ensemble) and ``--teacher dreamsim:<kind>`` for one
branch; see :mod:`lipsim_tm.training.teachers.dreamsim` (``pip install "lipsim-tm[teachers]"``).
"""

from __future__ import annotations

#: Built-in teacher specs -> what they are (for ``lipsim train distill --help``).
BUILT_IN_TEACHERS: dict[str, str] = {
    "dreamsim": "the DreamSim ensemble (DINO ViT-B/16 + CLIP ViT-B/16 + OpenCLIP ViT-B/16), 1792-d: the paper's",
    "dreamsim:dino_vitb16": "DreamSim's DINO ViT-B/16 branch, 768-d",
    "dreamsim:clip_vitb32": "DreamSim's CLIP ViT-B/32 branch, 512-d",
    "dreamsim:open_clip_vitb32": "DreamSim's OpenCLIP ViT-B/32 branch, 512-d",
}
