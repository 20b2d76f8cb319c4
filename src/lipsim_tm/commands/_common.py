"""What the image commands share: options, budgets, image files, the network and per-image embeddings.

Certificates are stated in the pixel space of each user image as read (values in [0, 1], its own size and
channels): an image file of any size goes through the library's preprocessing, whose exact l2 operator
norm enters the Lipschitz bound ``L`` of :func:`~lipsim_tm.functional.embedding.lipschitz_constant`.
Images of different sizes have different ``L``; a bound that holds for several images uses the largest.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from lipsim_tm.models.backbone import LipSimBackbone

#: Pillow modes read as one grey channel (8-bit); ``I;16*`` modes are 16-bit grey (divided by 65535).
GREY_MODES: tuple[str, ...] = ("1", "L", "LA", "La", "P;L")
SIXTEEN_BIT_GREY_MODES: tuple[str, ...] = ("I;16", "I;16L", "I;16B", "I;16N")
#: Pillow modes without a defined pixel range (32-bit integer or float), refused.
UNRANGED_MODES: tuple[str, ...] = ("I", "F")


def parse_eps(text: str) -> float:
    """An l2 budget from the command line: a number (``0.1412``) or a fraction (``36/255``), finite and ``>= 0``."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number >= 0 such as 0.1412 or 36/255, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text!r}")
    return value


def add_network_arguments(parser: argparse.ArgumentParser, *, default_weights: str | None = "default") -> None:
    """``--weights``, ``--device`` and ``--threads`` (``default_weights=None``: the command finds the weights)."""
    default = "%(default)s" if default_weights is not None else "the weights the gallery was built with"
    parser.add_argument(
        "--weights",
        default=default_weights,
        help="'default' (the shipped model), a registered name, a checkpoint or export path, or 'random:<config>'"
        f" (random network, for tests) (default: {default})",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def add_certificate_arguments(parser: argparse.ArgumentParser, *, with_distance: bool = True) -> None:
    """``--normalization``, ``--certificate`` and (optionally) ``--distance``."""
    from lipsim_tm.functional import CERTIFICATES, DISTANCES, NORMALIZATIONS

    if with_distance:
        parser.add_argument(
            "--distance", choices=DISTANCES, default="cosine", help="'cosine' (1 - cos, the official form) or 'l2'"
        )
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default="augment",
        help="embedding normalisation (default: %(default)s; 'plain' for the released checkpoints' v/||v||)",
    )
    parser.add_argument(
        "--certificate",
        choices=CERTIFICATES,
        default="norm_aware",
        help="certificate rule: 'norm_aware' (default) or 'plain' (the published 1-Lipschitz rule)",
    )


def load_network(args: argparse.Namespace, device: torch.device | None = None) -> LipSimBackbone:
    """The frozen, eval-mode network named by ``args.weights`` on ``device`` (default ``args.device``), with
    ``args.threads`` applied."""
    from lipsim_tm.models.weights import resolve_backbone

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = parse_device(args.device) if device is None else device
    return resolve_backbone(args.weights).eval().requires_grad_(False).to(device)


def parse_device(text: str) -> torch.device:
    """``torch.device(text)``, refusing unknown names and CUDA/MPS when it is not available (``ValueError``)."""
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise ValueError(f"--device must name a torch device such as cpu or cuda, got {text!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {text}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {text}: MPS is not available on this machine")
    return device


