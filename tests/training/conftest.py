"""Fixtures of the trainer tests: one torch thread (the machine's cores are shared)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """Every trainer test runs with one torch thread."""
