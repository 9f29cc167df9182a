"""A real HTTP server on 127.0.0.1 for the client and `check` tests (helpers, not tests).

It serves a folder (a site) with ETags and 304s, and can be scripted per path to answer with
errors, HTML, slow or trickling responses, in order.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from valhalla_status.models import Manifest
from valhalla_status.publishing.documents import status_document, to_json
from valhalla_status.service import default_manifest, set_backend_complete, set_pack

DAY1 = datetime(2025, 9, 20, tzinfo=timezone.utc)


def manifest(
    *,
    complete: bool = False,
    version: str = "1.0.0",
    pending: tuple[str, ...] = (),
    experimental: tuple[str, ...] = (),
) -> Manifest:
    """The default manifest (16 packs, installed) with a few things changed, at DAY1 (a
    complete backend has no pending pack)."""
    made = default_manifest(by="alice", now=DAY1)
    for pack_id in experimental:
        made = set_pack(made, pack_id, status="experimental", by="alice", now=DAY1).manifest
    if complete:
        made = set_backend_complete(made, True, by="alice", now=DAY1).manifest
    for pack_id in pending:
        made = set_pack(made, pack_id, status="pending", by="alice", now=DAY1).manifest
    system = made.system.model_copy(update={"version": version})
    return made.model_copy(update={"system": system})


def write_status(path: Path, built: Manifest) -> Path:
    """status.json of a manifest, as the site publishes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(status_document(built)), encoding="utf-8")
    return path


@dataclass
class Reply:
    """One scripted answer."""

    code: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    trickle: float = 0.0  # seconds between body bytes


@dataclass
class Server:
    root: Path
    url: str
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def script(self, path: str, *replies: Reply) -> str:
        """Answer ``path`` with these replies in order (the last one repeats); its URL."""
        self.scripts[path] = list(replies)
        return self.url + path

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, dict(self.headers.items())))
            replies = server.scripts.get(self.path)
            if replies:
                self._scripted(replies[0] if len(replies) == 1 else replies.pop(0))
                return
            target = server.root / self.path.lstrip("/")
            if not target.is_file():
                self._send(Reply(404, b"not found", "text/plain"))
                return
            body = target.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self._send(Reply(200, body), {"ETag": etag})

        def _scripted(self, reply: Reply) -> None:
            if reply.delay and server.stop.wait(reply.delay):
                return
            self._send(reply)

        def _send(self, reply: Reply, headers: dict[str, str] | None = None) -> None:
            self.send_response(reply.code)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not reply.trickle:
                self.wfile.write(reply.body)
                return
            for index in range(len(reply.body)):
                if server.stop.wait(reply.trickle):
                    return
                self.wfile.write(reply.body[index : index + 1])
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(root: Path) -> Iterator[Server]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread until the block ends."""
    state = Server(root, "")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/status.json"


@contextmanager
def timed() -> Iterator[list[float]]:
    """Measure a block's wall time: ``with timed() as took: ...; took[0]``."""
    took: list[float] = []
    start = time.monotonic()
    try:
        yield took
    finally:
        took.append(time.monotonic() - start)
