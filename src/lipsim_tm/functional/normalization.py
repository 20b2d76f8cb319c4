"""Normalisation of backbone features onto (at most) unit vectors: which maps exist and their guarantees."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipsim_tm.checks import check_choice, check_finite, check_matrix
from lipsim_tm.nn.normalization import ConstantAugmentNormalize, PlainNormalize, UnitBallProjection

#: Normalisations whose map is 1-Lipschitz everywhere, so certificates built on them are proofs.
SOUND_NORMALIZATIONS: tuple[str, ...] = ("augment", "ball")
#: Every accepted normalisation. ``"plain"`` (``v / ||v||``) is not 1-Lipschitz: norm-aware certificates only.
NORMALIZATIONS: tuple[str, ...] = (*SOUND_NORMALIZATIONS, "plain")
#: Normalisations whose output always lies on the unit sphere.
ON_SPHERE: tuple[str, ...] = ("augment", "plain")

_MAPS: dict[str, nn.Module] = {
    "augment": ConstantAugmentNormalize(1.0),
    "ball": UnitBallProjection(),
    "plain": PlainNormalize(),
}


def check_normalization(normalization: object) -> str:
    """Return ``normalization`` if it is one of :data:`NORMALIZATIONS`, else raise ``ValueError``."""
    return check_choice("normalization", normalization, NORMALIZATIONS)


def check_sound_normalization(normalization: str, what: str) -> None:
    """Raise ``ValueError`` when ``what`` (a certificate) is asked for with the unsound ``"plain"`` map."""
    if normalization not in SOUND_NORMALIZATIONS:
        raise ValueError(
            f"{what} needs a 1-Lipschitz normalization, one of {SOUND_NORMALIZATIONS}; got {normalization!r}"
            " (plain v/||v|| has local Lipschitz constant 1/||v||, unbounded near 0, so no sound certificate follows)"
        )


def normalize_embedding(features: Tensor, normalization: str = "augment") -> Tensor:
    """Map backbone features ``(N, D)`` to normalised embeddings ``phi``.

    Args:
        features: ``(N, D)`` floating-point backbone outputs.
        normalization: ``"augment"`` (default): ``[v; 1] / ||[v; 1]||``, shape ``(N, D + 1)``, unit norm,
            1-Lipschitz everywhere. ``"ball"``: projection onto the unit ball ``v / max(1, ||v||)``,
            shape ``(N, D)``, norm ``<= 1``, 1-Lipschitz everywhere. ``"plain"``: ``v / ||v||``, shape
            ``(N, D)``, unit norm, NOT 1-Lipschitz (local constant ``1 / ||v||``); offered for
            compatibility with the official code; only the norm-aware certificates
            (:mod:`~lipsim_tm.functional.certificates`) accept it.

    Returns:
        The embeddings, same dtype and device as ``features``; differentiable, finite gradients everywhere.

    Raises:
        TypeError, ValueError: ``features`` is not a floating-point ``(N, D)`` tensor, or holds NaN/inf
            (checked with one device-to-host transfer; the library's own paths use :func:`apply_normalization`).
    """
    normalization = check_normalization(normalization)
    check_finite("features", check_matrix("features", features))
    return apply_normalization(features, normalization)


def apply_normalization(features: Tensor, normalization: str) -> Tensor:
    """:func:`normalize_embedding` without the checks, for features the library computed itself (no host sync)."""
    return _MAPS[normalization](features)


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` upcast to float32 when it is float16/bfloat16 (accumulation is at least float32)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
