"""A real HTTP server on 127.0.0.1 for download tests: serves files, HTTP errors, slow and truncated
answers, and both of Google Drive's download confirmation pages; records every request path."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DRIVE_UUID = "0f4c2d3e-uuid-for-tests"
OLD_DRIVE_TOKEN = "Xy_9-token"
SLOW_SECONDS = 1.5


class LocalServer(ThreadingHTTPServer):
    """Serves ``files`` (name -> bytes) under several routes and records every request path.

    Routes: ``/files/<name>``; ``/status/<code>`` (that HTTP error); ``/truncated/<name>`` (announces 100
    bytes more than it sends); ``/slow`` (answers after :data:`SLOW_SECONDS`); ``/quota`` (an HTML page
    with no confirmation); ``/drive/uc?id=<name>`` (Google Drive's current virus-scan page: a GET form to
    ``/drive/download`` with hidden ``id``, ``export``, ``confirm=t``, ``uuid``); ``/olddrive/uc?id=<name>``
    (the older page: a ``download_warning`` cookie and a link with ``confirm=<token>``, both required).
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, body: bytes, content_type: str = "application/octet-stream", length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _page(self, html: str, cookie: str | None = None) -> None:
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route, _, rest = parts.path.lstrip("/").partition("/")
        files = self.server.files
        if route == "files" and rest in files:
            self._send(files[rest])
        elif route == "status":
            self.send_error(int(rest))
        elif route == "truncated" and rest in files:
            self._send(files[rest], length=len(files[rest]) + 100)
        elif route == "slow":
            time.sleep(SLOW_SECONDS)
            with contextlib.suppress(ConnectionError):  # the client has given up by now
                self._send(b"late")
        elif route == "quota":
            self._page("<html><body><p>Too many users have viewed or downloaded this file recently.</p></body></html>")
        elif route == "drive" and rest == "uc" and query.get("id") in files:
            self._page(
                '<html><body><form id="download-form" action="/drive/download?stale=1" method="get">'
                '<input type="submit" id="uc-download-link" value="Download anyway"/>'
                f'<input type="hidden" name="id" value="{query["id"]}">'
                '<input type="hidden" name="export" value="download">'
                '<input type="hidden" name="confirm" value="t">'
                f'<input type="hidden" name="uuid" value="{DRIVE_UUID}"></form></body></html>'
            )
        elif route == "drive" and rest == "download" and query.get("id") in files:
            expected = {"id": query["id"], "export": "download", "confirm": "t", "uuid": DRIVE_UUID}
            if query == expected:
                self._send(files[query["id"]])
            else:
                self.send_error(400)
        elif route == "olddrive" and rest == "uc" and query.get("id") in files:
            if "confirm" not in query:
                link = f"/olddrive/uc?export=download&amp;confirm={OLD_DRIVE_TOKEN}&amp;id={query['id']}"
                self._page(
                    f'<html><body><a id="uc-download-link" href="{link}">Download anyway</a></body></html>',
                    cookie=f"download_warning_13058876669334088843_{query['id']}={OLD_DRIVE_TOKEN}; Path=/",
                )
            elif query["confirm"] == OLD_DRIVE_TOKEN and OLD_DRIVE_TOKEN in (self.headers.get("Cookie") or ""):
                self._send(files[query["id"]])
            else:
                self.send_error(403)
        else:
            self.send_error(404)


@contextlib.contextmanager
def serving(files: dict[str, bytes] | None = None) -> Iterator[LocalServer]:
    """A :class:`LocalServer` serving ``files``, running in a thread for the block."""
    server = LocalServer()
    server.files.update(files or {})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
