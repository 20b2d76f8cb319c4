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

from torch_threads import one_thread

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
