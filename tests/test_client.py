"""valhalla_status.client against files and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import semver
from hypothesis import given, settings
from hypothesis import strategies as st
from status_server import (
    Reply,
    Server,
    closed_port_url,
    manifest,
    serve,
    timed,
    write_status,
)

from valhalla_status.client import (
    InconsistentStatus,
    InvalidStatus,
    PackStatus,
    Status,
    StatusClient,
    StatusUnavailable,
    Summary,
    fetch_status,
    semver_key,
)
from valhalla_status.publishing.documents import status_document
from valhalla_status.rules.formats import summary_of


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site folder whose status.json has the backend complete and K experimental."""
    write_status(tmp_path / "site" / "status.json", manifest(complete=True, experimental=("K",)))
    return tmp_path / "site"


@pytest.fixture
def server(site: Path) -> Iterator[Server]:
    with serve(site) as running:
        yield running


def test_reads_a_file_into_typed_objects(site: Path) -> None:
    status = fetch_status(site / "status.json")
    day1 = datetime(2025, 9, 20, tzinfo=timezone.utc)
    assert (status.schema_version, status.name, status.version) == (1, "Valhalla", "1.0.0")
    assert status.description == "Valhalla professional capital markets system"
    assert (status.backend_complete, status.completed_at, status.updated_at) == (True, day1, day1)
    assert status.notes is None and status.extra == {}
    assert len(status.packs) == 16
    since = "2025-09-20T00:00:00Z"
    assert status.packs[3] == PackStatus(
        "K", "Executor Pro", "Professional", "experimental", None, since
    )
    assert status.pack("k") is status.packs[3] and status.pack("zz") is None
    assert status.summary == Summary(16, 15, 0, 0, 1)
    assert status.version_at_least("1.0.0") and not status.version_at_least("1.0.1-rc.1")


def test_status_matches_the_published_document_field_for_field(site: Path) -> None:
    document = json.loads((site / "status.json").read_text(encoding="utf-8"))
    status = Status.from_document(document)
    assert [p.__dict__ for p in status.packs] == document["packs"]
    assert status.summary.__dict__ == document["summary"]
    assert status_document(manifest(complete=True, experimental=("K",))) == document


def test_url_ending_in_slash_gets_status_json(server: Server) -> None:
    status = StatusClient(server.url + "/").fetch()
    assert status.pack("K") == PackStatus(
        "K", "Executor Pro", "Professional", "experimental", None, "2025-09-20T00:00:00Z"
    )
    assert server.paths() == ["/status.json"]
    headers = server.requests[0][1]
    assert (headers["Accept"], headers["Cache-Control"]) == ("application/json", "no-cache")


def test_etag_and_304_return_the_cached_status(server: Server, site: Path) -> None:
    client = StatusClient(server.url + "/status.json")
    first = client.fetch()
    assert "If-None-Match" not in server.requests[0][1]
    again = client.fetch()
    assert again is first
    etag = server.requests[1][1]["If-None-Match"]
    assert etag.startswith('"') and len(etag) == 18
    write_status(site / "status.json", manifest(version="1.2.0"))
    changed = client.fetch()
    assert (changed.version, changed.backend_complete) == ("1.2.0", False)
    assert server.requests[2][1]["If-None-Match"] == etag
    assert server.paths() == ["/status.json"] * 3


def test_a_500_then_200_is_retried(server: Server, site: Path) -> None:
    body = (site / "status.json").read_bytes()
    url = server.script("/flaky.json", Reply(500, b"oops", "text/plain"), Reply(200, body))
    assert StatusClient(url, backoff=0.05).fetch().version == "1.0.0"
    assert server.paths() == ["/flaky.json", "/flaky.json"]


def test_5xx_retries_are_bounded(server: Server) -> None:
    url = server.script("/down.json", Reply(503, b"", "text/plain"))
    with pytest.raises(StatusUnavailable) as caught:
        StatusClient(url, retries=2, backoff=0.05).fetch()
    assert str(caught.value) == f"HTTP 503 Service Unavailable from {url} (3 attempts)"
    assert server.paths() == ["/down.json"] * 3


def test_a_404_is_not_retried(server: Server) -> None:
    with pytest.raises(StatusUnavailable) as caught:
        StatusClient(server.url + "/nothing.json", backoff=0.05).fetch()
    assert str(caught.value) == f"HTTP 404 Not Found from {server.url}/nothing.json"
    assert server.paths() == ["/nothing.json"]


def test_closed_port_is_unavailable_after_retries() -> None:
    url = closed_port_url()
    with pytest.raises(StatusUnavailable) as caught:
        StatusClient(url, backoff=0.05).fetch()
    assert str(caught.value) == f"cannot reach {url}: connection refused (3 attempts)"


@pytest.mark.parametrize("reply", [Reply(delay=30), Reply(body=b"{" + b" " * 100, trickle=0.2)])
def test_the_timeout_bounds_the_whole_fetch(server: Server, reply: Reply) -> None:
    url = server.script("/slow.json", reply)
    with timed() as took, pytest.raises(StatusUnavailable) as caught:
        StatusClient(url, timeout=0.5).fetch()
    assert str(caught.value) == f"timed out after 0.5 s reading {url}"
    assert 0.4 < took[0] < 3.0  # honoured within a generous bound


