"""`serve` against hostile requests and a tampered site folder.

A request it cannot understand gets its 4xx or 5xx answer and the server keeps serving, with one
log line and never a traceback; only regular files reached without following a symbolic link
are served, and never a dotfile or the host configuration file ``_headers``.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Workspace, clean_env, small_manifest

from valhalla_status.readers import serve
from valhalla_status.readers.serve import SiteServer, make_server
from valhalla_status.rules.text import for_terminal


@pytest.fixture
def served(
    ws: Workspace, capfd: pytest.CaptureFixture[str]
) -> Iterator[tuple[SiteServer, list[str], Path]]:
    """The small manifest's site, served on a free port: the server, its log, the site."""
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    log: list[str] = []
    site = ws.root / "site"
    server = make_server(str(site), "127.0.0.1", 0, log.append)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server, log, site
    server.shutdown()
    server.server_close()
    # Nothing reached the process's stderr behind the log's back (a traceback would).
    assert "Traceback" not in capfd.readouterr().err


def exchange(server: SiteServer | int, request: bytes) -> bytes:
    """Send raw bytes to a server (or a port on 127.0.0.1) and read the whole answer."""
    port = server if isinstance(server, int) else server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def get(server: SiteServer, path: str) -> tuple[int, bytes]:
    answer = exchange(server, f"GET {path} HTTP/1.0\r\n\r\n".encode())
    return status_of(answer), answer.partition(b"\r\n\r\n")[2]


MALFORMED = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\n\r\n", 505),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.x\r\n\r\n", 400),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /%00 HTTP/1.1\r\n\r\n", 400),
    (b"GET /status.json%00.html HTTP/1.1\r\n\r\n", 400),
    (b"GET /packs/%00/x HTTP/1.1\r\n\r\n", 400),
    (b"GET * HTTP/1.1\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),
    (b"GET ftp://x/status.json HTTP/1.1\r\n\r\n", 400),
    (b"GET status.json HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    (b"GET /\x1b]0;PWNED\x07 HTTP/1.1\r\n\r\n", 404),
    (b"GET /%ff%fe HTTP/1.1\r\n\r\n", 404),
    (b"GET /\xff\xfe HTTP/1.1\r\n\r\n", 404),
    (b"DELETE /status.json HTTP/1.1\r\n\r\n", 501),
    (b"GET /status.json/ HTTP/1.1\r\n\r\n", 404),
]


@pytest.mark.parametrize(("request_bytes", "code"), MALFORMED)
def test_a_malformed_request_gets_its_error_and_the_server_keeps_serving(
    served: tuple[SiteServer, list[str], Path], request_bytes: bytes, code: int
) -> None:
    server, log, _site = served
    assert status_of(exchange(server, request_bytes)) == code
    assert get(server, "/status.json")[0] == 200
    assert get(server, "/")[0] == 200
    assert not any("Traceback" in line or "\n" in line for line in log)
    assert all(c.isprintable() for line in log for c in line)


def test_an_unfinished_request_harms_nothing(served: tuple[SiteServer, list[str], Path]) -> None:
    server, _log, _site = served
    for partial in (b"", b"GET", b"GET / HTTP/1.1\r\nHost: x"):
        exchange(server, partial)
    assert get(server, "/status.json")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/packs/etc/passwd",
        "/packs/etc",
        "/packs/etc/",
        "/etc-link/passwd",
        "/leak.json",
        "/packs/leak.json",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/../../../etc/passwd",
        "/packs/..%2f..%2f..%2fetc%2fpasswd",
    ],
)
def test_serve_never_follows_a_symbolic_link_inside_the_site(
    served: tuple[SiteServer, list[str], Path], path: str
) -> None:
    server, _log, site = served
    os.symlink("/etc", site / "packs" / "etc")
    os.symlink("/etc", site / "etc-link")
    os.symlink("/etc/passwd", site / "leak.json")
    os.symlink("/etc/passwd", site / "packs" / "leak.json")
    code, body = get(server, path)
    assert code == 404
    assert b"root:" not in body


def test_a_symbolic_link_in_place_of_a_site_file_is_not_followed(
    served: tuple[SiteServer, list[str], Path],
) -> None:
    server, _log, site = served
    for name in ("index.html", "404.html"):
        (site / name).unlink()
        os.symlink("/etc/passwd", site / name)
    code, body = get(server, "/")
    assert code == 404 and b"root:" not in body
    code, body = get(server, "/missing")
    assert code == 404 and b"root:" not in body


