"""`check`: ready / not ready / unavailable, from files and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from status_server import Reply, Server, closed_port_url, manifest, serve, timed, write_status

from valhalla_status.cli import main
from valhalla_status.client import StatusClient
from valhalla_status.publishing.documents import status_document, to_json

READY = "ready: Valhalla 1.0.0: backend complete since 2025-09-20 00:00 UTC\n"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd: a folder with no site yet."""
    for var in ("VALHALLA_MANIFEST", "VALHALLA_SITE", "VALHALLA_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def server(here: Path) -> Iterator[Server]:
    with serve(here / "site") as running:
        yield running


def check(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def publish(
    here: Path, *, complete: bool = False, version: str = "1.0.0", pending: tuple[str, ...] = ()
) -> Path:
    built = manifest(complete=complete, version=version, pending=pending)
    return write_status(here / "site" / "status.json", built)


# --- ready and not ready ------------------------------------------------------------------------


def test_default_means_backend_complete(here: Path) -> None:
    publish(here, complete=True)
    result = check()
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", READY)
    publish(here)
    result = check()
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "not ready: Valhalla 1.0.0 (site/status.json)\n  - backend is in development\n",
    )


def test_default_source_follows_site_option(here: Path) -> None:
    write_status(here / "out" / "status.json", manifest(complete=True))
    result = CliRunner().invoke(main, ["--site", "out", "check"])
    assert (result.exit_code, result.stderr) == (0, READY)


def test_with_requirements_exactly_those_are_checked(here: Path) -> None:
    publish(here, version="1.2.0", pending=("K",))
    result = check("--min-version", "1.2.0", "--require-installed", "h")
    assert (result.exit_code, result.stderr) == (
        0,
        "ready: Valhalla 1.2.0: version 1.2.0 ≥ 1.2.0; pack H Analyst Essentials: installed\n",
    )


def test_every_unmet_condition_is_named(here: Path) -> None:
    publish(here, version="1.2.0-rc.1", pending=("K", "T"))
    result = check(
        "--require-complete",
        "--min-version",
        "1.2.0",
        "--require-installed",
        "h,k",
        "--require-installed",
        "zz",
        "--require-installed",
        "t",
        "S",
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "not ready: Valhalla 1.2.0-rc.1 (site/status.json)\n"
        "  - backend is in development\n"
        "  - version 1.2.0-rc.1 is lower than 1.2.0\n"
        "  - pack K Executor Pro: pending, not installed\n"
        "  - no pack ZZ\n"
        "  - pack T Security Protocol: pending, not installed\n"
    )
    spaced = check("--require-installed", "k", "zz", "--require-installed", "H,t")
    assert spaced.exit_code == 1
    assert spaced.stderr.splitlines()[1:] == [
        "  - pack K Executor Pro: pending, not installed",
        "  - pack T Security Protocol: pending, not installed",
        "  - no pack ZZ",
    ]


def test_all_installed(here: Path) -> None:
    publish(here, pending=("K", "W"))
    result = check("--all-installed")
    assert (result.exit_code, result.stderr) == (
        1,
        "not ready: Valhalla 1.0.0 (site/status.json)\n"
        "  - pack K Executor Pro: pending, not installed\n"
        "  - pack W System Completion Metadata: pending, not installed\n",
    )
    publish(here)
    result = check("--all-installed")
    assert (result.exit_code, result.stderr) == (
        0,
        "ready: Valhalla 1.0.0: all 16 packs installed\n",
    )


def test_json_result_on_stdout_message_on_stderr(here: Path) -> None:
    publish(here, pending=("K",))
    result = check("--json", "--min-version", "0.9.0", "--require-installed", "K")
    assert result.exit_code == 1
    assert result.stderr.startswith("not ready: ")
    assert json.loads(result.stdout) == {
        "ready": False,
        "source": "site/status.json",
        "name": "Valhalla",
        "version": "1.0.0",
        "backend_complete": False,
        "updated_at": "2025-09-20T00:00:00Z",
        "completed_at": None,
        "verified": None,
        "conditions": [
            {"condition": "min_version", "met": True, "detail": "version 1.0.0 ≥ 0.9.0"},
            {
                "condition": "installed:K",
                "met": False,
                "detail": "pack K Executor Pro: pending, not installed",
            },
        ],
        "unmet": ["pack K Executor Pro: pending, not installed"],
    }


# --- over HTTP ----------------------------------------------------------------------------------


def test_url_ready_and_not_ready(here: Path, server: Server) -> None:
    publish(here, complete=True)
    result = check("--url", server.url + "/")
    assert (result.exit_code, result.stderr) == (0, READY)
    publish(here)
    result = check("--url", server.url + "/status.json", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["unmet"] == ["backend is in development"]
    assert server.paths() == ["/status.json", "/status.json"]


def test_a_500_then_200_is_retried(here: Path, server: Server) -> None:
    body = publish(here, complete=True).read_bytes()
    url = server.script("/flaky/status.json", Reply(500, b"", "text/plain"), Reply(200, body))
    result = check("--url", url)
    assert (result.exit_code, result.stderr) == (0, READY)
    assert server.paths() == ["/flaky/status.json"] * 2


def unavailable(result: Result) -> str:
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    return result.stderr.rstrip("\n")


def test_unreachable_server() -> None:
    url = closed_port_url()
    line = unavailable(check("--url", url, "--timeout", "5"))
    assert line == f"error: cannot reach {url}: connection refused (3 attempts)"


def test_slow_server_times_out_within_the_limit(here: Path, server: Server) -> None:
    url = server.script("/slow/status.json", Reply(delay=30))
    with timed() as took:
        line = unavailable(check("--url", url, "--timeout", "0.5"))
    assert line == f"error: timed out after 0.5 s reading {url}"
    assert 0.4 < took[0] < 3.0  # honoured within a generous bound


def test_html_instead_of_json(here: Path, server: Server) -> None:
    page = b"<!DOCTYPE html>\n<html><body>It works</body></html>"
    server.script("/status.json", Reply(200, page, "text/html"))
    line = unavailable(check("--url", server.url + "/"))
    assert line == (
        f"error: {server.url}/status.json is not JSON "
        "(it starts '<!DOCTYPE html> <html><body>It works</bo')"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"status": "ok"}', "not a status document (it has no schema_version)"),
        (
            b'{"schema_version": 2, "name": "Valhalla"}',
            "unknown schema_version 2 (this client reads 1)",
        ),
        (b'{"schema_version": 1}', "not a valid status document: packs: missing"),
    ],
)
def test_invalid_documents(here: Path, server: Server, body: bytes, reason: str) -> None:
    url = server.script("/bad.json", Reply(200, body))
    assert unavailable(check("--url", url)) == f"error: {url}: {reason}"
    (here / "bad.json").write_bytes(body)
    assert unavailable(check("--file", "bad.json")) == f"error: bad.json: {reason}"


