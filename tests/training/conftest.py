"""Fixtures of the trainer tests: one torch thread (the machine's cores are shared) and fixture folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from training_fixtures import REPO, write_photos


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """Every trainer test runs with one torch thread."""


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic photos (PNG and JPEG, some nested), shared read-only by the tests of a session."""
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, 8)
    return folder


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child processes: one thread each, fixtures importable, src on the path."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    paths = [str(Path(__file__).parent), str(REPO / "tests"), str(REPO / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env