def test_html_is_not_json(server: Server) -> None:
    url = server.script("/page", Reply(200, b"<!doctype html>\n<html>hi</html>", "text/html"))
    with pytest.raises(InvalidStatus) as caught:
        StatusClient(url).fetch()
    assert str(caught.value) == f"{url} is not JSON (it starts '<!doctype html> <html>hi</html>')"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"status": "ok"}, "not a status document (it has no schema_version)"),
        ([1, 2], "not a status document (it is an array)"),
        ({"schema_version": 2}, "unknown schema_version 2 (this client reads 1)"),
        ({"schema_version": "1"}, "unknown schema_version '1' (this client reads 1)"),
        ({"schema_version": True}, "unknown schema_version True (this client reads 1)"),
    ],
)
def test_not_a_status_document(server: Server, document: object, message: str) -> None:
    url = server.script("/other.json", Reply(200, json.dumps(document).encode()))
    with pytest.raises(InvalidStatus) as caught:
        StatusClient(url).fetch()
    assert str(caught.value) == f"{url}: {message}"
    assert server.paths() == ["/other.json"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("packs",), None, "packs: expected an array, got null"),
        (("packs", 0, "status"), "gone", "packs[0].status: 'gone' is not a status"),
        (("packs", 1), "H", "packs[1]: expected an object, got a string"),
        (
            ("summary", "total_packs"),
            True,
            "summary.total_packs: expected an integer, got a boolean",
        ),
        (("version",), "1.0", "version: '1.0' is not a SemVer version"),
        (("updated_at",), "yesterday", "updated_at: 'yesterday' is not an RFC 3339 timestamp"),
        (("backend_complete",), "yes", "backend_complete: expected a boolean, got a string"),
        # The rules the answers rest on: which pack an id names, since when it is complete.
        (("packs", 1, "id"), "H", "packs[1].id: duplicate id 'H' (also packs[0])"),
        (
            ("packs", 1, "id"),
            "i",
            "packs[1].id: 'i' is not a valid pack id: 1–32 characters "
            "of A-Z, 0-9, _ and -, starting with a letter",
        ),
        (
            ("packs", 2, "id"),
            "../../x",
            "packs[2].id: '../../x' is not a valid pack id: 1–32 "
            "characters of A-Z, 0-9, _ and -, starting with a letter",
        ),
        (("completed_at",), None, "completed_at: must be set when backend_complete is true"),
        (("completed_at",), "2999-01-01T00:00:00Z", "completed_at: is after updated_at"),
        (("backend_complete",), False, "completed_at: must be null when backend_complete is false"),
        (("summary", "installed_packs"), 3, "summary.installed_packs: 3, but packs holds 15"),
        (("summary", "total_packs"), 17, "summary.total_packs: 17, but packs holds 16"),
    ],
)
def test_invalid_fields_are_named(
    site: Path, path: tuple[str | int, ...], value: object, message: str
) -> None:
    document = json.loads((site / "status.json").read_text(encoding="utf-8"))
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(InvalidStatus) as caught:
        Status.from_document(document)
    assert str(caught.value) == f"not a valid status document: {message}"


