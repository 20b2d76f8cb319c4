"""Downloading weight files into the local cache: atomic, with progress, sha256 checks and Google Drive's confirm page.

The cache folder is ``$LIPSIM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/lipsim_tm``, else ``~/.cache/lipsim_tm``
(see :func:`cache_dir`). :func:`download_file` reuses a file that is already there without any network
access when it still has its sha256 (the registered one, else the one recorded at download; a file without
either is taken as it is), downloads a damaged one again with a one-line note (replacing it only once the new
one is complete), and otherwise streams it
(standard library ``urllib`` only) into a temporary file in the same folder that is renamed onto the target only
once it is complete and its sha256 checked, so no reader ever sees a partial file. The sha256 of every
downloaded file is printed and recorded next to it as ``<file>.sha256`` (``sha256sum`` format).

Errors:
    :class:`DownloadError` (a ``RuntimeError``): no URL delivered the file (HTTP error, refused
    connection, timeout, truncated body, or an HTML page instead of the file). The message names every
    URL tried with its error, the cache path, and how to place the file there by hand.
    ``ValueError``: a sha256 mismatch of a download (which is discarded).
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import IO
from urllib.parse import urlencode, urljoin

from lipsim_tm.files import WriteError, atomic_file, atomic_write_text
from lipsim_tm.models.checkpoints.io import file_sha256

#: Environment variable that overrides the cache folder.
CACHE_ENV = "LIPSIM_CACHE_DIR"
#: Seconds a connection attempt or a read may block before the download fails.
DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20
_MAX_PAGE = 1 << 20
_MAX_CONFIRMS = 2
_PROGRESS_INTERVAL = 0.25
_USER_AGENT = "lipsim-tm (python urllib)"

_VERIFIED: dict[tuple[str, int, int], str] = {}


class DownloadError(ConnectionError, RuntimeError):
    """A file could not be downloaded; the message names the URLs, the cache path and how to place it by hand. An
    ``OSError`` (``ConnectionError``), and a ``RuntimeError`` as it was before."""


def cache_dir() -> Path:
    """The folder downloads go to: ``$LIPSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/lipsim_tm``, else
    ``~/.cache/lipsim_tm`` (read at each call; the folder may not exist yet)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lipsim_tm"


def _digest(path: Path) -> str:
    """The file's sha256, hashed once per (path, size, modification time) in a process."""
    path = path.resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = file_sha256(path)
    return _VERIFIED[key]


