"""DreamSim teacher tests: only with the teachers extra (``tox -e teachers``); random weights, never a download."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dreamsim_cache(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``dreamsim_cache(kind, seed=0)``: a folder holding random DreamSim weights of ``kind`` (written once)."""
    from lipsim_tm.training.teachers.dreamsim_random import write_random_dreamsim_cache

    written: dict[tuple[str, int], Path] = {}

    def make(kind: str, seed: int = 0) -> Path:
        if (kind, seed) not in written:
            folder = tmp_path_factory.mktemp(f"dreamsim-{kind}")
            written[kind, seed] = write_random_dreamsim_cache(folder, kind, seed=seed)
        return written[kind, seed]

    return make
