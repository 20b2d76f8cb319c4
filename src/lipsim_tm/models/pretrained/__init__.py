"""The LipSim model shipped inside the package (registered as ``weights="default"``).

This folder holds ``lipsim_default_v1.pt``, a lipsim-tm export (see :mod:`lipsim_tm.models.checkpoints.export`)
installed as package data, so ``LipSimDistance()`` works with no network. :data:`DEFAULT_SHA256` is the
sha256 of that file, recorded in its model card; when it is set, loading ``"default"`` checks the file
against it. ``None`` means no hash is recorded yet and the file is loaded unchecked.
"""

from __future__ import annotations

#: File name of the shipped default model inside this package.
DEFAULT_FILENAME = "lipsim_default_v1.pt"
#: Hex sha256 of :data:`DEFAULT_FILENAME`, or ``None`` while it is not recorded.
DEFAULT_SHA256: str | None = "7c1771bd9e29afc5e9c8f2b0f3d2da5b4f15bfe3099854a52f13554bb9d58e67"
