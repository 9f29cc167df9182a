"""``serve``: the site over HTTP, read-only, with the right types; rebuilds on change; Ctrl-C."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import IO

import pytest
from conftest import Workspace, clean_env, dump, small_manifest

from valhalla_status.errors import ValhallaError
from valhalla_status.readers.serve import SiteServer, Watcher, guarded, make_server


@pytest.fixture
def served(ws: Workspace) -> Iterator[tuple[SiteServer, list[str]]]:
    """The small manifest's site, built and served on a free port; the server's log lines."""
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    log: list[str] = []
    server = make_server(str(ws.root / "site"), "127.0.0.1", 0, log.append)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server, log
    server.shutdown()
    server.server_close()


def fetch(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive) and body."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("", "text/html; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("status.json", "application/json"),
        ("packs/H.json", "application/json"),
        ("api/v2/summary.json", "application/json"),
        ("feed.xml", "application/atom+xml; charset=utf-8"),
        ("badge.svg", "image/svg+xml"),
        ("metrics.txt", "text/plain; version=0.0.4; charset=utf-8"),
        ("robots.txt", "text/plain; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_content_type(
    ws: Workspace, served: tuple[SiteServer, list[str]], path: str, content_type: str
) -> None:
    server, _ = served
    status, headers, body = fetch(server.url + path)
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body == (ws.root / "site" / (path or "index.html")).read_bytes()


@pytest.mark.parametrize(("asked", "pack_id"), [("h", "H"), ("H", "H"), ("i", "I"), ("s", "S")])
def test_a_pack_file_is_found_whatever_the_case_of_its_id(
    ws: Workspace, served: tuple[SiteServer, list[str]], asked: str, pack_id: str
) -> None:
    server, _ = served
    status, _headers, body = fetch(f"{server.url}packs/{asked}.json")
    assert status == 200
    assert body == (ws.root / "site" / "packs" / f"{pack_id}.json").read_bytes()
    assert json.loads(body)["id"] == pack_id


@pytest.mark.parametrize(
    "path", ["", "status.json", "feed.xml", "badge.svg", "metrics.txt", "packs/H.json"]
)
def test_every_file_allows_any_origin_as_headers_says(
    served: tuple[SiteServer, list[str]], path: str
) -> None:
    server, _ = served
    assert fetch(server.url + path)[1]["Access-Control-Allow-Origin"] == "*"


def fetch_with(url: str, **headers: str) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(
        url, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_request_naming_the_etag_it_was_sent_is_answered_304(
    served: tuple[SiteServer, list[str]],
) -> None:
    server, _ = served
    status, headers, body = fetch(server.url + "status.json")
    tag = headers["ETag"]
    assert status == 200 and body and tag.startswith('"') and tag.endswith('"')
    status, headers, body = fetch_with(server.url + "status.json", If_None_Match=tag)
    assert (status, body, headers["ETag"]) == (304, b"", tag)
    assert "Content-Length" not in headers or headers["Content-Length"] == "0"
    assert fetch_with(server.url + "status.json", If_None_Match=f'"x", W/{tag}')[0] == 304
    assert fetch_with(server.url + "status.json", If_None_Match="*")[0] == 304
    status, _, body = fetch_with(server.url + "status.json", If_None_Match='"other"')
    assert status == 200 and body
    assert fetch_with(server.url + "packs.json", If_None_Match=tag)[0] == 200


def test_a_request_since_the_last_change_is_answered_304(
    served: tuple[SiteServer, list[str]],
) -> None:
    server, _ = served
    modified = fetch(server.url + "index.html")[1]["Last-Modified"]
    assert fetch_with(server.url + "index.html", If_Modified_Since=modified)[0] == 304
    earlier = "Thu, 01 Jan 1970 00:00:00 GMT"
    assert fetch_with(server.url + "index.html", If_Modified_Since=earlier)[0] == 200
    assert fetch_with(server.url + "index.html", If_Modified_Since="not a date")[0] == 200
    # A tag that does not match wins over a date that does.
    status = fetch_with(
        server.url + "index.html", If_Modified_Since=modified, If_None_Match='"other"'
    )[0]
    assert status == 200


def test_a_file_changed_by_a_rebuild_gets_a_new_etag(
    ws: Workspace, served: tuple[SiteServer, list[str]]
) -> None:
    server, _ = served
    before = fetch(server.url + "status.json")[1]["ETag"]
    badge = fetch(server.url + "badge.svg")[1]["ETag"]
    assert ws.run("pack", "set", "I", "--status", "installed").exit_code == 0
    status, headers, _ = fetch_with(server.url + "status.json", If_None_Match=before)
    assert status == 200 and headers["ETag"] != before
    assert fetch_with(server.url + "badge.svg", If_None_Match=badge)[0] == 304


@pytest.mark.parametrize(
    "path",
    [
        "nope.html",
        "packs/",
        "packs/ZZ.json",
        "packs/zz.json",
        "packs/h.JSON",
        "packs/%C4%B1.json",  # dotless i: its upper case is I, but it names no pack
        "PACKS/h.json",
        "../manifest/valhalla.yaml",
    ],
)
def test_missing_paths_get_the_404_page(
    ws: Workspace, served: tuple[SiteServer, list[str]], path: str
) -> None:
    server, log = served
    status, headers, body = fetch(server.url + path)
    assert status == 404
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == (ws.root / "site/404.html").read_bytes()
    assert log[-1].startswith("127.0.0.1 ") and " 404 " in log[-1]


def test_head_sends_no_body_and_writes_are_refused(served: tuple[SiteServer, list[str]]) -> None:
    server, _ = served
    assert fetch(server.url + "status.json", "HEAD")[0] == 200
    assert fetch(server.url + "status.json", "HEAD")[2] == b""
    assert fetch(server.url + "nope", "HEAD")[2] == b""
    for method in ("POST", "PUT", "DELETE"):
        assert fetch(server.url + "status.json", method)[0] == 501


def test_watcher_rebuilds_only_on_change(ws: Workspace, tmp_path: Path) -> None:
    ws.write(small_manifest())
    templates = tmp_path / "templates"
    templates.mkdir()
    calls: list[int] = []
    watcher = Watcher([ws.manifest, templates], lambda: calls.append(1))
    assert watcher.poll() is False
    data = small_manifest()
    data["system"]["notes"] = "changed"
    ws.write(data)
    assert watcher.poll() is True
    assert watcher.poll() is False
    (templates / "_footer.html").write_text("<footer></footer>\n")
    assert watcher.poll() is True
    assert calls == [1, 1]


def test_port_in_use_is_one_clear_error(served: tuple[SiteServer, list[str]]) -> None:
    server, _ = served
    port = server.server_address[1]
    with pytest.raises(ValhallaError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: "):
        make_server(".", "127.0.0.1", port, print)


def replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in one step, so the watcher never sees half of it."""
    temp = path.with_name("incoming.yaml")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def message(stream: IO[str]) -> str:
    """The next line on stderr that is not a request log."""
    line = stream.readline()
    while line.startswith("127.0.0.1 "):
        line = stream.readline()
    return line


