"""Strict loading of a state dict into a :class:`LipSimBackbone`, with key, shape and dtype checks."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

from lipsim_tm.models.backbone import LipSimBackbone

_SHOWN = 20


def _natural(key: str) -> list[object]:
    """Sort key putting ``convs.2`` before ``convs.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return f"{shown}, ... ({len(items)} in all)" if len(items) > _SHOWN else shown


def common_float_dtype(state: Mapping[str, object], *, source: str) -> torch.dtype:
    """The single floating dtype shared by every tensor of ``state`` (ValueError otherwise)."""
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise ValueError(f"{source}: state dict values must be tensors, got {_listing(not_tensors)}")
    dtypes = {v.dtype for v in state.values() if isinstance(v, Tensor)}
    if not state or len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        names = sorted(str(d) for d in dtypes)
        raise ValueError(f"{source}: expected tensors of one floating dtype, got dtypes {names or 'none (empty)'}")
    return next(iter(dtypes))


def load_state_strict(
    backbone: LipSimBackbone, state: Mapping[str, Tensor], *, source: str, hint: str = ""
) -> LipSimBackbone:
    """Load ``state`` (keys of ``backbone.state_dict()``) into ``backbone`` and return it in eval mode.

    The backbone is first cast to the state's floating dtype, so no precision is silently lost.
    ``hint`` is appended to the error message (e.g. how key names were translated).

    Raises:
        ValueError: non-tensor values, mixed or non-floating dtypes, non-finite values, or any missing key, unexpected
            key or shape mismatch; the message names ``source`` and lists the offending keys (first 20 of
            each kind, with counts).
    """
    dtype = common_float_dtype(state, source=source)
    expected = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    missing = sorted(set(expected) - set(state), key=_natural)
    unexpected = sorted(set(state) - set(expected), key=_natural)
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {expected[k]}"
        for k in sorted(set(expected) & set(state), key=_natural)
        if tuple(state[k].shape) != expected[k]
    ]
    problems = [
        f"{label} ({len(keys)}): {_listing(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if keys
    ]
    if problems:
        raise ValueError(
            f"{source}: weights do not fit LipSimBackbone with config {backbone.config}; "
            + "; ".join(problems)
            + (f" ({hint})" if hint else "")
        )
    non_finite = [k for k in sorted(state, key=_natural) if not bool(torch.isfinite(state[k]).all())]
    if non_finite:
        raise ValueError(f"{source}: non-finite (nan or inf) values in {_listing(non_finite)}")
    backbone.to(dtype)
    backbone.load_state_dict(dict(state), strict=True)
    return backbone.eval()
