"""Shared fixtures: the devices every device-aware test runs on, and hypothesis profiles."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# Make tests/oracle.py and other helpers importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

from dataset_writers import write_photos
from torch_threads import child_env, one_thread

TESTS = Path(__file__).parent

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def single_thread() -> Iterator[None]:
    """The test runs with one torch thread (see ``tests/torch_threads.py``); modules opt in with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    with one_thread():
        yield


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic photos (PNG and JPEG, some nested), shared read-only by the tests of a session."""
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, 8)
    return folder


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child processes (:func:`torch_threads.child_env`)."""
    return child_env()


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every test that takes ``device`` runs on the CPU always and on CUDA whenever it is present."""
    return torch.device(request.param)


def pytest_sessionstart(session: pytest.Session) -> None:
    """In the full tox env the optional stack must be importable: its tests may not skip silently."""
    if os.environ.get("LIPSIM_REQUIRE_VISION"):
        import matplotlib  # noqa: F401
        import piq  # noqa: F401
        import torchvision  # noqa: F401
    if os.environ.get("LIPSIM_REQUIRE_TEACHERS"):  # tox -e teachers: the DreamSim tests may not skip
        import dreamsim  # noqa: F401