@pytest.mark.slow
def test_serve_command_builds_serves_rebuilds_and_stops_on_ctrl_c(ws: Workspace) -> None:
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
        assert process.stderr.readline() == "site: built (39 files)\n"
        line = process.stderr.readline()
        assert line.startswith("serving site at http://127.0.0.1:")
        assert line.endswith("/ (Ctrl-C to stop)\n")
        url = line.split(" at ")[1].split(" ")[0]
        assert json.loads(fetch(url + "status.json")[2])["notes"] is None

        data = small_manifest()
        data["system"]["notes"] = "Rebuilt by serve"
        replace(ws.manifest, dump(data))
        assert message(process.stderr) == "site: built (39 files)\n"
        assert json.loads(fetch(url + "status.json")[2])["notes"] == "Rebuilt by serve"

        replace(ws.manifest, "schema_version: [\n")
        failed = message(process.stderr)
        assert failed.startswith("rebuild failed, still serving the last site: ")
        assert json.loads(fetch(url + "status.json")[2])["notes"] == "Rebuilt by serve"

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr.read().splitlines()[-1] == "stopped"
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_a_signal_even_when_started_with_it_ignored(
    ws: Workspace, stop: signal.Signals
) -> None:
    """A background job starts with SIGINT ignored; serve must still stop cleanly."""
    ws.write(small_manifest())

    def ignore_signals() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, "-m", "valhalla_status", "serve", "--port", "0"],
        cwd=ws.root,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_signals,
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == "site: built (39 files)\n"
        assert process.stderr.readline().startswith("serving site at http://127.0.0.1:")
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
        assert process.stderr.read().splitlines()[-1] == "stopped"
    finally:
        process.kill()
        process.wait()


