"""Which network a metric or functional call uses: ``weights`` resolution and the functional cache.

``weights`` may be:

- a :class:`~lipsim_tm.models.backbone.LipSimBackbone` instance: used as is (never copied, moved or frozen here);
- a registered name (``str``, see :mod:`lipsim_tm.models.registry`): ``"default"``, the LipSim model shipped inside
  the package (read offline; a clear :class:`~lipsim_tm.models.registry.WeightsNotFoundError` if the installation
  lacks it), or one of the paper's released checkpoints ``"lipsim-pretrained"``, ``"lipsim-margin0.2"``,
  ``"lipsim-margin0.5"`` (downloaded into the cache folder on first use, then read from there offline);
- ``"random:<config>"`` (e.g. ``"random:tiny32"``): a randomly initialised backbone of a named
  configuration, always the same weights (seed :data:`RANDOM_SEED`, the global RNG is left untouched).
  For tests and examples only: its distances mean nothing perceptually.
- a checkpoint path (``os.PathLike``, or a ``str`` that is not a registered name): an official LipSim
  checkpoint or a lipsim-tm export, detected automatically by :func:`lipsim_tm.models.checkpoints.load_backbone`.

A string that is neither a registered name nor ``"random:<config>"`` nor an existing file raises
:class:`~lipsim_tm.models.registry.WeightsNotFoundError` (a ``ValueError`` and a ``FileNotFoundError``) listing
the registered names.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch

from lipsim_tm.models import registry
from lipsim_tm.models.backbone import NAMED_CONFIGS, LipSimBackbone, LipSimConfig, resolve_config

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
        "pass weights=<registered name>, <path to an official LipSim checkpoint or a lipsim-tm export>, a"
        " LipSimBackbone instance, or 'random:<config>' (random initialisation, for tests only; configs:"
        f" {sorted(NAMED_CONFIGS)})"
    )


def random_backbone(config: str) -> LipSimBackbone:
    """A randomly initialised :class:`LipSimBackbone` of a named ``config``, seeded with :data:`RANDOM_SEED`."""
    if config not in NAMED_CONFIGS:
        raise ValueError(f"weights='random:<config>' needs a config in {sorted(NAMED_CONFIGS)}, got {config!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return LipSimBackbone(config).eval()


def _source(weights: object) -> tuple[str, str]:
    """``("random", config)``, ``("registered", name)`` or ``("file", path)`` for non-instance ``weights``."""
    if isinstance(weights, os.PathLike):
        return "file", os.fspath(weights)
    if not isinstance(weights, str):
        raise TypeError(
            "weights must be a LipSimBackbone, a checkpoint path, a registered name or a 'random:<config>' string,"
            f" got {type(weights).__name__}"
        )
    if weights.startswith(RANDOM_PREFIX):
        return "random", weights[len(RANDOM_PREFIX) :]
    if weights in registry.REGISTRY:
        return "registered", weights
    if Path(weights).exists():
        return "file", weights
    if weights in NAMED_CONFIGS:
        raise ValueError(
            f"weights={weights!r} names a configuration, not weights; pass a registered name"
            f" ({registry.registered_names()}), a checkpoint path, or weights='random:{weights}' for a random"
            " network (tests only)"
        )
    raise registry.WeightsNotFoundError(
        f"weights={weights!r} is neither a registered name ({registry.registered_names()}) nor an existing file;"
        f" {_hint()}"
    )


def _load_registered(name: str) -> LipSimBackbone:
    """The backbone of the registered ``name`` (its file downloaded first if needed), checked against the
    entry's declared format and architecture."""
    from lipsim_tm.models.checkpoints.auto import load_backbone
    from lipsim_tm.models.checkpoints.export import is_export
    from lipsim_tm.models.checkpoints.io import read_checkpoint

    entry = registry.get_entry(name)
    path = registry.weights_file(name)
    checkpoint = read_checkpoint(path, f"weights {name!r}")
    found = "export" if is_export(checkpoint) else "official"
    if found != entry.format:
        raise ValueError(f"weights={name!r}: {str(path)!r} is registered as format {entry.format!r} but is {found!r}")
    try:
        return load_backbone(checkpoint, config=entry.config, map_location="cpu")
    except ValueError as error:
        raise ValueError(f"weights={name!r} ({str(path)!r}): {error}") from error


def resolve_backbone(weights: Weights) -> LipSimBackbone:
    """The backbone that ``weights`` names (see the module docstring): the instance itself, or a new one on the CPU.

    Raises:
        TypeError: ``weights`` has the wrong type.
        ValueError: an unknown ``"random:<config>"``, a bare configuration name, an invalid checkpoint, or a
            sha256 mismatch of a registered file.
        WeightsNotFoundError: a string that is neither a registered name nor an existing file, or a shipped
            model missing from the installation.
        FileNotFoundError: a path object that does not exist.
        lipsim_tm.models.download.DownloadError: a registered file that is not cached could not be downloaded.
    """
    if isinstance(weights, LipSimBackbone):
        return weights
    kind, value = _source(weights)
    if kind == "random":
        return random_backbone(value)
    if kind == "registered":
        return _load_registered(value)
    from lipsim_tm.models.checkpoints.auto import load_backbone

    return load_backbone(value, map_location="cpu")


def load_backbone(
    source: str | os.PathLike[str] | Mapping[str, object],
    *,
    config: str | LipSimConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> LipSimBackbone:
    """A :class:`LipSimBackbone` in eval mode from a registered name (``"default"``, ``"lipsim-margin0.5"``, ...;
    see :func:`~lipsim_tm.models.registry.describe_weights`), an export or official checkpoint file, or an
    already loaded dict (see :func:`lipsim_tm.models.checkpoints.load_backbone` for files and dicts).
    ``config`` must equal a registered model's own architecture when given."""
    from lipsim_tm.models.checkpoints.auto import load_backbone as load_file

    if isinstance(source, str) and source in registry.REGISTRY:
        backbone = _load_registered(source)
        if config is not None and resolve_config(config) != backbone.config:
            raise ValueError(f"weights={source!r} has config {backbone.config}, not config={resolve_config(config)}")
        return backbone.to(map_location).eval()
    return load_file(source, config=config, map_location=map_location)


def _cache_key(weights: Weights) -> tuple:
    """``("random", config)``, ``("registered", name, path, mtime, size)`` or ``("file", path, mtime, size)``;
    a registered file not yet in the cache is downloaded here."""
    kind, value = _source(weights)
    if kind == "random":
        return (kind, value)
    path = (registry.weights_file(value) if kind == "registered" else Path(value)).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError as error:
        raise FileNotFoundError(f"weights checkpoint {value!r} does not exist") from error
    file_key = (str(path), stat.st_mtime_ns, stat.st_size)
    return (kind, value, *file_key) if kind == "registered" else (kind, *file_key)


def cached_backbone(weights: Weights, device: torch.device | str) -> LipSimBackbone:
    """A frozen (``requires_grad=False``, eval) backbone for ``weights`` on ``device``, built once and cached.

    Used by the functional API so that calls do not rebuild or reload the network. Entries are keyed on
    the configuration name, or on the checkpoint's resolved path, modification time and size (so a
    rewritten file is reloaded; for a registered name, on the name and its local file, downloaded first
    if needed), and on the device: each device gets its own copy, made from the
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
