"""Loading the official LipSim training checkpoints (reference section 4) into :class:`LipSimBackbone`.

The official file is ``torch.save({"epoch", "global_step", "model_state_dict",
"optimizer_state_dict", "scheduler"?})`` of ``DataParallel(NormalizedModel(L2LipschitzNetwork))``,
so keys start with ``module.model.`` and every parameter appears under two aliases:
``convs.{i}.{kernel,bias,q}`` = ``base.1.{i}...`` and ``linear.{k}.{weight,bias,q}`` = ``base.2.{k}...``
(k from 1: index 0 of that Sequential is Flatten). They map onto ``convs.{i}...`` and
``dense.{k-1}...`` of :class:`LipSimBackbone`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor

from lipsim_tm.models.backbone import LipSimBackbone, LipSimConfig, resolve_config
from lipsim_tm.models.checkpoints.io import read_checkpoint
from lipsim_tm.models.checkpoints.strict import load_state_strict

#: Key prefixes accepted, most specific first (the released files use ``module.model.``).
OFFICIAL_PREFIXES = ("module.model.", "module.backbone.", "model.", "")

#: Size of the official truncated embedding (DreamSim's ensemble embedding).
OFFICIAL_OUT_FEATURES = 1792

_CONV = re.compile(r"^(convs|base\.1)\.(\d+)\.(kernel|bias|q)$")
_DENSE = re.compile(r"^(linear|base\.2)\.(\d+)\.(weight|bias|q)$")
_KEY_HINT = "key names are LipSimBackbone's: official convs.{i} -> convs.{i}, linear.{k} -> dense.{k-1}"


def _our_key(rest: str) -> tuple[str, bool] | None:
    """``(LipSimBackbone key, is the base.* alias)`` for a prefix-free official key, else None."""
    if match := _CONV.match(rest):
        family, index, name = match.groups()
        return f"convs.{int(index)}.{name}", family != "convs"
    if (match := _DENSE.match(rest)) and int(match.group(2)) >= 1:
        family, index, name = match.groups()
        return f"dense.{int(index) - 1}.{name}", family != "linear"
    return None


def _model_state(obj: object, *, source: str) -> Mapping[str, object]:
    """The model state dict inside a training checkpoint, or ``obj`` itself if it is a bare state dict."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: expected a checkpoint dict or a state dict, got {type(obj).__name__}")
    if "model_state_dict" in obj:
        state = obj["model_state_dict"]
        if not isinstance(state, Mapping):
            raise ValueError(f"{source}: 'model_state_dict' must be a dict, got {type(state).__name__}")
        return state
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return obj
    top = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(obj.items())[:10]) or "empty"
    raise ValueError(
        f"{source}: not a LipSim checkpoint: no 'model_state_dict' and not a state dict of tensors ({top})"
    )


def _best_prefix(keys: list[str]) -> str:
    def matches(prefix: str) -> int:
        return sum(k.startswith(prefix) and _our_key(k[len(prefix) :]) is not None for k in keys)

    return max(OFFICIAL_PREFIXES, key=matches)  # ties: the first (most specific) wins


def official_to_backbone_state(obj: object, *, source: str = "<in-memory checkpoint>") -> dict[str, Tensor]:
    """Map an official checkpoint (or bare official state dict) onto :class:`LipSimBackbone` keys.

    Accepts the prefixes of :data:`OFFICIAL_PREFIXES`. When the state uses both alias families
    (``convs``/``linear`` and ``base.1``/``base.2``, as official files do) every parameter must appear
    under both and the two must be bitwise identical; a state with a single family is accepted as is.

    Raises:
        ValueError: not a checkpoint, keys that are not official LipSim parameters, a missing alias, or
            aliases that disagree; the message names ``source`` and the keys.
    """
    state = _model_state(obj, source=source)
    keys = [str(k) for k in state]
    prefix = _best_prefix(keys)
    aliases: dict[str, dict[bool, tuple[str, object]]] = {}
    unexpected = []
    for key in keys:
        mapped = _our_key(key[len(prefix) :]) if key.startswith(prefix) else None
        if mapped is None:
            unexpected.append(key)
        else:
            aliases.setdefault(mapped[0], {})[mapped[1]] = (key, state[key])
    if not aliases:
        raise ValueError(f"{source}: no official LipSim parameters found (keys: {', '.join(keys[:10]) or 'none'})")
    families = {is_base for found in aliases.values() for is_base in found}
    missing_aliases = []
    for our, found in aliases.items():
        for is_base in families - set(found):
            original = found[not is_base][0]
            missing_aliases.append(f"alias of {original} (-> {our})")
    if unexpected or missing_aliases:
        problems = [f"unexpected keys: {', '.join(unexpected)}"] if unexpected else []
        problems += [f"missing keys: {', '.join(missing_aliases)}"] if missing_aliases else []
        raise ValueError(f"{source}: not an official LipSim state (prefix {prefix!r}); " + "; ".join(problems))
    result: dict[str, Tensor] = {}
    for our, found in sorted(aliases.items()):
        (key_a, a), *rest = found.values()
        for key_b, b in rest:
            same = isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype and a.shape == b.shape
            if not (same and _bitwise_equal(a, b)):
                raise ValueError(f"{source}: aliases {key_a} and {key_b} of parameter {our} disagree")
        if not isinstance(a, Tensor):
            raise ValueError(f"{source}: {key_a} must be a tensor, got {type(a).__name__}")
        result[our] = a
    return result


