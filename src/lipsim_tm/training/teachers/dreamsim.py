"""The DreamSim teacher (Fu et al. 2023), the paper's distillation target, from the ``dreamsim`` package.

``load_dreamsim_teacher("ensemble")`` builds the teacher exactly as the official LipSim trainer does
(``dreamsim(pretrained=True, dreamsim_type=..., normalize_embeds=True)`` then ``model.embed``): the
embedding is the concatenation of the branches' features (ensemble: DINO ViT-B/16 CLS 768 + CLIP ViT-B/16
512 + OpenCLIP ViT-B/16 512 = 1792; note that the ensemble's CLIP branches are ViT-B/16, the single CLIP
teachers ViT-B/32), each branch normalising its input with its own mean/std, then mean-centred and scaled to
unit norm. Weights come from the dreamsim package's own download on first use (its GitHub release zip and,
for DINO, ``torch.hub``'s facebookresearch/dino), into ``<lipsim cache>/teachers/dreamsim``.

Input: ``(N, 3, H, W)`` RGB in [0, 1]. DreamSim's own preprocessing is PIL bicubic resize to 224x224 then
``ToTensor``; :meth:`DreamSimTeacher.preprocess` (and :func:`~lipsim_tm.data.images.load_image` with
``size=224``) is that exactly, and 224x224 crops of the paper's student pass through unchanged. Other sizes are
resized to 224 in torch (bicubic, antialiased, clamped to [0, 1]), which approximates PIL's resize.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from lipsim_tm.checks import check_choice
from lipsim_tm.data.images import load_pil, pil_to_tensor

#: The dreamsim types we offer -> the embedding width they produce.
DREAMSIM_KINDS: dict[str, int] = {"ensemble": 1792, "dino_vitb16": 768, "clip_vitb32": 512, "open_clip_vitb32": 512}
#: DreamSim's input side (``dreamsim.config.dreamsim_args["img_size"]``).
IMAGE_SIZE = 224
#: torch.hub source of the DINO branch and the URL of its weights (fetched by torch.hub into the cache).
DINO_REPO = "https://github.com/facebookresearch/dino (branch main)"
DINO_WEIGHTS_URL = "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"
MISSING_PACKAGE = 'the DreamSim teacher needs the dreamsim package: pip install "lipsim-tm[teachers]"'


def dreamsim_cache_dir() -> Path:
    """Where the DreamSim weights live: ``<lipsim cache>/teachers/dreamsim`` (``$LIPSIM_CACHE_DIR`` moves it)."""
    from lipsim_tm.models.download import cache_dir

    return cache_dir() / "teachers" / "dreamsim"


class DreamSimTeacher(nn.Module):
    """A frozen DreamSim embedding ``(N, 3, H, W)`` in [0, 1] -> ``(N, embedding_dim)`` (unit norm, centred).

    Always in eval mode and without gradients (``train()`` keeps the wrapped model in eval). ``kind`` is the
    dreamsim type, ``version`` the dreamsim package's version.
    """

    def __init__(self, model: nn.Module, kind: str, version: str) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.kind, self.version = kind, version
        self.embedding_dim = DREAMSIM_KINDS[kind]

    def train(self, mode: bool = True) -> DreamSimTeacher:
        super().train(mode)
        self.model.eval()
        return self

    def _extractors(self) -> list[nn.Module]:
        return [m for m in self.model.modules() if type(m).__name__ == "ViTExtractor"]

    def forward(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] == 0:
            raise ValueError(f"images must have shape (N, 3, H, W) with N >= 1 (RGB), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}")
        low, high = torch.stack(torch.aminmax(images)).tolist()  # one device sync per call
        if not (low >= 0.0 and high <= 1.0):  # also refuses NaN
            raise ValueError(f"images must hold values in [0, 1] (DreamSim's input range), got [{low}, {high}]")
        parameter = next(self.model.parameters())
        images = images.to(device=parameter.device, dtype=parameter.dtype)
        if images.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", antialias=True)
            images = images.clamp(0.0, 1.0)
        for extractor in self._extractors():
            extractor.device = images.device  # its projection is a plain tensor, moved at each call to this
        with torch.no_grad():
            return self.model.embed(images)

    @staticmethod
    def preprocess(image: str | os.PathLike[str] | Image.Image) -> Tensor:
        """An image file or PIL image -> ``(1, 3, 224, 224)`` float32 in [0, 1], as dreamsim's ``preprocess``."""
        rgb = image.convert("RGB") if isinstance(image, Image.Image) else load_pil(image)
        return pil_to_tensor(rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC))[None]

    def identity(self) -> str:
        """``dreamsim:<kind>|dreamsim==<version>|weights:<sha256>``: the teacher-cache key (weights include the
        branches' projection matrices, which are not in the state dict)."""
        from lipsim_tm.models.checkpoints.export import state_dict_sha256

        state = dict(self.model.state_dict())
        for i, extractor in enumerate(self._extractors()):
            proj = getattr(extractor, "proj", None)
            if isinstance(proj, Tensor):
                state[f"extractor{i}.proj"] = proj
        return f"dreamsim:{self.kind}|dreamsim=={self.version}|weights:{state_dict_sha256(state)}"


