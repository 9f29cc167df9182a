"""``serve``: preview the site over HTTP, read-only, rebuilding it when its sources change.

A stdlib ``ThreadingHTTPServer`` serves the site folder (GET and HEAD only; no directory
listings; ``404.html`` for what is missing) while the main thread polls the manifest and the
templates and rebuilds on a change. Builds swap the folder atomically, so a request is answered
from the old site or the new one.

Its resources are bounded: a connection idle for :data:`IDLE_TIMEOUT` seconds is closed, at
most :data:`MAX_CONNECTIONS` are served at once (the next one gets a 503 at once and is
closed), so idle clients can never take every thread and descriptor; and a rebuild that fails
in any way is one log line while the last site is still served.
"""

from __future__ import annotations

import collections
import datetime
import email.utils
import errno
import functools
import os
import signal
import socket
import stat
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from email.message import Message
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..errors import ValhallaError
from ..publishing.headers import COMMON_HEADERS, HOST_FILES, content_type
from ..rules.formats import is_pack_id, pack_key
from ..rules.text import for_terminal
from ..storage.files import os_reason

Log = Callable[[str], None]

IDLE_TIMEOUT = 20.0
"""Seconds a connection may wait for the client's next bytes before it is closed."""
MAX_CONNECTIONS = 64
"""Connections served at once; one more is answered 503 and closed."""
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 38\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"too many connections; try again soon\r\n"
)
_LINGER = 5.0  # seconds a refused connection waits for its client to close it
_LINGERING = 16  # refused connections waiting at most; more are closed at once
_RESERVE = 48  # descriptors kept free of connections, for the rebuilds and the log

