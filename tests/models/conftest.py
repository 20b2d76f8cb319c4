"""A real HTTP server on 127.0.0.1 for download tests, an isolated cache folder, and a guard that fails any
connection to another host (these tests must never reach the internet)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lipsim_tm.models import weights
from weights_server import LocalServer, serving


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as srv:
        yield srv


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder, selected through ``$LIPSIM_CACHE_DIR``."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("LIPSIM_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every connection that does not go to 127.0.0.1, and start and end with an empty backbone cache."""
    original = socket.create_connection

    def guarded(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"tests may only connect to 127.0.0.1, not {address[0]}")
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    weights.clear_backbone_cache()
    yield
    weights.clear_backbone_cache()