@contextlib.contextmanager
def _isolated_load() -> Iterator[None]:
    """dreamsim prints progress to stdout and sets torch.hub's folder globally: keep both to this call. Modules it
    builds but never loads (the DINO head's ``weight_v``, unused by the CLS embedding) are initialised from a fixed
    seed, without touching the caller's random state, so a teacher's state dict (and identity) is reproducible."""
    hub_dir = torch.hub.get_dir()
    try:
        with contextlib.redirect_stdout(sys.stderr), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            yield
    finally:
        torch.hub.set_dir(hub_dir)


def _download_help(kind: str, folder: Path) -> str:
    """What to fetch where, by hand, when the dreamsim package could not download the weights of ``kind``."""
    from dreamsim.config import dreamsim_weights

    steps = f"download {dreamsim_weights[kind]} and unzip it into {folder}"
    if kind in ("ensemble", "dino_vitb16"):
        steps += (
            f"; for the DINO branch also clone {DINO_REPO} to {folder / 'facebookresearch_dino_main'} and download"
            f" {DINO_WEIGHTS_URL} into {folder / 'checkpoints'}"
        )
    return (
        f"could not fetch the DreamSim {kind!r} teacher's weights into {folder} (offline?). On a machine with"
        f" network access run the same command once, or by hand: {steps}. Copy the folder here, or point"
        " LIPSIM_CACHE_DIR at the cache that holds teachers/dreamsim"
    )


def load_dreamsim_teacher(
    kind: str = "ensemble", *, cache_dir: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> DreamSimTeacher:
    """The DreamSim teacher ``kind`` (a key of :data:`DREAMSIM_KINDS`), its weights from ``cache_dir`` (default
    :func:`dreamsim_cache_dir`), downloaded there by the dreamsim package on first use.

    Raises ``ImportError`` without the dreamsim package, ``ValueError`` for an unknown ``kind`` and ``OSError``
    naming what to download where when the weights are missing and cannot be fetched.
    """
    check_choice("dreamsim teacher kind", kind, tuple(DREAMSIM_KINDS))
    try:
        import dreamsim
    except ImportError as error:
        raise ImportError(f"{MISSING_PACKAGE} ({error})") from error
    from importlib.metadata import version

    folder = Path(cache_dir) if cache_dir is not None else dreamsim_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _isolated_load():
            model, _ = dreamsim.dreamsim(
                pretrained=True, device=str(device), cache_dir=str(folder), normalize_embeds=True, dreamsim_type=kind
            )
    except OSError as error:  # URLError, HTTPError, a missing file after a failed fetch
        raise OSError(f"{_download_help(kind, folder)} ({type(error).__name__}: {error})") from error
    teacher = DreamSimTeacher(model, kind, version("dreamsim"))
    if (width := teacher.model.embed_size) != teacher.embedding_dim:
        raise RuntimeError(f"dreamsim {kind!r} produces {width}-d embeddings, expected {teacher.embedding_dim}")
    return teacher
