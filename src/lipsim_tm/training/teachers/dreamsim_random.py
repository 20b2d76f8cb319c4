"""A DreamSim weights folder with random weights, laid out exactly as the real download: for tests and smoke runs.

:func:`write_random_dreamsim_cache` writes what ``dreamsim.dreamsim(cache_dir=...)`` and ``torch.hub`` look for,
so :func:`~lipsim_tm.training.teachers.dreamsim.load_dreamsim_teacher` builds the teacher through its real code
path (dreamsim's loader, torch.hub, peft) with no download: the branches' ViT-B weights and projections, the
DINO head, and LoRA adapters (rank 16, alpha 0.5, dropout 0.3 on ``qkv``, DreamSim's settings) with non-zero
random ``B`` matrices so the adapters change the output. The one stand-in is the DINO hub repository: a
``hubconf.py`` building the same ViT-B/16 as facebookresearch/dino's (dreamsim's copy of its
``vision_transformer``) and loading its weights with ``torch.hub.load_state_dict_from_url`` from the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lipsim_tm.checks import check_choice
from lipsim_tm.training.teachers.dreamsim import DINO_WEIGHTS_URL, DREAMSIM_KINDS

HUBCONF = f'''"""Stand-in for facebookresearch/dino's hubconf.py (random-weights test cache): the same ViT-B/16."""
import torch
from dreamsim.feature_extraction.vision_transformer import vit_base

dependencies = ["torch"]


def dino_vitb16(pretrained=True, **kwargs):
    model = vit_base(patch_size=16, num_classes=0, **kwargs)
    if pretrained:
        url = "{DINO_WEIGHTS_URL}"
        model.load_state_dict(torch.hub.load_state_dict_from_url(url=url, map_location="cpu"), strict=True)
    return model
'''
LORA = {"r": 16, "lora_alpha": 0.5, "lora_dropout": 0.3, "bias": "none", "target_modules": ["qkv"]}


def _vit_state(patch: int, *, projection: bool) -> dict[str, torch.Tensor]:
    from dreamsim.feature_extraction.vision_transformer import vit_base

    vit = vit_base(patch_size=patch, num_classes=0)
    if not projection:
        return vit.state_dict()
    vit.pos_drop = torch.nn.LayerNorm(vit.embed_dim)  # as dreamsim's CLIP/OpenCLIP loaders expect
    state = vit.state_dict()
    state["proj"] = torch.randn(vit.embed_dim, 512) / vit.embed_dim**0.5
    return state


def _dino_head() -> dict[str, torch.Tensor]:
    shapes = {"mlp.0": (2048, 768), "mlp.2": (2048, 2048), "mlp.4": (256, 2048)}
    head = {}
    for name, (rows, cols) in shapes.items():
        head[f"module.head.{name}.weight"] = torch.randn(rows, cols) / cols**0.5
        head[f"module.head.{name}.bias"] = torch.zeros(rows)
    head["module.head.last_layer.weight"] = torch.randn(2048, 256) / 16
    return {"student": head}


def write_random_dreamsim_cache(directory: str | os.PathLike[str], kind: str = "ensemble", *, seed: int = 0) -> Path:
    """Write random weights for the dreamsim type ``kind`` under ``directory`` (the layout of the real download);
    returns ``directory``. The same ``seed`` writes the same weights."""
    from dreamsim.config import dreamsim_args
    from dreamsim.model import PerceptualModel
    from peft import LoraConfig, get_peft_model

    check_choice("kind", kind, tuple(DREAMSIM_KINDS))
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    config = dreamsim_args["model_config"][kind]
    branches = config["model_type"].split(",")
    hub_dir = torch.hub.get_dir()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for branch in branches:
            if branch == "dino_vitb16":
                (folder / "facebookresearch_dino_main").mkdir(exist_ok=True)
                (folder / "facebookresearch_dino_main" / "hubconf.py").write_text(HUBCONF)
                (folder / "checkpoints").mkdir(exist_ok=True)
                weights = folder / "checkpoints" / DINO_WEIGHTS_URL.rsplit("/", 1)[1]
                torch.save(_vit_state(16, projection=False), weights)
                torch.save(_dino_head(), folder / "dino_vitb16_pretrain.pth")
            else:
                patch = int(branch[-2:])
                torch.save({"state_dict": _vit_state(patch, projection=True)}, folder / f"{branch}_pretrain.pth.tar")
        try:
            model = PerceptualModel(**config, device="cpu", load_dir=str(folder), normalize_embeds=True)
        finally:
            torch.hub.set_dir(hub_dir)
        model = get_peft_model(model, LoraConfig(**LORA))
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.data.normal_(0.0, 0.02)
        tag = "ensemble_" if kind == "ensemble" else f"{branches[0]}_single_"
        model.save_pretrained(str(folder / f"{tag}lora"))
    return folder
