"""What the commands need at run time: the device, the network, image files turned into features, and the
evaluation processes of a plain or ``torchrun`` run.

Certificates are stated in the pixel space of each user image as read (values in [0, 1], its own size and
channels): a file of any size goes through the library's preprocessing, whose exact l2 operator norm enters the
Lipschitz bound ``L`` of :func:`~lipsim_tm.functional.embedding.lipschitz_constant`, so each file has its own ``L``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from lipsim_tm.distributed import DistributedContext, init_distributed, shutdown_distributed
from lipsim_tm.functional.embedding import features_of, lipschitz_constant, network_dtype, preprocessing_for
from lipsim_tm.models.backbone import LipSimBackbone


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


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads``, when given, as torch's CPU thread count."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def load_network(args: argparse.Namespace, device: torch.device | None = None) -> LipSimBackbone:
    """The frozen, eval-mode network named by ``args.weights`` on ``device`` (default ``args.device``), with
    ``args.threads`` applied."""
    from lipsim_tm.models.weights import resolve_backbone

    apply_threads(args)
    device = parse_device(args.device) if device is None else device
    return resolve_backbone(args.weights).eval().requires_grad_(False).to(device)


def file_features(backbone: LipSimBackbone, image: Tensor, name: str) -> tuple[Tensor, float]:
    """``(features (N, D), L)`` of images read from files, ``(N, C, H, W)`` in [0, 1] of one shape (``C = 1``: grey,
    replicated): one forward pass through the library's preprocessing; ``ValueError`` naming ``name`` if invalid."""
    prep = preprocessing_for(backbone, grayscale=image.shape[1] == 1)
    image = prep.check(image.to(next(backbone.parameters()).device), name)
    with torch.no_grad():
        features = features_of(backbone, image, prep, network_dtype(backbone))
    return features, lipschitz_constant(backbone, prep, image)


@contextmanager
def evaluation_processes(device_text: str) -> Iterator[DistributedContext]:
    """Where this process evaluates for ``--device device_text``: one process, or under ``torchrun`` (``WORLD_SIZE >
    1``) one of several, with the process group (gloo on the CPU, NCCL on CUDA) destroyed on exit. ``--device
    cuda`` means this process's ``cuda:LOCAL_RANK``; only rank 0 prints, shows progress and writes files."""
    device = parse_device(device_text)
    if device.type not in ("cpu", "cuda") and os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError(f"--device {device_text}: torchrun runs take cpu or cuda")
    context = init_distributed("cuda" if device.type == "cuda" else "cpu")
    if device.type not in ("cpu", "cuda") or device.index is not None:
        context = dataclasses.replace(context, device=device)  # an explicit device (cuda:1, mps) is kept
    try:
        yield context
    finally:
        shutdown_distributed()
