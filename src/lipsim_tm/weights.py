"""Which network a metric or functional call uses: ``weights`` resolution and the functional cache.

``weights`` may be:

- a :class:`~lipsim_tm.backbone.LipSimBackbone` instance: used as is (never copied, moved or frozen here);
- a checkpoint path (``str`` or ``os.PathLike``): an official LipSim checkpoint or a lipsim-tm export,
  read by :func:`lipsim_tm.checkpoints.load_backbone`;
- ``"random:<config>"`` (e.g. ``"random:tiny32"``): a randomly initialised backbone of a named
  configuration, always the same weights (seed :data:`RANDOM_SEED`, the global RNG is left untouched).
  For tests and examples only: its distances mean nothing perceptually.
- ``"default"``: the shipped LipSim model. Not available in this version; it raises a ``ValueError``
  saying what to pass instead.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from pathlib import Path

import torch

from lipsim_tm.backbone import NAMED_CONFIGS, LipSimBackbone

DEFAULT_WEIGHTS = "default"
RANDOM_PREFIX = "random:"
#: Seed of every ``"random:<config>"`` backbone, so processes and test runs build identical networks.
RANDOM_SEED = 0
#: Most networks the functional cache keeps (per weights and device).
CACHE_SIZE = 8

Weights = LipSimBackbone | str | os.PathLike

_CACHE: OrderedDict[tuple, LipSimBackbone] = OrderedDict()


def _hint() -> str:
    return (
        "pass weights=<path to an official LipSim checkpoint or a lipsim-tm export>, a LipSimBackbone instance,"
        f" or 'random:<config>' (random initialisation, for tests only; configs: {sorted(NAMED_CONFIGS)})"
    )


def random_backbone(config: str) -> LipSimBackbone:
    """A randomly initialised :class:`LipSimBackbone` of a named ``config``, seeded with :data:`RANDOM_SEED`."""
    if config not in NAMED_CONFIGS:
        raise ValueError(f"weights='random:<config>' needs a config in {sorted(NAMED_CONFIGS)}, got {config!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return LipSimBackbone(config).eval()


def _source(weights: object) -> tuple[str, str]:
    """``("random", config)`` or ``("file", path)`` for non-instance ``weights``; raises on anything else."""
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise TypeError(
            f"weights must be a LipSimBackbone, a checkpoint path or a 'random:<config>' string,"
            f" got {type(weights).__name__}"
        )
    if weights == DEFAULT_WEIGHTS:
        raise ValueError(f"weights='default' (the shipped LipSim model) is not available in this version; {_hint()}")
    if weights.startswith(RANDOM_PREFIX):
        return "random", weights[len(RANDOM_PREFIX) :]
    if weights in NAMED_CONFIGS and not Path(weights).exists():
        raise ValueError(
            f"weights={weights!r} names a configuration, but released weights for it cannot be loaded by name in"
            f" this version; pass weights='random:{weights}' for a random network (tests only) or a checkpoint path"
        )
    return "file", weights


def resolve_backbone(weights: Weights) -> LipSimBackbone:
    """The backbone that ``weights`` names (see the module docstring): the instance itself, or a new one on the CPU.

    Raises:
        TypeError: ``weights`` has the wrong type.
        ValueError: ``"default"``, an unknown ``"random:<config>"``, a bare configuration name, or an
            invalid checkpoint.
        FileNotFoundError: the checkpoint path does not exist.
    """
    if isinstance(weights, LipSimBackbone):
        return weights
    kind, value = _source(weights)
    if kind == "random":
        return random_backbone(value)
    from lipsim_tm.checkpoints import load_backbone

    return load_backbone(value, map_location="cpu")


def _cache_key(weights: Weights) -> tuple:
    kind, value = _source(weights)
    if kind == "random":
        return (kind, value)
    path = Path(value).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError as error:
        raise FileNotFoundError(f"weights checkpoint {value!r} does not exist") from error
    return (kind, str(path), stat.st_mtime_ns, stat.st_size)


def cached_backbone(weights: Weights, device: torch.device | str) -> LipSimBackbone:
    """A frozen (``requires_grad=False``, eval) backbone for ``weights`` on ``device``, built once and cached.

    Used by the functional API so that calls do not rebuild or reload the network. Entries are keyed on
    the configuration name, or on the checkpoint's resolved path, modification time and size (so a
    rewritten file is reloaded), and on the device: each device gets its own copy, made from the
    first one loaded. At most :data:`CACHE_SIZE` networks are kept (least recently used dropped).
    A :class:`LipSimBackbone` instance is returned as is and never cached, copied, moved or frozen.
    """
    if isinstance(weights, LipSimBackbone):
        return weights
    device = torch.device(device)
    key = _cache_key(weights)
    entry = (*key, str(device))
    if entry in _CACHE:
        _CACHE.move_to_end(entry)
        return _CACHE[entry]
    template = next((net for k, net in _CACHE.items() if k[:-1] == key), None)
    net = copy.deepcopy(template) if template is not None else resolve_backbone(weights).requires_grad_(False).eval()
    net = net.to(device)
    _CACHE[entry] = net
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return net


def clear_backbone_cache() -> None:
    """Forget every network cached by :func:`cached_backbone`."""
    _CACHE.clear()


__all__ = ["DEFAULT_WEIGHTS", "RANDOM_SEED", "Weights", "cached_backbone", "clear_backbone_cache", "resolve_backbone"]