def test_a_complete_backend_with_pending_packs_is_an_invalid_document(
    site: Path, server: Server
) -> None:
    document = json.loads((site / "status.json").read_text(encoding="utf-8"))
    assert document["backend_complete"] is True
    for index in (3, 4):  # K and L
        document["packs"][index]["status"] = "pending"
    inconsistent = (
        "the backend is complete while packs K, L are pending: the document is inconsistent"
    )
    with pytest.raises(InconsistentStatus) as caught:
        Status.from_document(document)
    assert str(caught.value) == inconsistent
    assert isinstance(caught.value, InvalidStatus)  # what callers already catch
    (site / "status.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InvalidStatus) as read:
        fetch_status(site / "status.json")
    assert str(read.value) == f"{site}/status.json: {inconsistent}"
    with pytest.raises(InvalidStatus) as fetched:
        StatusClient(server.url + "/").fetch()
    assert str(fetched.value) == f"{server.url}/status.json: {inconsistent}"
    document["backend_complete"], document["completed_at"] = False, None
    document["summary"] = summary_of(pack["status"] for pack in document["packs"])
    pack = Status.from_document(document).pack("K")  # in development: pending is fine
    assert pack is not None and pack.status == "pending"


def test_missing_file_and_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(StatusUnavailable) as caught:
        fetch_status(tmp_path / "status.json")
    assert str(caught.value) == f"cannot read {tmp_path}/status.json: No such file or directory"
    with pytest.raises(ValueError, match="only http:// and https:// URLs are supported"):
        StatusClient("ftp://example.org/status.json")
    with pytest.raises(ValueError, match="timeout must be positive"):
        StatusClient("status.json", timeout=0)


@pytest.mark.parametrize(
    ("source", "is_url"),
    [
        ("http://example.org/", True),
        ("HTTPS://example.org/status.json", True),
        ("git+ssh://host/x", True),
        ("a1.b-c+d://x", True),
        ("status.json", False),
        ("site/status.json", False),
        ("./http://x", False),  # a folder named "http:" is a path
        ("1http://x", False),
        ("://x", False),
        ("ab:c://x", False),
        ("é://x", False),
        ("a b://x", False),
        ("C:\\site\\status.json", False),
        ("http:/x", False),
    ],
)
def test_a_source_is_a_url_exactly_when_it_starts_with_a_scheme(source: str, is_url: bool) -> None:
    if is_url and not source.lower().startswith(("http://", "https://")):
        with pytest.raises(ValueError, match="only http:// and https:// URLs are supported"):
            StatusClient(source)
        return
    client = StatusClient(source)
    assert client.is_url is is_url
    assert client.source == source + ("status.json" if source.endswith("/") else "")


# (a URL with user information, as the refusal shows it): the password, or a user name that
# stands alone (often a token), is never shown.
USER_INFORMATION = [
    ("http://u:secret@127.0.0.1:{port}/", "http://u:***@127.0.0.1:{port}/"),
    (
        "https://user:se:cret@127.0.0.1:{port}/status.json",
        "https://user:***@127.0.0.1:{port}/status.json",
    ),
    ("http://secret@127.0.0.1:{port}/", "http://***@127.0.0.1:{port}/"),
    ("HTTP://U:s%40secret@127.0.0.1:{port}", "HTTP://U:***@127.0.0.1:{port}"),
    ("http://u:p@secret@127.0.0.1:{port}/", "http://u:***@127.0.0.1:{port}/"),
    ("http://:secret@127.0.0.1:{port}/", "http://:***@127.0.0.1:{port}/"),
    ("http://u:secret@127.0.0.1:{port}?next=/a@b", "http://u:***@127.0.0.1:{port}?next=/a@b"),
    ("http://@127.0.0.1:{port}/", "http://***@127.0.0.1:{port}/"),
]


@pytest.mark.parametrize(("url", "shown"), USER_INFORMATION)
def test_a_url_with_user_information_is_refused_at_once_without_showing_the_password(
    url: str, shown: str
) -> None:
    from click.testing import CliRunner
    from test_outside_input import listener

    from valhalla_status.cli import main
    from valhalla_status.client import InvalidArgument

    with listener() as (port, connected):
        url, shown = url.format(port=port), shown.format(port=port)
        message = (
            f"{shown}: user information in the URL is not supported (the client sends no "
            "credentials); give the URL without it"
        )
        with pytest.raises(InvalidArgument) as caught:
            StatusClient(url)
        assert str(caught.value) == message
        for options in ([], ["--json"]):
            result = CliRunner().invoke(main, ["check", "--url", url, *options])
            assert (result.exit_code, result.stdout, result.stderr) == (
                1,
                "",
                f"error: {message}\n",
            )
        assert not connected()


def test_a_redirect_to_a_url_with_user_information_is_refused_without_showing_it() -> None:
    from click.testing import CliRunner
    from test_outside_input import listener, redirecting

    from valhalla_status.cli import main

    with listener() as (port, connected), redirecting(b"{}") as url:
        target = f"http://u:secret@127.0.0.1:{port}/status.json"
        result = CliRunner().invoke(main, ["check", "--url", f"{url}/go?to={target}"])
        assert (result.exit_code, result.stdout) == (3, "")
        assert result.stderr == (
            f"error: HTTP 302 redirect to http://u:***@127.0.0.1:{port}/status.json: a redirect "
            f"to a URL with user information is not followed (from {url}/go?to={target})\n"
        )
        assert not connected()


def test_importing_the_client_loads_only_the_standard_library() -> None:
    code = (
        "import sys, valhalla_status.client\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'yaml', 'jinja2', 'click', 'semver')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


# --- SemVer precedence -------------------------------------------------------------------------


def test_semver_precedence_of_the_spec_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1+build.5",
        "2.0.0",
        "10.0.0",
    ]
    assert sorted(ordered, key=semver_key) == ordered
    assert semver_key("1.0.0+a") == semver_key("1.0.0+b")
    with pytest.raises(ValueError) as caught:
        semver_key("01.0.0")
    assert str(caught.value) == "'01.0.0' is not a SemVer 2.0.0 version (like 1.2.3)"


_ident = st.one_of(st.integers(0, 30).map(str), st.sampled_from(["a", "b", "rc", "alpha", "x-1"]))
_version = st.builds(
    lambda core, pre: ".".join(map(str, core)) + (f"-{'.'.join(pre)}" if pre else ""),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    st.lists(_ident, max_size=3),
)


@settings(deadline=None)  # the CPU is shared; a slow example is not a wrong one
@given(_version, _version)
def test_semver_precedence_agrees_with_the_semver_library(a: str, b: str) -> None:
    expected = semver.Version.parse(a).compare(b)
    assert (semver_key(a) > semver_key(b)) - (semver_key(a) < semver_key(b)) == expected