def test_a_fifo_planted_in_the_site_is_a_404_not_a_hang(
    served: tuple[SiteServer, list[str], Path],
) -> None:
    server, _log, site = served
    os.mkfifo(site / "pipe.json")
    assert get(server, "/pipe.json")[0] == 404
    assert get(server, "/status.json")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/_headers",
        "/_HEADERS",
        "/%5fheaders",
        "/_redirects",
        "/.valhalla-site",
        "/.mark",
        "/packs/.hidden.json",
        "/.git/config",
        "/%2egit/config",
    ],
)
def test_host_configuration_and_dotfiles_are_never_served(
    served: tuple[SiteServer, list[str], Path], path: str
) -> None:
    server, _log, site = served
    assert (site / "_headers").is_file()
    for name in (".valhalla-site", ".mark", "packs/.hidden.json", "_redirects"):
        (site / name).write_text("secret\n")
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text("secret\n")
    code, body = get(server, path)
    assert code == 404
    assert b"secret" not in body and b"Cache-Control" not in body


def test_folders_still_redirect_and_serve_their_index(
    served: tuple[SiteServer, list[str], Path],
) -> None:
    server, _log, site = served
    (site / "docs").mkdir()
    (site / "docs" / "index.html").write_text("<p>docs</p>\n")
    answer = exchange(server, b"GET /docs?x=1 HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 301
    assert b"\r\nLocation: /docs/?x=1\r\n" in answer
    assert get(server, "/docs/") == (200, b"<p>docs</p>\n")
    assert get(server, "/packs/")[0] == 404  # no listings
    assert get(server, "http://example.org/status.json")[0] == 200


@pytest.mark.slow
def test_the_serve_command_survives_malformed_requests_without_a_traceback(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    process = subprocess.Popen(
        [sys.executable, "-m", "valhalla_status", "serve", "--port", "0"],
        cwd=ws.root,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        process.stderr.readline()  # built
        line = process.stderr.readline()
        port = int(line.split(" at ")[1].split(" ")[0].rstrip("/").rsplit(":", 1)[1])
        for request_bytes, code in MALFORMED:
            assert status_of(exchange(port, request_bytes)) == code
        answer = exchange(port, b"GET /status.json HTTP/1.0\r\n\r\n")
        assert status_of(answer) == 200
        process.terminate()
        assert process.wait(timeout=30) == 0
        log = process.stderr.read()
        assert "Traceback" not in log
        assert "\x1b" not in log and "\\x1b]0;PWNED\\x07" in log
    finally:
        process.kill()
        process.wait()


# --- what opening a file may meet -----------------------------------------------------------

OPEN_FAILURES = [
    (OSError(errno.ENOENT, "No such file or directory"), 404),
    (OSError(errno.ELOOP, "Too many levels of symbolic links"), 404),
    (OSError(errno.ENOTDIR, "Not a directory"), 404),
    (OSError(errno.EACCES, "Permission denied"), 404),
    (OSError(errno.EMFILE, "Too many open files"), 503),
    (OSError(errno.ENFILE, "Too many open files in system"), 503),
    (OSError(errno.ENOMEM, "Cannot allocate memory"), 503),
    (OSError(errno.EIO, "Input/output error"), 500),
    (OSError(errno.ESTALE, "Stale file handle"), 500),
    (ValueError("embedded null byte"), 500),
    (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), 500),
    (RuntimeError("anything else"), 500),
]


@pytest.mark.parametrize(("error", "code"), OPEN_FAILURES)
def test_every_failure_to_open_a_file_is_answered_and_the_server_keeps_serving(
    served: tuple[SiteServer, list[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    code: int,
) -> None:
    server, log, _site = served
    real_open_in = serve._open_in

    def open_in(dir_fd: int, name: str, flags: int) -> int:
        if name == "status.json":
            os.close(dir_fd)
            raise error
        return real_open_in(dir_fd, name, flags)

    monkeypatch.setattr(serve, "_open_in", open_in)
    assert get(server, "/status.json")[0] == code
    assert get(server, "/")[0] == 200
    failed = [line for line in log if "request failed" in line]
    if isinstance(error, OSError):
        assert failed == []
    else:
        assert failed == [
            f"127.0.0.1 request failed: {type(error).__name__}: {for_terminal(str(error))}"
        ]


# --- idle and excess connections --------------------------------------------------------------


@pytest.fixture
def bounded(ws: Workspace) -> Iterator[Callable[..., tuple[SiteServer, list[str]]]]:
    """Serve the small manifest's site with the bounds given; every server is shut down."""
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    servers: list[SiteServer] = []

    def start(**bounds: float) -> tuple[SiteServer, list[str]]:
        log: list[str] = []
        server = make_server(str(ws.root / "site"), "127.0.0.1", 0, log.append, **bounds)  # type: ignore[arg-type]
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server, log

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def connect(server: SiteServer, first: bytes = b"") -> socket.socket:
    """A connection that sends ``first`` (maybe nothing) and then stays open, silent."""
    sock = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=30)
    if first:
        sock.sendall(first)
    return sock


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


# What an idle client may have sent before it went silent.
IDLE_STARTS = [b"", b"G", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n"]


@pytest.mark.parametrize("first", IDLE_STARTS)
def test_an_idle_connection_is_closed_and_a_request_is_answered_after_it(
    bounded: Callable[..., tuple[SiteServer, list[str]]], first: bytes
) -> None:
    server, log = bounded(idle_timeout=0.3, max_connections=4)
    idle = [connect(server, first) for _ in range(4)]  # every slot taken by a silent client
    for sock in idle:
        with sock:
            assert read_all(sock) == b""  # closed by the server
    assert get(server, "/status.json")[0] == 200
    timed_out = [line for line in log if "Request timed out" in line]
    assert timed_out == ["127.0.0.1 Request timed out: TimeoutError('timed out')"] * 4


def test_connections_over_the_bound_get_503_at_once_and_the_server_recovers(
    bounded: Callable[..., tuple[SiteServer, list[str]]],
) -> None:
    server, log = bounded(idle_timeout=60, max_connections=3)
    idle = [connect(server) for _ in range(3)]
    for _ in range(5):  # each refused at once, whatever it sends
        code, body = get(server, "/status.json")
        assert (code, body) == (503, b"too many connections; try again soon\r\n")
    assert log[-1] == "127.0.0.1 busy: 3 connections open; sent 503"
    for sock in idle:  # a client that goes away frees its slot before it sees the close
        sock.sendall(b"GET /status.json HTTP/1.0\r\n\r\n")
        assert status_of(read_all(sock)) == 200
        sock.close()
    for _ in range(5):
        assert get(server, "/status.json")[0] == 200


@pytest.mark.slow
def test_more_idle_clients_than_the_bound_never_stop_the_server(
    bounded: Callable[..., tuple[SiteServer, list[str]]],
) -> None:
    """The hostile case in small: many more silent clients than the server serves at once."""
    server, _log = bounded(idle_timeout=3, max_connections=8)
    idle = [connect(server) for _ in range(40)]
    answers = [read_all(sock) for sock in idle]  # closed by time-out, or refused with 503
    assert answers[:8] == [b""] * 8
    assert [status_of(a) for a in answers[8:]] == [503] * 32
    for sock in idle:
        sock.close()
    assert get(server, "/status.json")[0] == 200


@pytest.mark.slow
def test_the_serve_command_outlives_more_idle_clients_than_it_has_descriptors(
    ws: Workspace,
) -> None:
    """300 silent clients against a real ``serve`` allowed 128 descriptors: it answers each
    (503 over its bound), still rebuilds on a change, and serves again once they leave."""
    import resource

    ws.write(small_manifest())

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    process = subprocess.Popen(
        [sys.executable, "-m", "valhalla_status", "serve", "--port", "0"],
        cwd=ws.root,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=few_descriptors,
    )
    idle: list[socket.socket] = []
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == "site: built (39 files)\n"
        line = process.stderr.readline()
        port = int(line.split(" at ")[1].split(" ")[0].rstrip("/").rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(300)]
        assert status_of(exchange(port, b"GET /status.json HTTP/1.0\r\n\r\n")) == 503
        ws.write(ws.manifest.read_text(encoding="utf-8").replace("notes: null", "notes: flood"))
        line = process.stderr.readline()
        while "busy" in line:
            line = process.stderr.readline()
        assert line == "site: built (39 files)\n"
        for sock in idle:
            sock.close()
        answer = b""
        for _ in range(200):  # the 64 served ones end as the server reads their close
            answer = exchange(port, b"GET /status.json HTTP/1.0\r\n\r\n")
            if status_of(answer) == 200:
                break
        assert status_of(answer) == 200 and b'"notes": "flood"' in answer
        assert process.poll() is None
    finally:
        for sock in idle:
            sock.close()
        process.kill()
        process.wait()
    assert "Traceback" not in process.stderr.read()


def test_the_bounds_default_to_a_size_a_descriptor_limit_can_hold() -> None:
    from valhalla_status.readers import serve

    assert (serve.IDLE_TIMEOUT, serve.MAX_CONNECTIONS) == (20.0, 64)
