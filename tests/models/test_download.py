"""Downloads into the cache against a real HTTP server on 127.0.0.1: atomic writes, cache reuse, sha256,
HTTP and connection errors with their messages, Google Drive's confirmation pages, progress, cache folder."""

from __future__ import annotations

import hashlib
import io
import os
import socket
from pathlib import Path

import pytest

from lipsim_tm.models import download
from lipsim_tm.models.download import DownloadError, cache_dir, download_file, drive_confirm_url
from weights_server import DRIVE_UUID, LocalServer

DATA = os.urandom(50_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def served(server: LocalServer) -> LocalServer:
    server.files["net.pth"] = DATA
    return server


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_is_atomic_recorded_and_reused_without_network(
    served: LocalServer, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    renames = []
    real_replace = os.replace

    def spy(src: str, dst: os.PathLike) -> None:
        renames.append((Path(src), Path(dst), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(download.os, "replace", spy)
    target = cache / "sub" / "net.pth"
    assert download_file([served.url("/files/net.pth")], target, progress=False) == target
    assert target.read_bytes() == DATA
    # written to a hidden temporary file in the same folder, complete before the rename
    [(src, dst, content), (_, record, _)] = renames  # the file, then its sha256 record (atomic too)
    assert record == target.with_name("net.pth.sha256")
    assert dst == target
    assert src.parent == target.parent
    assert src.name.startswith(".net.pth.")
    assert content == DATA
    assert _listing(target.parent) == ["net.pth", "net.pth.sha256"]
    assert (target.parent / "net.pth.sha256").read_text() == f"{SHA}  net.pth\n"
    err = capsys.readouterr().err
    assert SHA in err
    assert "no published sha256" in err
    assert served.requests == ["/files/net.pth"]
    # reused: no request, with or without a known hash
    assert download_file([served.url("/files/net.pth")], target) == target
    assert download_file([served.url("/files/net.pth")], target, sha256=SHA) == target
    assert served.requests == ["/files/net.pth"]


def test_known_sha256_is_verified(served: LocalServer, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = cache / "net.pth"
    download_file([served.url("/files/net.pth")], target, sha256=SHA.upper(), progress=False)
    assert target.read_bytes() == DATA
    assert "matches the registered sha256" in capsys.readouterr().err


def test_sha256_mismatch_discards_the_download(served: LocalServer, cache: Path) -> None:
    target = cache / "net.pth"
    wrong = "0" * 64
    with pytest.raises(ValueError, match=rf"sha256 mismatch for .*/files/net\.pth: expected {wrong}, got {SHA}"):
        download_file([served.url("/files/net.pth")], target, sha256=wrong, progress=False)
    assert _listing(cache) == []


def test_a_cached_file_without_its_registered_hash_is_downloaded_again(
    served: LocalServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = cache / "net.pth"
    cache.mkdir()
    target.write_bytes(b"not the weights")
    assert download_file([served.url("/files/net.pth")], target, sha256=SHA, progress=False) == target
    assert target.read_bytes() == DATA
    assert "no longer has its registered sha256 (damaged or replaced): downloading it again" in capsys.readouterr().err
    assert served.requests == ["/files/net.pth"]


def test_a_damaged_download_is_fetched_again_by_its_recorded_hash(
    served: LocalServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No registered sha256 (the released checkpoints): the digest recorded at download is the reference."""
    target = cache / "net.pth"
    download_file([served.url("/files/net.pth")], target, progress=False)
    assert (cache / "net.pth.sha256").read_text().split()[0] == SHA
    target.write_bytes(DATA[:10])  # truncated, as a crash or a full disk leaves a copy
    assert download_file([served.url("/files/net.pth")], target, progress=False) == target
    assert target.read_bytes() == DATA
    assert "no longer has its recorded sha256" in capsys.readouterr().err
    assert served.requests == ["/files/net.pth", "/files/net.pth"]
    # A file placed by hand, with no record and no registered digest, is taken as it is, offline.
    (cache / "net.pth.sha256").unlink()
    target.write_bytes(b"placed by hand")
    assert download_file(["http://127.0.0.1:9/x"], target, progress=False) == target


def test_a_damaged_download_offline_says_so_and_how_to_place_it(cache: Path, capsys) -> None:
    target = cache / "net.pth"
    cache.mkdir()
    target.write_bytes(b"damaged")
    (cache / "net.pth.sha256").write_text(f"{SHA}  net.pth\n")
    with pytest.raises(DownloadError, match="To place the file by hand") as raised:
        download_file(["http://127.0.0.1:9/x"], target, progress=False)
    assert "downloading it again" in capsys.readouterr().err
    assert target.read_bytes() == b"damaged"  # kept: it may be a file placed by hand over an old download
    record = cache / "net.pth.sha256"
    assert f"if you placed it there by hand, delete {str(record)!r} to use it as it is" in str(raised.value)
    record.unlink()
    assert download_file(["http://127.0.0.1:9/x"], target, progress=False) == target


@pytest.mark.parametrize(("code", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
def test_http_errors_name_url_cache_path_and_manual_placement(
    server: LocalServer, cache: Path, code: int, reason: str
) -> None:
    target = cache / "net.pth"
    url = server.url(f"/status/{code}")
    with pytest.raises(DownloadError) as info:
        download_file([url], target, sha256=SHA, progress=False)
    message = str(info.value)
    assert f"{url}: HTTP error {code} ({reason})" in message
    assert f"download it from {url}" in message
    assert f"save it as {str(target)!r}" in message
    assert f"its sha256 must be {SHA}" in message
    assert "$LIPSIM_CACHE_DIR" in message
    assert isinstance(info.value, RuntimeError)
    assert _listing(cache) == []


def test_connection_refused(cache: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/net.pth"
    with pytest.raises(DownloadError, match=rf"(?s){url}: cannot connect \(.*refused.*save it as '{cache}/net\.pth'"):
        download_file([url], cache / "net.pth", progress=False)


def test_timeout(server: LocalServer, cache: Path) -> None:
    with pytest.raises(DownloadError, match=r"/slow: timed out"):
        download_file([server.url("/slow")], cache / "net.pth", timeout=0.2, progress=False)
    assert _listing(cache) == []


def test_truncated_body_is_discarded(served: LocalServer, cache: Path) -> None:
    with pytest.raises(DownloadError, match=rf"the connection closed after {len(DATA)} of {len(DATA) + 100} bytes"):
        download_file([served.url("/truncated/net.pth")], cache / "net.pth", progress=False)
    assert _listing(cache) == []


def test_html_page_without_confirmation_is_an_error(server: LocalServer, cache: Path) -> None:
    with pytest.raises(DownloadError, match=r"/quota: .*sent an HTML page instead of the file.*quota"):
        download_file([server.url("/quota")], cache / "net.pth", progress=False)
    assert _listing(cache) == []


def test_next_url_is_tried_after_a_failure(served: LocalServer, cache: Path) -> None:
    target = cache / "net.pth"
    download_file([served.url("/status/503"), served.url("/files/net.pth")], target, sha256=SHA, progress=False)
    assert target.read_bytes() == DATA
    assert served.requests == ["/status/503", "/files/net.pth"]


def test_google_drive_confirmation_form(served: LocalServer, cache: Path) -> None:
    target = cache / "net.pth"
    download_file([served.url("/drive/uc?export=download&id=net.pth")], target, sha256=SHA, progress=False)
    assert target.read_bytes() == DATA
    assert served.requests == [
        "/drive/uc?export=download&id=net.pth",
        f"/drive/download?id=net.pth&export=download&confirm=t&uuid={DRIVE_UUID}",
    ]


def test_google_drive_old_confirmation_link_and_cookie(served: LocalServer, cache: Path) -> None:
    target = cache / "net.pth"
    download_file([served.url("/olddrive/uc?export=download&id=net.pth")], target, sha256=SHA, progress=False)
    assert target.read_bytes() == DATA
    assert len(served.requests) == 2
    assert "confirm=" in served.requests[1]


def test_drive_confirm_url_parsing() -> None:
    form = (
        '<form action="https://drive.usercontent.google.com/download" method="get">'
        '<input type="hidden" name="id" value="ABC"><input type="hidden" name="confirm" value="t">'
        '<input type="hidden" name="uuid" value="u-1"></form>'
    )
    base = "https://drive.google.com/uc?export=download&id=ABC"
    assert drive_confirm_url(form, base) == "https://drive.usercontent.google.com/download?id=ABC&confirm=t&uuid=u-1"
    link = '<a href="/uc?export=download&amp;confirm=Tk_1&amp;id=ABC">Download anyway</a>'
    assert drive_confirm_url(link, base) == "https://drive.google.com/uc?export=download&confirm=Tk_1&id=ABC"
    plain = '<form action="/search"><input type="hidden" name="q" value="x"></form><a href="/help">help</a>'
    assert drive_confirm_url(plain, base) is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("progress", "terminal", "shown"),
    [(True, False, True), (False, True, False), (None, True, True), (None, False, False)],
)
def test_progress_on_stderr(
    served: LocalServer,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    progress: bool | None,
    terminal: bool,
    shown: bool,
) -> None:
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    download_file([served.url("/files/net.pth")], cache / "net.pth", progress=progress)
    text = stderr.getvalue()
    assert (f"\rdownloading net.pth: {len(DATA):,} / {len(DATA):,} bytes (100%)\n" in text) == shown
    assert SHA in text  # the completion line is always written


def test_cache_dir_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIPSIM_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "lipsim_tm"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lipsim_tm"
    monkeypatch.setenv("LIPSIM_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("LIPSIM_CACHE_DIR", "")
    assert cache_dir() == tmp_path / "xdg" / "lipsim_tm"


@pytest.mark.parametrize("urls", [[], (), "http://127.0.0.1/x"])
def test_urls_must_be_a_non_empty_sequence(urls: object, cache: Path) -> None:
    with pytest.raises(ValueError, match="urls must be a non-empty sequence of URLs"):
        download_file(urls, cache / "net.pth")