# --- a rebuild that fails in any way ------------------------------------------------------------

FAILURES = [
    (
        ValhallaError("manifest/valhalla.yaml:3: packs: refused"),
        "manifest/valhalla.yaml:3: packs: refused",
    ),
    (ValhallaError("first\nsecond"), "first; second"),
    (OSError(errno.EMFILE, "Too many open files"), "Too many open files"),
    (
        PermissionError(errno.EACCES, "Permission denied", "manifest"),
        "Permission denied (manifest)",
    ),
    (OSError("no reason given"), "no reason given"),
    (
        ZeroDivisionError("integer division or modulo by zero"),
        "internal error: ZeroDivisionError: integer division or modulo by zero",
    ),
    (KeyError("packs"), "internal error: KeyError: 'packs'"),
    (
        RecursionError("maximum recursion depth exceeded"),
        "internal error: RecursionError: maximum recursion depth exceeded",
    ),
    (MemoryError(), "internal error: MemoryError: "),
]


@pytest.mark.parametrize(("error", "said"), FAILURES)
def test_a_failed_rebuild_of_any_kind_is_one_log_line_and_the_watcher_goes_on(
    ws: Workspace, error: Exception, said: str
) -> None:
    ws.write(small_manifest())
    log: list[str] = []
    builds: list[int] = []

    def build() -> None:
        builds.append(1)
        if len(builds) == 1:
            raise error
        log.append("built")

    watcher = Watcher([ws.manifest], guarded(build, log.append))
    data = small_manifest()
    data["system"]["notes"] = "changed"
    ws.write(data)
    assert watcher.poll() is True
    assert watcher.poll() is False  # the failed change is not retried on every poll
    data["system"]["notes"] = "changed again"
    ws.write(data)
    assert watcher.poll() is True
    assert log == [f"rebuild failed, still serving the last site: {said}", "built"]


@pytest.mark.slow
def test_serve_keeps_serving_the_last_site_when_a_template_fails_while_rendering(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.write(small_manifest())
    templates = tmp_path / "templates"
    templates.mkdir()
    footer = templates / "_footer.html"
    footer.write_text("<footer>first</footer>\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "valhalla_status", "serve", "--port", "0", "--templates", templates],
        cwd=ws.root,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == "site: built (39 files)\n"
        url = process.stderr.readline().split(" at ")[1].split(" ")[0]
        assert b"<footer>first</footer>" in fetch(url)[2]

        footer.write_text("<footer>{{ 1 // 0 }}</footer>\n", encoding="utf-8")
        assert message(process.stderr) == (
            f"rebuild failed, still serving the last site: {footer}:1: cannot render "
            "index.html: ZeroDivisionError: integer division or modulo by zero\n"
        )
        assert fetch(url)[0] == 200 and b"<footer>first</footer>" in fetch(url)[2]

        footer.write_text("<footer>second</footer>\n", encoding="utf-8")
        assert message(process.stderr) == "site: built (39 files)\n"
        assert b"<footer>second</footer>" in fetch(url)[2]
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()
    assert "Traceback" not in process.stderr.read()