def publish_inconsistent(here: Path, *pending: str) -> Path:
    """A status.json that says the backend is complete while these packs are pending, as no
    valid manifest publishes it (a hand-made or stale document)."""
    document = status_document(manifest(complete=True))
    for pack in document["packs"]:
        if pack["id"] in pending:
            pack["status"] = "pending"
    document["summary"].update(installed_packs=16 - len(pending), pending_packs=len(pending))
    path = here / "site" / "status.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(to_json(document), encoding="utf-8")
    return path


INCONSISTENT = "the backend is complete while packs K, L are pending: the document is inconsistent"


@pytest.mark.parametrize(
    "requirements",
    [(), ("--require-complete",), ("--min-version", "1.0.0"), ("--all-installed",), ("--json",)],
)
def test_a_complete_backend_with_pending_packs_is_never_ready(
    here: Path, requirements: tuple[str, ...]
) -> None:
    publish_inconsistent(here, "K", "L")
    result = check(*requirements)
    assert result.exit_code == 3
    assert result.stderr == f"error: site/status.json: {INCONSISTENT}\n"
    if "--json" in requirements:
        assert json.loads(result.stdout) == {
            "ready": False,
            "source": "site/status.json",
            "error": f"site/status.json: {INCONSISTENT}",
        }
    else:
        assert result.stdout == ""