def image_shape(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """``(C, H, W)`` that :func:`read_image` gives ``path``, from the file's header alone (no decoding)."""
    try:
        with Image.open(path) as image:
            grey = image.mode in GREY_MODES or image.mode in SIXTEEN_BIT_GREY_MODES
            return (1 if grey else 3, image.height, image.width)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode image file {path}: {error}") from error


def read_image(path: str | os.PathLike[str]) -> Tensor:
    """Image file -> float32 ``(1, C, H, W)`` in ``[0, 1]``, the pixel space certificates are stated in.

    Grey files (modes :data:`GREY_MODES` and 16-bit :data:`SIXTEEN_BIT_GREY_MODES`) give ``C = 1``; every
    other mode is converted to RGB (``C = 3``; an alpha channel is dropped). 32-bit integer and float
    files (:data:`UNRANGED_MODES`) have no defined range and are refused.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file cannot be decoded or has an unranged mode; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in UNRANGED_MODES:
                raise ValueError(f"image file {path} has mode {mode!r} (32-bit) with no defined pixel range")
            if mode in SIXTEEN_BIT_GREY_MODES:
                array = np.asarray(image, dtype=np.float64) / 65535.0
            elif mode in GREY_MODES:
                array = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
            else:
                array = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot decode image file {path}: {error}") from error
    tensor = torch.from_numpy(array).to(torch.float32).clamp_(0.0, 1.0)
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor.unsqueeze(0).contiguous()


@dataclass(frozen=True)
class Embedded:
    """Embeddings of a batch of user images of one shape.

    Attributes:
        features: ``(N, D)`` backbone outputs before normalisation (network units).
        phi: ``(N, D')`` normalised embeddings.
        lipschitz: ``L``, l2 Lipschitz bound of ``image -> phi`` in these images' pixels (resize included).
    """

    features: Tensor
    phi: Tensor
    lipschitz: float


def embed_images(backbone: LipSimBackbone, images: Tensor, normalization: str, name: str = "images") -> Embedded:
    """:class:`Embedded` of ``images`` ``(N, C, H, W)`` in [0, 1] (``C = 1`` grey is replicated), one forward pass.

    Uses the library's preprocessing (resize to the network's input, exact operator norm), validation
    (``ValueError`` naming ``name``), features and normalisation.
    """
    from lipsim_tm.functional.embedding import features_of, lipschitz_constant, preprocessing_for
    from lipsim_tm.functional.normalization import apply_normalization

    param = next(backbone.parameters())
    images = images.to(param.device)
    prep = preprocessing_for(backbone, grayscale=images.ndim == 4 and images.shape[1] == 1)
    prep.check(images, name)
    with torch.no_grad():
        features = features_of(backbone, images, prep, param.dtype)
    return Embedded(features, apply_normalization(features, normalization), lipschitz_constant(backbone, prep, images))


def describe_eps(eps: float) -> str:
    """``0.1412 (36/255)`` when ``eps`` is a whole number of 1/255 steps, else ``0.1412``."""
    steps = eps * 255
    whole = round(steps)
    return f"{eps:.4g} ({whole}/255)" if whole > 0 and abs(steps - whole) < 1e-6 else f"{eps:.4g}"


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, e.g. a certified accuracy with no decided triplet) as ``None``."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def write_json(data: Any, path: str | os.PathLike[str] | None) -> None:
    """Write ``data`` as indented strict JSON (NaN as null) to ``path`` (parents created), or print it if None."""
    import json

    text = json.dumps(json_safe(data), indent=2, allow_nan=False)
    if path is None:
        print(text)
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json must name a file, got the folder {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


class Progress:
    """Progress ``label [####....] done/total unit (rate/s)`` on ``stream`` (default stderr).

    On a terminal one line is rewritten in place (``\\r``); elsewhere (a file, a pipe, a CI log) a plain line is
    written at each tenth of the way and at the end, so redirected output holds no carriage returns.
    """

    #: At most this many lines go to a non-terminal stream over a whole run.
    STEPS = 10

    def __init__(
        self, total: int, *, label: str, enabled: bool = True, stream: TextIO | None = None, unit: str = "triplets"
    ) -> None:
        self.total, self.label, self.enabled, self.unit = total, label, enabled, unit
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.done = 0
        self.written = 0  # steps of the way already written (non-terminal)
        self.start = time.perf_counter()

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        width = 24
        filled = min(width, round(width * self.done / self.total)) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        return f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} ({rate:.1f}/s)"

    def update(self, count: int) -> None:
        """``count`` more triplets done."""
        self.done += count
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write(f"\r{self._line()}")
        else:
            step = self.STEPS * self.done // self.total if self.total else self.STEPS
            if step <= self.written:
                return
            self.written = step
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def evaluate_2afc(
    dataset: Any,
    metrics: Mapping[str, Any],
    *,
    batch_size: int,
    workers: int = 0,
    limit: int | None = None,
    progress: bool = True,
    label: str = "2afc",
) -> dict[str, dict[str, Tensor]]:
    """Feed the triplets ``(ref, img0, img1, p)`` of ``dataset`` (its first ``limit``) to every 2AFC metric.

    Each batch is loaded once and the same tensors go to each metric of ``metrics`` (e.g. one per
    certificate rule; wrapped in torchmetrics' ``FeatureShare`` they then share one forward pass);
    returns ``{name: metric.compute()}``. Progress goes to stderr unless ``progress`` is False.

    Raises:
        ValueError: the dataset (after ``limit``) holds no triplets.
    """
    from torch.utils.data import DataLoader, Subset

    if limit is not None and limit < len(dataset):
        dataset = Subset(dataset, range(limit))
    if len(dataset) == 0:
        raise ValueError("no triplets to evaluate (empty split or subset; NIGHTS drops rows with votes < 6)")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    bar = Progress(len(dataset), label=label, enabled=progress)
    try:
        for batch in loader:
            on_device: dict[Any, list[Tensor]] = {}  # one copy per device: the same tensors for every metric
            for metric in metrics.values():
                device = next(metric.backbone.parameters()).device
                metric.update(*on_device.setdefault(device, [t.to(device) for t in batch]))
            bar.update(batch[0].shape[0])
    finally:
        bar.close()
    return {name: metric.compute() for name, metric in metrics.items()}
