"""``serve``: preview the site over HTTP, read-only, rebuilding it when its sources change.

A stdlib ``ThreadingHTTPServer`` serves the site folder (GET and HEAD only; no directory
listings; ``404.html`` for what is missing) while the main thread polls the manifest and the
templates and rebuilds on a change. Builds swap the folder atomically, so a request is answered
from the old site or the new one.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .errors import ValhallaError

Log = Callable[[str], None]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/atom+xml; charset=utf-8",
    ".svg": "image/svg+xml",
    "": "text/plain; charset=utf-8",
}


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves the site folder read-only with the content types the site's files need."""

    extensions_map = CONTENT_TYPES
    server: SiteServer

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        if self.path.split("?", 1)[0].endswith(".json"):
            self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        self.send_error(404)
        return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", CONTENT_TYPES[".html"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line is the client's: escape control characters (as the stdlib's own
        # log_message does), so a request cannot drive the terminal the log is shown on.
        message = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in format % args)
        self.server.log(f"{self.address_string()} {message}")


class SiteServer(ThreadingHTTPServer):
    """The HTTP server, with the log function its handlers write to."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], site_dir: str, log: Log) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.log = log
        handler = functools.partial(SiteHandler, directory=os.path.realpath(site_dir))
        super().__init__(address, handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def make_server(site_dir: str, host: str, port: int, log: Log) -> SiteServer:
    """A server for ``site_dir`` bound to ``host:port`` (port 0: any free port)."""
    try:
        return SiteServer((host, port), site_dir, log)
    except OSError as exc:
        raise ValhallaError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class Watcher:
    """Calls ``rebuild`` when any watched file (or folder's files) changes."""

    def __init__(self, paths: list[Path], rebuild: Callable[[], None]) -> None:
        self.paths = paths
        self.rebuild = rebuild
        self.last = self.snapshot()

    def snapshot(self) -> list[tuple[str, int, int]]:
        """(path, mtime_ns, size) of every watched file; missing ones are simply absent."""
        found = []
        for path in self.paths:
            try:
                entries = list(os.scandir(path)) if path.is_dir() else [path]
            except OSError:
                continue
            for entry in entries:
                try:
                    info = os.stat(entry)
                except OSError:
                    continue
                found.append((os.fspath(entry), info.st_mtime_ns, info.st_size))
        return sorted(found)

    def poll(self) -> bool:
        """Rebuild if something changed since the last poll; True if it did."""
        now = self.snapshot()
        if now == self.last:
            return False
        self.last = now
        self.rebuild()
        return True


def serve_site(
    manifest_path: str,
    site_dir: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    templates_dir: str | None = None,
    base_url: str | None = None,
    log: Log,
    interval: float = 0.5,
) -> None:
    """Build, serve and rebuild on change until Ctrl-C; a failed rebuild keeps the last site."""
    from .manifest import load_manifest
    from .site import build_site, builtin_templates

    def build() -> None:
        manifest = load_manifest(manifest_path)
        result = build_site(manifest, site_dir, templates_dir=templates_dir, base_url=base_url)
        log(f"{site_dir}: {'built' if result.changed else 'up to date'} ({result.files} files)")

    def rebuild() -> None:
        try:
            build()
        except ValhallaError as exc:
            log(f"rebuild failed, still serving the last site: {exc.format_message()}")

    build()
    watched = [Path(manifest_path), builtin_templates()]
    if templates_dir is not None:
        watched.append(Path(templates_dir))
    watcher = Watcher(watched, rebuild)
    server = make_server(site_dir, host, port, log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    restore = _stop_on_signals()
    try:
        log(f"serving {site_dir} at {server.url} (Ctrl-C to stop)")
        while True:
            time.sleep(interval)
            watcher.poll()
    except KeyboardInterrupt:
        log("stopped")
    finally:
        restore()
        server.shutdown()
        server.server_close()


def _stop_on_signals() -> Callable[[], None]:
    """Stop on SIGINT and SIGTERM even when started with them ignored (as a background job
    is): returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore
