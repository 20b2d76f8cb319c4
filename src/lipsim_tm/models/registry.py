"""Named weights: what each registered name loads, where its file comes from and how it is checked.

Registered names (see :func:`describe_weights`):

- ``"default"``: the model shipped inside the package (:mod:`lipsim_tm.models.pretrained`), a lipsim-tm export
  read offline, checked against :data:`lipsim_tm.models.pretrained.DEFAULT_SHA256` when that is set.
- ``"lipsim-pretrained"``, ``"lipsim-margin0.2"``, ``"lipsim-margin0.5"``: the three checkpoints released
  with the LipSim paper (official format, architecture ``"small"``): after distillation only, and
  fine-tuned on NIGHTS with hinge margin 0.2 or 0.5 (the paper's main model). They are downloaded from
  Google Drive into :func:`lipsim_tm.models.download.cache_dir` on first use. Their sha256 is not published, so
  nothing is checked; the digest of what was downloaded is printed and recorded next to the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from importlib.resources import files
from pathlib import Path

from lipsim_tm.models import pretrained
from lipsim_tm.models.backbone import NAMED_CONFIGS, LipSimConfig
from lipsim_tm.models.download import CACHE_ENV, cache_dir, check_sha256, download_file

#: File formats an entry may declare: a lipsim-tm export or an official LipSim training checkpoint.
FORMATS = ("export", "official")
#: Folder of the files shipped inside the package (the installed ``lipsim_tm/models/pretrained``).
PRETRAINED_DIR = Path(str(files(pretrained)))

_SHA256 = re.compile(r"[0-9a-f]{64}")


class WeightsNotFoundError(FileNotFoundError, ValueError):
    """Weights asked for by name or path cannot be found locally: a string that is neither a registered
    name nor an existing file, or a shipped file missing from the installation. Both a ``FileNotFoundError``
    and a ``ValueError``."""


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """What a registered name loads.

    Attributes:
        name: the name passed as ``weights=``.
        description: one line for listings.
        filename: file name, inside :data:`PRETRAINED_DIR` when shipped, else inside the cache folder.
        format: ``"export"`` (lipsim-tm export) or ``"official"`` (official LipSim checkpoint); checked on load.
        urls: where to download the file, tried in order; empty for a file shipped inside the package.
        sha256: hex digest the file must have, or ``None`` when none is known (then nothing is checked).
        config: architecture of an official checkpoint (a name in :data:`~lipsim_tm.models.backbone.NAMED_CONFIGS`
            such as ``"small"``, or a :class:`~lipsim_tm.models.backbone.LipSimConfig`), checked against its shapes;
            ``None`` for exports, which record their own, or to infer it from an official checkpoint's shapes.
    """

    name: str
    description: str
    filename: str
    format: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    config: str | LipSimConfig | None = None

    def __post_init__(self) -> None:
        for field in ("name", "description", "filename"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise ValueError(f"WeightsEntry.{field} must be a non-empty str, got {getattr(self, field)!r}")
        if ":" in self.name or os.sep in self.name or "/" in self.name:
            raise ValueError(f"WeightsEntry.name must not contain ':' or path separators, got {self.name!r}")
        if Path(self.filename).name != self.filename:
            raise ValueError(f"WeightsEntry.filename must be a bare file name, got {self.filename!r}")
        if self.format not in FORMATS:
            raise ValueError(f"WeightsEntry.format must be one of {FORMATS}, got {self.format!r}")
        if not isinstance(self.urls, tuple) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in self.urls
        ):
            raise ValueError(f"WeightsEntry.urls must be a tuple of http(s) URLs, got {self.urls!r}")
        if self.sha256 is not None and not (isinstance(self.sha256, str) and _SHA256.fullmatch(self.sha256)):
            raise ValueError(f"WeightsEntry.sha256 must be None or 64 lowercase hex digits, got {self.sha256!r}")
        named = isinstance(self.config, str) and self.config in NAMED_CONFIGS
        if not (self.config is None or isinstance(self.config, LipSimConfig) or named):
            raise ValueError(
                f"WeightsEntry.config must be None, a LipSimConfig or one of {sorted(NAMED_CONFIGS)},"
                f" got {self.config!r}"
            )

    @property
    def shipped(self) -> bool:
        """Whether the file comes inside the package (no URLs) rather than from a download."""
        return not self.urls


#: Registered entries by name, in registration order. Add entries with :func:`register_weights`.
REGISTRY: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry, *, replace: bool = False) -> WeightsEntry:
    """Make ``entry`` loadable as ``weights=entry.name``; ``replace=True`` to overwrite an existing name."""
    if not isinstance(entry, WeightsEntry):
        raise TypeError(f"entry must be a WeightsEntry, got {type(entry).__name__}")
    if entry.name in REGISTRY and not replace:
        raise ValueError(f"weights name {entry.name!r} is already registered; pass replace=True to overwrite it")
    REGISTRY[entry.name] = entry
    return entry


def registered_names() -> list[str]:
    """The registered names, in registration order."""
    return list(REGISTRY)


def get_entry(name: str) -> WeightsEntry:
    """The entry registered as ``name``; ``ValueError`` listing the registered names if there is none."""
    if name not in REGISTRY:
        raise ValueError(f"no weights registered as {name!r}; registered names: {registered_names()}")
    return REGISTRY[name]


def local_path(entry: WeightsEntry) -> Path:
    """Where ``entry``'s file lives on this machine: in :data:`PRETRAINED_DIR` if shipped, else in the cache."""
    return (PRETRAINED_DIR if entry.shipped else cache_dir()) / entry.filename