def _bitwise_equal(a: Tensor, b: Tensor) -> bool:
    """Same bits (so identical aliases holding nan still agree); ``a`` and ``b`` share dtype and shape."""
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}.get(a.element_size())
    if as_int is None:  # e.g. complex128: no integer view; such tensors are rejected later anyway
        return torch.equal(a, b)
    return torch.equal(a.contiguous().view(as_int), b.contiguous().view(as_int))


def _shape(state: Mapping[str, Tensor], prefix: str, name: str, *, source: str) -> tuple[int, ...]:
    layers = sorted(int(k.split(".")[1]) for k in state if k.startswith(prefix) and k.endswith(f".{name}"))
    if not layers:
        raise ValueError(f"{source}: cannot infer the architecture: no {prefix}*.{name}; pass config=")
    return tuple(state[f"{prefix}{layers[0]}.{name}"].shape)


def infer_official_config(
    state: Mapping[str, Tensor], *, out_features: int = OFFICIAL_OUT_FEATURES, source: str = "<state dict>"
) -> LipSimConfig:
    """The :class:`LipSimConfig` of the official network whose (LipSimBackbone-keyed) weights are ``state``.

    Depth, channels, inner widths and dense depth come from the shapes; the input size from the dense
    width ``channels * (input_size / 16)^2`` (two 4x4 pools); ``out_features`` is not stored in
    the weights (official: 1792). Equals ``NAMED_CONFIGS[name]`` when the shapes are those of ``name``.
    Only the first layer of each kind is read; the strict load checks every other shape.
    """
    kernel = _shape(state, "convs.", "kernel", source=source)
    weight = _shape(state, "dense.", "weight", source=source)
    if len(kernel) != 4 or kernel[2:] != (3, 3) or len(weight) != 2:
        raise ValueError(
            f"{source}: wrong architecture: expected conv kernels (inner, channels, 3, 3) and dense weights"
            f" (inner, features), got {kernel} and {weight}"
        )
    inner, channels = kernel[:2]
    dense_inner, flat = weight
    side = math.isqrt(flat // channels) if flat % channels == 0 else 0
    if side == 0 or side * side * channels != flat:
        raise ValueError(
            f"{source}: wrong architecture: dense width {flat} is not channels ({channels}) times a square"
        )
    if out_features > flat:
        raise ValueError(f"{source}: out_features={out_features} exceeds the dense width {flat}; pass config=")
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("convs."))
    dense_depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("dense."))
    return LipSimConfig(
        input_size=16 * side,
        channels=channels,
        conv_inner=inner,
        conv_stages=(depth, 0),
        pool_size=4,
        dense_depth=dense_depth,
        dense_inner=dense_inner,
        out_features=out_features,
    )


def check_official_layout(config: LipSimConfig) -> None:
    """ValueError unless ``config`` computes the official function: RGB input, no unshuffle/scale/shift,
    all convolutions before two 4x4 pools, and the official (cancelling) q in conv layers."""
    official = {
        "in_channels": 3,
        "unshuffle": 1,
        "pool_size": 4,
        "input_scale": 1.0,
        "input_shift": 0.0,
        "q_scaled_conv": False,
    }
    wrong = [
        f"{name}={getattr(config, name)!r} (official {value!r})"
        for name, value in official.items()
        if getattr(config, name) != value
    ]
    if len(config.conv_stages) != 2 or config.conv_stages[1] != 0:
        wrong.append(f"conv_stages={config.conv_stages!r} (official (depth, 0))")
    if wrong:
        raise ValueError(f"config is not an official LipSim layout: {', '.join(wrong)}")


def backbone_from_official(
    obj: object, *, config: str | LipSimConfig | None = None, source: str = "<in-memory checkpoint>"
) -> LipSimBackbone:
    """:func:`load_official_checkpoint` for an already loaded checkpoint dict or bare state dict."""
    state = official_to_backbone_state(obj, source=source)
    if config is None:
        config = infer_official_config(state, source=source)
    else:
        config = resolve_config(config)
        check_official_layout(config)
    return load_state_strict(LipSimBackbone(config), state, source=source, hint=_KEY_HINT)


def load_official_checkpoint(
    path_or_state: str | os.PathLike[str] | Mapping[str, object],
    *,
    config: str | LipSimConfig | None = None,
) -> LipSimBackbone:
    """A :class:`LipSimBackbone` (eval mode, CPU) with the weights of an official checkpoint.

    Args:
        path_or_state: a checkpoint file (read with ``weights_only=True``), or an already loaded
            training checkpoint dict or bare state dict.
        config: the architecture; ``None`` infers it from the shapes (:func:`infer_official_config`,
            which gives ``NAMED_CONFIGS["small"]`` for the released files). Must be an official layout
            (:func:`check_official_layout`).

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``path_or_state`` is neither a path nor a dict.
        ValueError: unreadable file, not a checkpoint, disagreeing aliases, or weights that do not fit
            the configuration (every missing, unexpected and mis-shaped key is listed).
    """
    if isinstance(path_or_state, (str, os.PathLike)):
        source = f"checkpoint {os.fspath(path_or_state)!r}"
        return backbone_from_official(
            read_checkpoint(path_or_state, "official checkpoint"), config=config, source=source
        )
    if isinstance(path_or_state, Mapping):
        return backbone_from_official(path_or_state, config=config)
    raise TypeError(f"path_or_state must be a path or a dict, got {type(path_or_state).__name__}")