def check_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Raise ``ValueError`` naming ``path``, the expected and the actual digest unless the file's sha256 is
    ``expected`` (hex)."""
    path = Path(path).resolve()
    actual = _digest(path)
    if actual != expected.lower():
        raise ValueError(
            f"sha256 mismatch for {str(path)!r}: expected {expected.lower()}, got {actual}; the file is corrupted"
            " or not the right one: delete it to download it again, or place the right file there"
        )


def download_file(
    urls: Sequence[str],
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """``path``, downloaded from the first of ``urls`` that delivers it unless it already exists.

    Args:
        urls: where to get the file, tried in order (http or https; Google Drive's "can't scan for
            viruses" confirmation page is answered automatically).
        path: the target file; its folder is created if needed.
        sha256: expected hex digest, checked on the download and on a file already at ``path``;
            ``None``: nothing is checked (the digest of a download is still printed and recorded).
        progress: show bytes received on stderr; ``None``: only when stderr is a terminal.
        timeout: seconds any connection attempt or read may block.

    Raises:
        DownloadError: no URL delivered the file (see the module docstring); nothing is left behind.
        ValueError: the download's sha256 differs from ``sha256``, or ``urls`` is empty.
    """
    path = Path(path)
    if isinstance(urls, str) or not urls:
        raise ValueError(f"urls must be a non-empty sequence of URLs, got {urls!r}")
    kept = ""  # what the error says about a file already there that is downloaded again
    if path.is_file():
        expected, source = (sha256, "registered") if sha256 is not None else (_recorded_digest(path), "recorded")
        if expected is None or _digest(path) == expected.lower():
            return path
        sys.stderr.write(
            f"lipsim_tm: note: {str(path)!r} no longer has its {source} sha256 (damaged or replaced): downloading it"
            " again\n"
        )
        kept = f"\nThe file there, which does not have its {source} sha256, is kept (a download replaces it)"
        if sha256 is None:
            kept += f"; if you placed it there by hand, delete {str(_record_path(path))!r} to use it as it is"
        kept += "."
    show = _stderr_is_tty() if progress is None else progress
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            digest = _fetch(url, path, sha256=sha256, show=show, timeout=timeout)
        except WriteError:
            raise  # this machine cannot hold the file: another URL would not help
        except (OSError, http.client.HTTPException, _NotTheFileError) as error:
            if isinstance(error, urllib.error.HTTPError):
                error.close()
            failures.append(f"  {url}: {_describe(error)}")
            continue
        _record(path, url, digest, known=sha256 is not None)
        return path
    raise DownloadError(
        f"could not download {path.name!r} to {str(path)!r}:\n"
        + "\n".join(failures)
        + f"\nTo place the file by hand, download it from {urls[0]} (e.g. in a web browser) and save it as"
        f" {str(path)!r}"
        + (f" (its sha256 must be {sha256})" if sha256 is not None else "")
        + f"; the cache folder can be changed with ${CACHE_ENV}."
        + kept
    )


class _NotTheFileError(Exception):
    """The server answered with something other than the file (an HTML page, a truncated body)."""


def _stderr_is_tty() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP error {error.code} ({error.reason})"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        words = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason  # no "[Errno N]"
        return f"cannot connect ({words})"
    if isinstance(error, TimeoutError):
        return f"timed out ({error or 'no data'})"
    return f"{type(error).__name__}: {error}"


def _fetch(url: str, path: Path, *, sha256: str | None, show: bool, timeout: float) -> str:
    """Download ``url`` onto ``path`` atomically; return the hex sha256 of what was written."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    response = opener.open(urllib.request.Request(url, headers={"User-Agent": _USER_AGENT}), timeout=timeout)
    for _ in range(_MAX_CONFIRMS + 1):
        if response.headers.get_content_type() != "text/html":
            break
        with response:
            charset = response.headers.get_content_charset() or "utf-8"
            page = response.read(_MAX_PAGE).decode(charset, errors="replace")
        confirmed = drive_confirm_url(page, response.url)
        if confirmed is None:
            raise _NotTheFileError(
                "the server sent an HTML page instead of the file (for Google Drive: the file may not be"
                " shared publicly, or its download quota is exceeded; try again later or place the file by hand)"
            )
        request = urllib.request.Request(confirmed, headers={"User-Agent": _USER_AGENT})
        response = opener.open(request, timeout=timeout)
    else:
        response.close()
        raise _NotTheFileError(f"the server still sent an HTML page after {_MAX_CONFIRMS} download confirmations")
    with response:
        return _write(response, path, sha256=sha256, show=show, source=url)


def _write(response: IO[bytes], path: Path, *, sha256: str | None, show: bool, source: str) -> str:
    """Stream ``response`` onto ``path`` through :func:`~lipsim_tm.files.atomic_file` (a truncated body or a wrong
    digest leaves nothing behind); returns the hex sha256 of what was written."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    digest = hashlib.sha256()
    with atomic_file(path, "download") as handle:
        received, shown = 0, 0.0
        while chunk := response.read(_CHUNK):
            handle.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if show and time.monotonic() - shown >= _PROGRESS_INTERVAL:
                _show_progress(path.name, received, total)
                shown = time.monotonic()
        if show:
            _show_progress(path.name, received, total)
            sys.stderr.write("\n")
        if total is not None and received != total:
            raise _NotTheFileError(f"the connection closed after {received} of {total} bytes")
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise ValueError(
                f"sha256 mismatch for {source}: expected {sha256.lower()}, got {actual}; the download was discarded"
                f" and nothing was written to {str(path)!r}"
            )
    return actual


def _show_progress(name: str, received: int, total: int | None) -> None:
    text = f"{received:,} / {total:,} bytes ({100 * received / total:.0f}%)" if total else f"{received:,} bytes"
    sys.stderr.write(f"\rdownloading {name}: {text}")
    sys.stderr.flush()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _recorded_digest(path: Path) -> str | None:
    """The sha256 recorded next to ``path`` when it was downloaded (``<file>.sha256``), or None."""
    try:
        words = _record_path(path).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    return words[0].lower() if words and len(words[0]) == 64 else None


def _record(path: Path, url: str, digest: str, *, known: bool) -> None:
    """Write ``<path>.sha256`` and report the download on stderr."""
    record = _record_path(path)
    atomic_write_text(record, f"{digest}  {path.name}\n", "download record")
    check = "matches the registered sha256" if known else "no published sha256 to check it against"
    sys.stderr.write(
        f"lipsim_tm: downloaded {url} to {str(path)!r} ({path.stat().st_size:,} bytes); sha256 {digest}"
        f" ({check}; recorded in {record.name})\n"
    )


class _ConfirmPage(HTMLParser):
    """Forms (action, hidden fields) and link targets of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), []))
        elif tag == "input" and self.forms and values.get("type") == "hidden" and values.get("name"):
            self.forms[-1][1].append((values["name"], values.get("value", "")))
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"])


def drive_confirm_url(page: str, base_url: str) -> str | None:
    """The URL that confirms a Google Drive "can't scan this file for viruses" page, or ``None``.

    Handles the current page (a GET form whose hidden fields include ``confirm``, plus ``id``,
    ``export`` and ``uuid``) and the older one (a link whose query holds ``confirm=<token>``, the
    token also set as a cookie). Relative targets are resolved against ``base_url``.
    """
    parser = _ConfirmPage()
    parser.feed(page)
    parser.close()
    for action, fields in parser.forms:
        if any(name == "confirm" for name, _ in fields):
            # a GET form submits to its action with the query replaced by its fields
            target = urljoin(base_url, action).split("#", 1)[0].split("?", 1)[0]
            return f"{target}?{urlencode(fields)}"
    for link in parser.links:
        if "confirm=" in link:
            return urljoin(base_url, link)
    return None
