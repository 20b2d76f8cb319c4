"""weights= by registered name: the shipped default (offline), downloaded entries (served from 127.0.0.1 by
temporary registry entries), the real paper entries (never downloaded here), errors and the functional cache."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from lipsim_tm.functional import lipsim_distance
from lipsim_tm.metrics import Certified2AFCAccuracy, LipSimDistance
from lipsim_tm.models import registry
from lipsim_tm.models.backbone import LipSimBackbone, LipSimConfig
from lipsim_tm.models.checkpoints.auto import load_backbone
from lipsim_tm.models.checkpoints.export import save_export
from lipsim_tm.models.checkpoints.io import file_sha256
from lipsim_tm.models.download import DownloadError
from lipsim_tm.models.registry import WeightsEntry, WeightsNotFoundError, describe_weights, register_weights
from lipsim_tm.models.weights import cached_backbone, resolve_backbone
from weights_server import LocalServer

from oracle import TINY_OFFICIAL_SIZES, build_official_model, lipsim_config_fields, save_official_checkpoint

SIZES = TINY_OFFICIAL_SIZES
CONFIG = LipSimConfig(**lipsim_config_fields(**SIZES))
PAPER = {
    "lipsim-pretrained": "1Y39Wnpxq3ZS8JMRe6j-Yx7x3E_nardbv",
    "lipsim-margin0.2": "1OHRP0uwFrRJ6zXsPrCUDxlTjALa_690c",
    "lipsim-margin0.5": "11JoY5jrm4qmk0QmncQ5eVqXQpXQNLG1X",
}


def _same_weights(a: LipSimBackbone, b: LipSimBackbone) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


@pytest.fixture
def official_bytes(tmp_path: Path) -> bytes:
    """A tiny checkpoint in the official layout (``module.model.`` keys, aliases, optimizer state)."""
    path = tmp_path / "model.ckpt-10.pth"
    save_official_checkpoint(build_official_model(seed=3, **SIZES), path)
    return path.read_bytes()


@pytest.fixture
def expected(official_bytes: bytes, tmp_path: Path) -> LipSimBackbone:
    path = tmp_path / "reference.pth"
    path.write_bytes(official_bytes)
    return load_backbone(path, config=CONFIG)


def _register(monkeypatch: pytest.MonkeyPatch, **fields: object) -> WeightsEntry:
    entry = WeightsEntry(**{"name": "test-net", "description": "tiny", "filename": "test-net.pth", **fields})
    monkeypatch.setitem(registry.REGISTRY, entry.name, entry)
    return entry


@pytest.fixture
def fake_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LipSimBackbone:
    """A tiny export installed as the shipped default (``PRETRAINED_DIR`` points at a temporary folder; the
    entry's recorded hash, which is that of the real file, is dropped)."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    net = LipSimBackbone("tiny32")
    save_export(net, folder / "lipsim_default_v1.pt")
    monkeypatch.setattr(registry, "PRETRAINED_DIR", folder)
    monkeypatch.setitem(registry.REGISTRY, "default", dataclasses.replace(registry.REGISTRY["default"], sha256=None))
    return net.eval()


# --- downloaded entries ---------------------------------------------------------------------------------------------


def test_registered_official_checkpoint_is_downloaded_once_then_loaded_offline(
    server: LocalServer, cache: Path, monkeypatch: pytest.MonkeyPatch, official_bytes: bytes, expected: LipSimBackbone
) -> None:
    server.files["tiny.pth"] = official_bytes
    _register(monkeypatch, format="official", urls=(server.url("/drive/uc?id=tiny.pth"),), config=CONFIG)
    net = resolve_backbone("test-net")
    assert _same_weights(net, expected)
    assert not net.training
    assert (cache / "test-net.pth").read_bytes() == official_bytes
    assert (cache / "test-net.pth.sha256").read_text().split()[0] == hashlib.sha256(official_bytes).hexdigest()
    requests = list(server.requests)
    assert len(requests) == 2  # the confirmation page, then the file
    assert _same_weights(resolve_backbone("test-net"), expected)
    first = cached_backbone("test-net", "cpu")
    assert cached_backbone("test-net", "cpu") is first
    assert not any(p.requires_grad for p in first.parameters())
    assert server.requests == requests


def test_known_hash_is_checked_for_registered_downloads(
    server: LocalServer, cache: Path, monkeypatch: pytest.MonkeyPatch, official_bytes: bytes, expected: LipSimBackbone
) -> None:
    server.files["tiny.pth"] = official_bytes
    wrong = "f" * 64
    _register(monkeypatch, format="official", urls=(server.url("/files/tiny.pth"),), sha256=wrong, config=CONFIG)
    with pytest.raises(ValueError, match=f"sha256 mismatch.*expected {wrong}"):
        resolve_backbone("test-net")
    assert not (cache / "test-net.pth").exists()
    right = hashlib.sha256(official_bytes).hexdigest()
    _register(monkeypatch, format="official", urls=(server.url("/files/tiny.pth"),), sha256=right, config=CONFIG)
    assert _same_weights(resolve_backbone("test-net"), expected)


def test_file_placed_by_hand_is_used_without_network(
    cache: Path, monkeypatch: pytest.MonkeyPatch, official_bytes: bytes, expected: LipSimBackbone
) -> None:
    _register(monkeypatch, format="official", urls=("http://127.0.0.1:9/never",), config=CONFIG)
    cache.mkdir()
    (cache / "test-net.pth").write_bytes(official_bytes)
    assert _same_weights(resolve_backbone("test-net"), expected)


def test_failed_download_names_url_cache_path_and_manual_placement(
    server: LocalServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.url("/status/404")
    _register(monkeypatch, format="official", urls=(url,), config=CONFIG)
    with pytest.raises(DownloadError, match=rf"(?s){url}: HTTP error 404.*save it as '{cache}/test-net\.pth'"):
        LipSimDistance(weights="test-net")
    with pytest.raises(DownloadError, match="HTTP error 404"):
        lipsim_distance(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), weights="test-net")


def test_declared_format_is_enforced(
    server: LocalServer, cache: Path, monkeypatch: pytest.MonkeyPatch, official_bytes: bytes
) -> None:
    server.files["tiny.pth"] = official_bytes
    _register(monkeypatch, format="export", urls=(server.url("/files/tiny.pth"),))
    with pytest.raises(ValueError, match=r"weights='test-net': .*test-net\.pth' is registered as format 'export'"):
        resolve_backbone("test-net")


def test_wrong_architecture_names_the_entry(
    server: LocalServer, cache: Path, monkeypatch: pytest.MonkeyPatch, official_bytes: bytes
) -> None:
    server.files["tiny.pth"] = official_bytes
    _register(monkeypatch, format="official", urls=(server.url("/files/tiny.pth"),), config="tiny64")
    with pytest.raises(ValueError, match=r"weights='test-net' \('.*test-net\.pth'\): "):
        resolve_backbone("test-net")


# --- the shipped default --------------------------------------------------------------------------------------------


def test_shipped_default_loads_offline_everywhere(fake_default: LipSimBackbone) -> None:
    assert _same_weights(resolve_backbone("default"), fake_default)
    metric = LipSimDistance()
    assert _same_weights(metric.backbone, fake_default)
    assert _same_weights(Certified2AFCAccuracy().backbone, fake_default)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(lipsim_distance(x, y), lipsim_distance(x, y, weights=fake_default))
    assert cached_backbone("default", "cpu") is cached_backbone("default", "cpu")


def test_shipped_default_is_checked_against_its_hash(
    fake_default: LipSimBackbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = registry.REGISTRY["default"]
    digest = file_sha256(registry.PRETRAINED_DIR / "lipsim_default_v1.pt")
    monkeypatch.setitem(registry.REGISTRY, "default", dataclasses.replace(entry, sha256=digest))
    assert _same_weights(resolve_backbone("default"), fake_default)
    monkeypatch.setitem(registry.REGISTRY, "default", dataclasses.replace(entry, sha256="a" * 64))
    with pytest.raises(
        ValueError, match=f"sha256 mismatch for .*lipsim_default_v1.pt'?: expected {'a' * 64}, got {digest}"
    ):
        LipSimDistance()


def test_missing_default_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PRETRAINED_DIR", tmp_path / "empty")
    pattern = (
        rf"weights='default': the shipped model is not available: '{tmp_path}/empty/lipsim_default_v1\.pt' is"
        r" missing .*reinstall.*checkpoint.*LipSimBackbone.*lipsim-margin0\.5.*random:"
    )
    for make in (lambda: resolve_backbone("default"), LipSimDistance, Certified2AFCAccuracy):
        with pytest.raises(WeightsNotFoundError, match=pattern) as info:
            make()
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, FileNotFoundError)


# --- the paper's checkpoints ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "drive_id"), PAPER.items())
def test_paper_entries(name: str, drive_id: str, cache: Path) -> None:
    entry = registry.REGISTRY[name]
    assert entry.format == "official"
    assert entry.config == "small"
    assert entry.sha256 is None
    assert entry.urls == (f"https://drive.google.com/uc?export=download&id={drive_id}",)
    assert registry.local_path(entry) == cache / f"{name}.pth"
    # the test guard refuses the connection: the error says where to put the file by hand
    with pytest.raises(DownloadError, match=rf"(?s)id={drive_id}: cannot connect.*save it as '{cache}/{name}\.pth'"):
        resolve_backbone(name)


def test_registered_names_and_listing(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert registry.registered_names()[:4] == ["default", *PAPER]
    monkeypatch.setattr(registry, "PRETRAINED_DIR", tmp_path / "empty")
    cache.mkdir()
    (cache / "lipsim-margin0.2.pth").write_bytes(b"placed")
    text = describe_weights()
    assert "default: lipsim-tm's own LipSim model" in text
    assert f"shipped, but missing from this installation: {tmp_path}/empty/lipsim_default_v1.pt" in text
    assert f"cached: {cache}/lipsim-margin0.2.pth" in text
    assert f"downloaded on first use from {registry.REGISTRY['lipsim-margin0.5'].urls[0]} to {cache}" in text


# --- other weights and bad input ------------------------------------------------------------------------------------


def test_paths_random_and_instances_still_resolve(tmp_path: Path, official_bytes: bytes) -> None:
    official = tmp_path / "model.ckpt-1.pth"
    official.write_bytes(official_bytes)
    net = LipSimBackbone("tiny32")
    save_export(net, tmp_path / "export.pt")
    assert resolve_backbone(str(tmp_path / "export.pt")).config == net.config
    with pytest.raises(ValueError, match="out_features=1792 exceeds"):  # official shapes, detected; config inferred
        resolve_backbone(official)
    assert resolve_backbone("random:tiny32").config.input_size == 32
    assert resolve_backbone(net) is net


def test_unknown_strings_list_the_registered_names(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"weights='lipsim' is neither a registered name \(\['default'"):
        resolve_backbone("lipsim")
    with pytest.raises(ValueError, match=r"'no/such\.pt' is neither a registered name.*'lipsim-margin0\.5'"):
        resolve_backbone("no/such.pt")
    with pytest.raises(FileNotFoundError, match="weights file not found"):  # a path object is always a path
        resolve_backbone(tmp_path / "default")
    with pytest.raises(ValueError, match=r"'small' names a configuration, not weights.*'lipsim-margin0\.5'"):
        resolve_backbone("small")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"name": ""}, "name must be a non-empty str"),
        ({"name": "a:b"}, "name must not contain ':'"),
        ({"filename": "sub/x.pth"}, "filename must be a bare file name"),
        ({"format": "onnx"}, r"format must be one of \('export', 'official'\), got 'onnx'"),
        ({"urls": ["http://x"]}, "urls must be a tuple of http"),
        ({"urls": ("ftp://x",)}, "urls must be a tuple of http"),
        ({"sha256": "abc"}, "sha256 must be None or 64 lowercase hex digits, got 'abc'"),
        ({"sha256": "A" * 64}, "sha256 must be None or 64 lowercase hex digits"),
        ({"config": "huge"}, "config must be None, a LipSimConfig or one of"),
    ],
)
def test_bad_entries(fields: dict[str, object], match: str) -> None:
    base = {"name": "x", "description": "d", "filename": "x.pth", "format": "export"}
    with pytest.raises(ValueError, match=match):
        WeightsEntry(**{**base, **fields})


def test_register_refuses_duplicates_unless_replacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    entry = WeightsEntry(name="default", description="d", filename="x.pt", format="export")
    with pytest.raises(ValueError, match="'default' is already registered; pass replace=True"):
        register_weights(entry)
    assert register_weights(entry, replace=True) is registry.REGISTRY["default"]
    with pytest.raises(TypeError, match="entry must be a WeightsEntry, got dict"):
        register_weights({"name": "y"})
