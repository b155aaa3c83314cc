"""The test CSMS's file server on localhost: GetLog uploads (PUT/POST) and firmware downloads
(GET), as a CSMS's back office would offer them.

    async with FileServer() as files:
        files.serve("/fw/pysecc-0.2.pkg", package_bytes)      # GET returns it
        url = files.url("/logs/")                             # PUT/POST stores under the path
        ...
        files.uploads["/logs/CS1-SecurityLog-7.jsonl.gz"]     # what arrived

``truncate_after`` cuts a GET response short (a broken download); ``fail_uploads`` answers
uploads with HTTP 500. A plain ``http.server`` in a thread, so it does not share the test's
event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FileServer:
    host: str = "127.0.0.1"
    files: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)   # (method, path)
    truncate_after: dict[str, int] = field(default_factory=dict)    # path -> bytes sent
    fail_uploads: bool = False
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url(path)

    def start(self) -> FileServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests.append(("GET", self.path))
                data = owner.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:owner.truncate_after.get(self.path, len(data))])

            def _store(self) -> None:
                owner.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if owner.fail_uploads:
                    self.send_error(500)
                    return
                owner.uploads[self.path] = body
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = _store    # noqa: N815
            do_POST = _store   # noqa: N815

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="test-file-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    async def __aenter__(self) -> FileServer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