def test_an_inconsistent_document_over_http_is_named_by_its_url(here: Path, server: Server) -> None:
    body = publish_inconsistent(here, "K", "L").read_bytes()
    url = server.script("/inconsistent.json", Reply(200, body))
    assert unavailable(check("--url", url)) == f"error: {url}: {INCONSISTENT}"


def test_an_inconsistency_names_one_pack_and_counts_past_ten(here: Path) -> None:
    publish_inconsistent(here, "W")
    assert unavailable(check()) == (
        "error: site/status.json: the backend is complete while pack W is pending: the "
        "document is inconsistent"
    )
    publish_inconsistent(here, *"HIJKLMNOPQRS")
    assert unavailable(check()) == (
        "error: site/status.json: the backend is complete while packs H, I, J, K, L, M, N, O, "
        "P, Q and 2 more are pending: the document is inconsistent"
    )


def test_an_inconsistency_shows_hostile_pack_ids_escaped(here: Path) -> None:
    path = publish_inconsistent(here, "K")
    document = json.loads(path.read_text(encoding="utf-8"))
    document["packs"][3]["id"] = "K\x1b[2J\nerror: forged"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert unavailable(check()) == (
        "error: site/status.json: the backend is complete while pack K\\x1b[2J\\nerror: forged "
        "is pending: the document is inconsistent"
    )


def test_missing_file_with_json_still_prints_a_result(here: Path) -> None:
    result = check("--json")
    assert result.exit_code == 3
    assert result.stderr == "error: cannot read site/status.json: No such file or directory\n"
    assert json.loads(result.stdout) == {
        "ready": False,
        "source": "site/status.json",
        "error": "cannot read site/status.json: No such file or directory",
    }


# --- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--url", "http://x/", "--file", "s.json"), "give --url or --file, not both"),
        (
            ("--require-installed", "K", "--all-installed"),
            "give --require-installed or --all-installed, not both",
        ),
        (("--timeout", "0"), "Invalid value for '--timeout': 0.0 is not in the range x>0."),
        (("--require-installed", " , "), "--require-installed needs at least one pack id"),
        (("K",), "unexpected argument 'K' (pack ids follow --require-installed)"),
    ],
)
def test_usage_errors_exit_2(here: Path, args: tuple[str, ...], message: str) -> None:
    result = check(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_bad_min_version_and_url_scheme_exit_1(here: Path) -> None:
    publish(here, complete=True)
    result = check("--min-version", "1.0")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: --min-version: '1.0' is not a SemVer 2.0.0 version (like 1.2.3)\n",
    )
    result = check("--url", "file:///etc/passwd")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: file:///etc/passwd: only http:// and https:// URLs are supported\n",
    )


# --- the light path ---------------------------------------------------------------------------


def test_check_does_not_import_pydantic_yaml_jinja_or_the_site_builder(here: Path) -> None:
    status = publish(here, complete=True)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "valhalla_status", "check", "--file", status],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    modules = re.findall(r"^import time:.*\|\s*(\S+)$", done.stderr, re.MULTILINE)
    assert "valhalla_status.readers.check" in modules and "valhalla_status.client" in modules
    heavy = ("pydantic", "yaml", "jinja2", "valhalla_status.site", "valhalla_status.models")
    assert [m for m in modules if m.startswith(heavy)] == []
    assert done.stderr.splitlines()[-1] == READY.rstrip("\n")


def test_a_site_built_by_the_cli_served_over_http(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1758326400")
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--by", "alice"]).exit_code == 0
    with serve(here / "site") as running:
        result = check("--url", running.url + "/", "--all-installed", "--require-complete")
        assert (result.exit_code, result.stderr) == (
            1,
            f"not ready: Valhalla 1.0.0 ({running.url}/status.json)\n"
            "  - backend is in development\n",
        )
        assert runner.invoke(main, ["complete", "--by", "alice"]).exit_code == 0
        result = check("--url", running.url + "/", "--require-complete")
        assert (result.exit_code, result.stderr) == (0, READY)
        client = StatusClient(running.url + "/")
        first = client.fetch()
        assert client.fetch() is first
        assert running.requests[-1][1]["If-None-Match"]
    assert (check().exit_code, check("--all-installed").exit_code) == (0, 0)