# Files a static host reads as configuration, never serves: shown as missing.
HIDDEN_NAMES = HOST_FILES
# Opened without following a symbolic link (ELOOP), and without waiting on a FIFO.
_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves the site folder read-only with the content types the site's files need.

    Only what a static host would publish is served: regular files reached without following
    any symbolic link, never a dotfile (the build's own marks) or a host configuration file
    (``_headers``). A request that cannot be understood gets its 4xx or 5xx answer, and the
    server carries on.
    """

    server: SiteServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)  # a silent client is let go

    def end_headers(self) -> None:
        # As ``_headers`` asks for every file (its policy aside); a preview is never cached.
        for name, value in COMMON_HEADERS:
            if name != "Referrer-Policy":
                self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        self.send_error(404)
        return None

    def send_head(self) -> Any:
        """Headers for the file the request names, and the file open for reading (or None
        when an error or a redirect was sent)."""
        names = self._requested_names()
        if names is None:
            return None
        try:
            found = self._open(names)
        except OSError as exc:
            self.send_error(_answer_to(exc))
            return None
        except Exception as exc:  # a fault of ours: answered all the same, and logged once
            self.server.log(f"{self.address_string()} request failed: {_described(exc)}")
            self.send_error(500)
            return None
        if found is None:  # a folder named without its slash: send the client to its URL
            path, _, query = self.path.partition("?")
            self.send_response(301)
            self.send_header("Location", path + "/" + ("?" + query if query else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        fd, path = found
        handle = os.fdopen(fd, "rb")
        try:
            info = os.fstat(fd)
            tag = entity_tag(info)
            fresh = _still_fresh(self.headers, tag, int(info.st_mtime))
            self.send_response(304 if fresh else 200)
            self.send_header("ETag", tag)
            self.send_header("Last-Modified", self.date_time_string(int(info.st_mtime)))
            if not fresh:
                self.send_header("Content-Type", content_type(path))
                self.send_header("Content-Length", str(info.st_size))
            self.end_headers()
        except BaseException:
            handle.close()
            raise
        if fresh:
            handle.close()
            return None
        return handle

    def _open(self, names: list[str]) -> tuple[int, str] | None:
        """The regular file ``names`` leads to (a folder's ``index.html``) and its path in the
        site, never through a symbolic link; None for a folder named without a trailing
        slash."""
        fd = os.open(self.directory, _FOLDER)
        for name in names[:-1]:
            fd = _open_in(fd, name, _FOLDER)
        last = names[-1] if names else ""
        if last:
            fd = _open_in(fd, last, _FILE)
            if _is_folder(fd):
                os.close(fd)
                return None
        else:
            fd, last = _open_in(fd, "index.html", _FILE), "index.html"
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FileNotFoundError(last)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd, "/".join([*names[:-1], last])

    def _requested_names(self) -> list[str] | None:
        """The path's names below the site folder ('' last for a trailing slash), or None after
        answering 400 (unreadable path) or 404 (a hidden name)."""
        target = self.path.split("?", 1)[0].split("#", 1)[0]
        if not target.startswith("/"):
            # The absolute form (``GET http://host/x``) is allowed; ``*`` and the rest are not.
            try:
                parts = urllib.parse.urlsplit(target)
            except ValueError:  # ``http://[::1/x``: a host no URL parser takes
                self.send_error(400, "Bad request target")
                return None
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                self.send_error(400, "Bad request target")
                return None
            target = parts.path or "/"
        text = urllib.parse.unquote(target, errors="surrogateescape")
        if "\0" in text:
            self.send_error(400, "Bad request target")
            return None
        pieces = text.split("/")[1:]
        names = [p for p in pieces[:-1] if p] + [pieces[-1]]
        if any(n.startswith(".") or n.casefold() in HIDDEN_NAMES for n in names):
            self.send_error(404)
            return None
        if len(names) == 2 and names[0] == "packs":
            # ``/packs/k.json`` is pack K's file, as ``pack show k`` is pack K: one rule.
            stem, dot, suffix = names[1].rpartition(".")
            if dot and suffix == "json" and is_pack_id(pack_key(stem)):
                names[1] = f"{pack_key(stem)}.json"
        return names if names != [""] else []

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # ``GET /``: no version, no headers
            self.send_error(400, "HTTP/0.9 is not supported")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # A request line too broken to name a version is answered in HTTP/1.0, so that the
        # client sees a status line (HTTP/0.9 has none).
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        body = self._page_404() if code == 404 else None
        if body is None:
            super().send_error(code, message, explain)
            return
        self.send_response(404)
        self.send_header("Content-Type", content_type("404.html"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _page_404(self) -> bytes | None:
        """The site's ``404.html``, read as any served file is (no symbolic link followed)."""
        try:
            found = self._open(["404.html"])
        except OSError:
            return None
        if found is None:
            return None
        with os.fdopen(found[0], "rb") as handle:
            return handle.read()

    def log_message(self, format: str, *args: Any) -> None:
        # The request line is the client's: it is escaped (serve's log goes through the one
        # escaping rule), so a request cannot drive the terminal the log is shown on.
        self.server.log(f"{self.address_string()} {for_terminal(format % args)}")


def entity_tag(info: os.stat_result) -> str:
    """The ``ETag`` of a file, from its inode, size and modification time (as Apache's): a
    build writes changed files anew and links unchanged ones, so the tag changes exactly when
    the file does."""
    return f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"'


def _still_fresh(headers: Message, tag: str, modified: int) -> bool:
    """Whether the client's copy is current: ``If-None-Match`` names the tag (weakly compared,
    or ``*``), or, when it is absent, ``If-Modified-Since`` is no earlier than ``modified``."""
    wanted = headers.get("If-None-Match")
    if wanted is not None:
        tags = {part.strip().removeprefix("W/") for part in wanted.split(",")}
        return "*" in tags or tag in tags
    since = headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        moment = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return modified <= moment.timestamp()


def _fitting(max_connections: int) -> int:
    """``max_connections``, fewer if the process's descriptor limit cannot hold them beside the
    refused connections and what a rebuild opens."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no such limit (Windows)
        return max_connections
    if limit == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, limit - _RESERVE - _LINGERING))


# What opening a file may meet that means the site holds no such file to publish: missing, a
# symbolic link, a file where a folder was named, not a regular file, not readable.
_NOT_THERE = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.ELOOP,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.EACCES,
        errno.EPERM,
        errno.ENXIO,
    }
)
# Out of descriptors or memory: the server is busy, not the file missing.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})


def _described(error: BaseException | None) -> str:
    return for_terminal(f"{type(error).__name__}: {error}")


def _answer_to(exc: OSError) -> int:
    """The status that answers a request whose file could not be opened for ``exc``."""
    if isinstance(exc, FileNotFoundError) or exc.errno in _NOT_THERE:
        return 404
    return 503 if exc.errno in _EXHAUSTED else 500


def _finished(request: socket.socket) -> bool:
    """Whether the client has closed its side of a refused connection (what it sent is read
    and dropped)."""
    try:
        # A client that keeps sending is left for the next round.
        return any(not request.recv(65536) for _ in range(16))
    except BlockingIOError:
        return False
    except OSError:
        return True


def _open_in(dir_fd: int, name: str, flags: int) -> int:
    """Open ``name`` in the folder ``dir_fd`` (which is closed either way)."""
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _is_folder(fd: int) -> bool:
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise


class SiteServer(ThreadingHTTPServer):
    """The HTTP server, with the log function its handlers write to, and its bounds: how long
    a connection may idle, how many are served at once."""

    daemon_threads = True
    request_queue_size = 128  # connections the system holds until they are accepted

    def __init__(
        self,
        address: tuple[str, int],
        site_dir: str,
        log: Log,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.log = log
        self.idle_timeout = idle_timeout
        self.max_connections = _fitting(max_connections)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._closing: collections.deque[tuple[float, socket.socket]] = collections.deque()
        handler = functools.partial(SiteHandler, directory=os.path.realpath(site_dir))
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, if one of the slots is free; else
        answer 503 and close it."""
        if not self._slots.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: the slot is not taken
            self._slots.release()
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            # The slot is free before the client sees the connection close.
            self._slots.release()
            self.shutdown_request(request)

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        """The quick answer to a connection over the bound: 503 and the end of the answer.

        The socket is closed later (:meth:`service_actions`), once the client has closed its
        side or :data:`_LINGER` seconds have passed: closed at once, a request arriving after
        the answer would reset the connection, and the client lose the answer."""
        try:
            request.setblocking(False)
            request.send(_BUSY)
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._closing.append((time.monotonic() + _LINGER, request))
        while len(self._closing) > _LINGERING:
            self.shutdown_request(self._closing.popleft()[1])
        self.log(f"{client_address[0]} busy: {self.max_connections} connections open; sent 503")

    def service_actions(self) -> None:
        """Close the refused connections whose client is done, or that waited long enough."""
        now = time.monotonic()
        for entry in list(self._closing):
            deadline, request = entry
            if now < deadline and not _finished(request):
                continue
            self._closing.remove(entry)
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        while self._closing:
            self.shutdown_request(self._closing.popleft()[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, never a traceback, for a request that failed in the handler; a client
        that went away is no error."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        self.log(f"{client_address[0]} request failed: {_described(error)}")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def make_server(
    site_dir: str,
    host: str,
    port: int,
    log: Log,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> SiteServer:
    """A server for ``site_dir`` bound to ``host:port`` (port 0: any free port)."""
    try:
        return SiteServer(
            (host, port),
            site_dir,
            log,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
    except OSError as exc:
        raise ValhallaError(f"cannot listen on {host}:{port}: {os_reason(exc)}") from None


def _stat_files(path: Path, found: list[tuple[str, int, int]], depth: int) -> None:
    """Add (path, mtime_ns, size) of ``path`` and, ``depth`` folders down, of what is in it."""
    try:
        info = os.stat(path)
        inside = list(os.scandir(path)) if depth and stat.S_ISDIR(info.st_mode) else []
    except OSError:
        return
    found.append((os.fspath(path), info.st_mtime_ns, info.st_size))
    for entry in inside:
        _stat_files(Path(entry.path), found, depth - 1)


class Watcher:
    """Calls ``rebuild`` when any watched file (or folder's files) changes."""

    def __init__(self, paths: list[Path], rebuild: Callable[[], None]) -> None:
        self.paths = paths
        self.rebuild = rebuild
        self.last = self.snapshot()

    def snapshot(self) -> list[tuple[str, int, int]]:
        """(path, mtime_ns, size) of every watched file, and of the files in a watched folder
        and in its subfolders (a history's); missing ones are simply absent."""
        found: list[tuple[str, int, int]] = []
        for path in self.paths:
            _stat_files(path, found, depth=2)
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
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Build, serve and rebuild on change until Ctrl-C; a failed rebuild keeps the last site.

    Connections idle for ``idle_timeout`` seconds are closed, and at most ``max_connections``
    are served at once (see :class:`SiteServer`).
    """
    from ..manifest import load_manifest
    from ..site import build_site, builtin_templates
    from ..storage.layout import history_dir

    def build() -> None:
        manifest = load_manifest(manifest_path)
        result = build_site(
            manifest,
            site_dir,
            templates_dir=templates_dir,
            base_url=base_url,
            manifest_path=manifest_path,
        )
        for line in result.leftovers:
            log(f"warning: {line}")
        log(f"{site_dir}: {'built' if result.changed else 'up to date'} ({result.files} files)")

    rebuild = guarded(build, log)
    build()
    watched = [Path(manifest_path), history_dir(manifest_path), builtin_templates()]
    if templates_dir is not None:
        watched.append(Path(templates_dir))
    watcher = Watcher(watched, rebuild)
    server = make_server(
        site_dir, host, port, log, idle_timeout=idle_timeout, max_connections=max_connections
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
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


def guarded(build: Callable[[], None], log: Log) -> Callable[[], None]:
    """``build``, run so that no failure of it ends the server: whatever it raises is one log
    line, and the last site is still served."""

    def rebuild() -> None:
        try:
            build()
        except Exception as exc:
            log(f"rebuild failed, still serving the last site: {failure(exc)}")

    return rebuild


def failure(exc: Exception) -> str:
    """Why a rebuild failed, in one line."""
    if isinstance(exc, ValhallaError):
        return "; ".join(exc.message.splitlines())
    if isinstance(exc, OSError):
        return os_reason(exc, naming_file=True)
    return f"internal error: {type(exc).__name__}: {exc}"


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