def weights_file(name: str, *, progress: bool | None = None) -> Path:
    """The local file of the registered ``name``: the shipped file, or the cached one, downloaded first if needed.

    Args:
        name: a registered name.
        progress: download progress on stderr; ``None``: only when stderr is a terminal.

    Raises:
        ValueError: ``name`` is not registered, or the file's sha256 differs from the registered one.
        WeightsNotFoundError: a shipped file is missing from the installation.
        lipsim_tm.models.download.DownloadError: the file is not cached and could not be downloaded.
    """
    entry = get_entry(name)
    path = local_path(entry)
    if entry.shipped:
        if not path.is_file():
            raise WeightsNotFoundError(
                f"weights={name!r}: the shipped model is not available: {str(path)!r} is missing from this"
                " installation of lipsim_tm (reinstall the package); meanwhile pass weights=<path to an official"
                " LipSim checkpoint or a lipsim-tm export>, a LipSimBackbone instance, another registered name"
                f" ({[n for n in REGISTRY if n != name]}) or 'random:<config>' (random weights, for tests only)"
            )
        if entry.sha256 is not None:
            check_sha256(path, entry.sha256)
        return path
    return download_file(entry.urls, path, sha256=entry.sha256, progress=progress)


def describe_weights() -> str:
    """One line per registered name: the name, its description, and where its file is or comes from."""
    lines = []
    for entry in REGISTRY.values():
        path = local_path(entry)
        if entry.shipped:
            where = f"shipped: {path}" if path.is_file() else f"shipped, but missing from this installation: {path}"
        elif path.is_file():
            where = f"cached: {path}"
        else:
            where = f"downloaded on first use from {entry.urls[0]} to {path} (${CACHE_ENV} overrides the folder)"
        lines.append(f"{entry.name}: {entry.description}\n    {where}")
    return "\n".join(lines)


def _paper_checkpoint(name: str, what: str, drive_id: str) -> WeightsEntry:
    """A checkpoint released with the LipSim paper, hosted on Google Drive under ``drive_id``."""
    return WeightsEntry(
        name=name,
        description=f"LipSim paper checkpoint {what}; architecture 'small', downloaded from Google Drive",
        filename=f"{name}.pth",
        format="official",
        urls=(f"https://drive.google.com/uc?export=download&id={drive_id}",),
        config="small",
    )


register_weights(
    WeightsEntry(
        name="default",
        description="lipsim-tm's own LipSim model, shipped with the package (not the paper's; see its model card)",
        filename=pretrained.DEFAULT_FILENAME,
        format="export",
        sha256=pretrained.DEFAULT_SHA256,
    )
)
register_weights(
    _paper_checkpoint(
        "lipsim-pretrained", "after distillation from DreamSim, not fine-tuned", "1Y39Wnpxq3ZS8JMRe6j-Yx7x3E_nardbv"
    )
)
register_weights(
    _paper_checkpoint(
        "lipsim-margin0.2", "fine-tuned on NIGHTS with hinge margin 0.2", "1OHRP0uwFrRJ6zXsPrCUDxlTjALa_690c"
    )
)
register_weights(
    _paper_checkpoint(
        "lipsim-margin0.5",
        "fine-tuned on NIGHTS with hinge margin 0.5 (the paper's main model)",
        "11JoY5jrm4qmk0QmncQ5eVqXQpXQNLG1X",
    )
)
