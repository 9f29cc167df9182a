"""Input from outside the tool: special files, terminal escapes, pathological documents,
redirects to other schemes.

Every file the tool reads is read only if it is a regular file, with its size limit counted in
bytes read; every piece of outside text printed for a person goes through one escaping rule;
every document `check` cannot use is exit 3 and every bad option exit 2, never a traceback or an
"internal error"; the client follows redirects only to http and https.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import Workspace, clean_env, dump, run_tool, small_manifest, tool_command
from status_server import manifest, write_status

from valhalla_status.cli import main
from valhalla_status.client import (
    InvalidArgument,
    InvalidStatus,
    StatusClient,
    StatusUnavailable,
    fetch_status,
    semver_key,
)
from valhalla_status.publishing.documents import status_document, to_json
from valhalla_status.rules.formats import summary_of
from valhalla_status.rules.text import for_terminal

# A guard against a hang, never a measure: each of these commands takes well under a second.
HANG_GUARD = 120


def check(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def status_text(**changes: Any) -> str:
    """A published status.json (16 packs, backend complete) with some fields replaced."""
    document = status_document(manifest(complete=True))
    document.update(changes)
    return to_json(document)


# --- special files ---------------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "command",
    [["show"], ["show", "--json"], ["validate"], ["history"], ["pack", "list"], ["build"]],
)
def test_a_fifo_given_as_the_manifest_is_refused_never_waited_on(
    tmp_path: Path, fifo: Path, command: list[str]
) -> None:
    result = run_tool(tmp_path, "--manifest", str(fifo), *command)
    assert result.returncode == 1
    assert result.stderr == f"{fifo}: is a FIFO (named pipe), not a manifest file\n"
    assert result.stdout == ""
    assert not (tmp_path / "site").exists()


def test_diff_never_waits_on_a_fifo_given_as_a_manifest(ws: Workspace, fifo: Path) -> None:
    ws.write(small_manifest())
    result = run_tool(ws.root, "diff", str(fifo), str(ws.manifest))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize("command", [["show", "--json"], ["validate"], ["summary"]])
def test_a_device_given_as_the_manifest_is_refused_not_read_forever(
    tmp_path: Path, command: list[str]
) -> None:
    """``/dev/zero`` says it is empty and never ends: only a regular file is read."""
    result = run_tool(tmp_path, "--manifest", "/dev/zero", *command)
    assert result.returncode == 1
    assert result.stderr == "/dev/zero: is a character device, not a manifest file\n"


def test_a_folder_given_as_the_manifest_is_refused(tmp_path: Path) -> None:
    result = run_tool(tmp_path, "--manifest", str(tmp_path), "show")
    assert result.returncode == 1
    assert result.stderr == f"{tmp_path}: is a folder, not a manifest file\n"


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null", "folder"])
def test_check_file_reads_only_a_regular_file(tmp_path: Path, fifo: Path, special: str) -> None:
    source = {"fifo": str(fifo), "folder": str(tmp_path)}.get(special, special)
    result = run_tool(tmp_path, "check", "--file", source, "--timeout", "1")
    assert result.returncode == 3
    assert result.stderr.startswith(f"error: cannot read {source}: it is ")
    assert result.stderr.count("\n") == 1


def test_the_client_refuses_a_fifo_with_its_own_exception(fifo: Path) -> None:
    with pytest.raises(StatusUnavailable, match="it is a FIFO"):
        StatusClient(fifo).fetch()


@pytest.mark.parametrize("name", ["index.html", "base.html", "_packs.html", "feed.xml"])
def test_a_fifo_among_the_templates_is_refused_never_waited_on(
    ws: Workspace, tmp_path: Path, name: str
) -> None:
    ws.write(small_manifest())
    templates = tmp_path / "templates"
    templates.mkdir()
    os.mkfifo(templates / name)
    result = subprocess.run(
        tool_command(ws.manifest, ws.root / "site", "build", "--templates", str(templates)),
        cwd=ws.root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {templates / name}: is a FIFO (named pipe), not a template file\n"
    )
    assert not (ws.root / "site").exists()


def test_a_fifo_the_build_does_not_use_is_never_opened(ws: Workspace, tmp_path: Path) -> None:
    ws.write(small_manifest())
    templates = tmp_path / "templates"
    templates.mkdir()
    os.mkfifo(templates / "notes.txt")
    result = subprocess.run(
        tool_command(ws.manifest, ws.root / "site", "build", "--templates", str(templates)),
        cwd=ws.root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 0, result.stderr
    assert not (ws.root / "site" / "notes.txt").exists()


def test_a_fifo_given_as_the_templates_folder_is_refused(ws: Workspace, fifo: Path) -> None:
    ws.write(small_manifest())
    result = ws.run("build", "--templates", str(fifo))
    assert result.exit_code == 1
    assert result.stderr == f"error: templates folder {fifo} is not a folder\n"


def test_the_manifest_size_limit_counts_bytes_read_not_what_stat_says(ws: Workspace) -> None:
    """A file that grows past what ``stat`` said is still cut at the limit: here the limit is
    shown on a manifest that is a valid prefix followed by 33 MiB of comment."""
    text = dump(small_manifest())
    ws.write(text + "#" + "x" * (33 * 2**20) + "\n")
    result = ws.run("show", "--json")
    assert result.exit_code == 1
    assert "the limit is 32 MiB (not parsed)" in result.stderr


# --- one escaping rule -----------------------------------------------------------------------

# Every character a terminal acts on or that hides or reorders text.
HOSTILE = (
    [chr(c) for c in range(0x20)]
    + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c", "\u200b", "\u2060", "\ufeff", "\u00ad", "\u2028", "\u2029"]
    + ["\U000e0001", "\U000e0041"]
)


def raw_hostile(text: str) -> list[str]:
    """The characters of ``text`` that reach a terminal raw (a line break between lines is
    the only control allowed)."""
    return [
        c
        for c in text
        if c != "\n"
        and c not in "\u200c\u200d"
        and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]


@pytest.mark.parametrize("char", HOSTILE)
def test_every_control_bidi_and_format_character_is_shown_escaped(char: str) -> None:
    shown = for_terminal(f"a{char}b")
    assert raw_hostile(shown) == []
    assert shown.startswith("a\\") and shown.endswith("b") and shown.isascii()


def test_the_escapes_are_the_familiar_ones() -> None:
    assert for_terminal("\x1b]0;PWNED\x07") == "\\x1b]0;PWNED\\x07"
    assert for_terminal("\u202egnp.exe\u202c") == "\\u202egnp.exe\\u202c"
    assert for_terminal("\x9b31m") == "\\x9b31m"
    assert for_terminal("one\ntwo\tthree\r") == "one\\ntwo\\tthree\\r"
    assert for_terminal("one\ntwo\x1b", multiline=True) == "one\ntwo\\x1b"
    assert for_terminal("\ud800") == "\\ud800"  # an undecodable file name


@pytest.mark.parametrize(
    "text",
    ["Valhalla", "Müller ĳ ß", "עברית ومرحبا", "日本語", "👩‍💻 🇫🇷", "ज़्‍ और मी‌ख", "a\\x1b"],
)
def test_ordinary_text_of_any_script_is_shown_as_it_is(text: str) -> None:
    assert for_terminal(text) == text


TITLE = "\x1b]0;PWNED\x07"


def test_check_escapes_the_status_fields_it_prints(tmp_path: Path) -> None:
    document = json.loads(status_text(name=TITLE + "\u202eValhalla", version="1.0.0"))
    document["packs"][0]["name"] = "Evil\x9b2J\u2066name"
    document["packs"][0]["status"] = "deprecated"
    document["summary"] = summary_of(pack["status"] for pack in document["packs"])
    path = tmp_path / "status.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = check("--file", str(path), "--all-installed")
    assert result.exit_code == 1
    assert raw_hostile(result.stderr) == []
    assert "not ready: \\x1b]0;PWNED\\x07\\u202eValhalla 1.0.0" in result.stderr
    assert "Evil\\x9b2J\\u2066name: deprecated, not installed" in result.stderr


def test_check_json_output_stays_exact(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(status_text(name=TITLE), encoding="utf-8")
    result = check("--file", str(path), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == TITLE
    assert raw_hostile(result.stdout) == []  # the JSON rule escapes what the terminal rule does


def test_a_line_break_in_a_file_name_does_not_start_a_new_line(tmp_path: Path) -> None:
    result = check("--file", str(tmp_path / "a\nerror: forged"))
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert "a\\nerror: forged" in result.stderr
    result = CliRunner().invoke(main, ["--manifest", str(tmp_path / "m\nforged"), "validate"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1


def test_file_names_in_messages_are_escaped(tmp_path: Path) -> None:
    hostile = tmp_path / f"status{TITLE}\u202e.json"
    result = check("--file", str(hostile))
    assert result.exit_code == 3
    assert raw_hostile(result.stderr) == []
    assert "status\\x1b]0;PWNED\\x07\\u202e.json" in result.stderr
    result = CliRunner().invoke(main, ["--manifest", str(hostile), "validate"])
    assert result.exit_code == 1
    assert raw_hostile(result.stderr) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--manifest", b"m\xff\x1b]0;X\x07.yaml", "validate"],
        ["check", "--file", b"s\xff\x1b]0;X\x07.json"],
        ["--manifest", b"m\xff\xe2\x80\xae.yaml", "show", "--json"],
    ],
)
def test_undecodable_and_hostile_file_names_are_shown_escaped(
    tmp_path: Path, args: list[str | bytes]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "valhalla_status", *args],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode in (1, 3)
    assert result.stderr.count(b"\n") == 1
    assert raw_hostile(result.stderr.decode("utf-8")) == []
    assert b"\\udcff" in result.stderr


H_NAME = small_manifest()["packs"][0]["name"]


def hostile_history(ws: Workspace, text: str) -> None:
    data = small_manifest()
    data["history"].append(
        {
            "at": "2025-09-21T00:00:00Z",
            "by": "bob",
            "action": "set-notes",
            "changes": {"notes": [text, None], "packs.H.name": [{"name": text}, H_NAME]},
            "notes": None,
        }
    )
    data["system"]["updated_at"] = "2025-09-21T00:00:00Z"
    # Escaped, so that the text reads back as it is (safe_dump writes NEL raw, read as a space).
    ws.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))


def test_history_values_are_escaped(ws: Workspace) -> None:
    hostile_history(ws, TITLE + "\u202e\x9b")
    result = ws.run("history")
    assert result.exit_code == 0, result.stderr
    assert raw_hostile(result.stdout + result.stderr) == []
    shown = 'Pack H: name {"name": "\\u001b]0;PWNED\\u0007\\u202e\\x9b"} → Analyst Essentials'
    assert f"notes cleared; {shown}\n" in result.stdout
    assert json.loads(ws.run("history", "--json").stdout)["history"][0]["changes"]["notes"] == [
        TITLE + "\u202e\x9b",
        None,
    ]


def test_manifest_text_in_error_lines_is_escaped(ws: Workspace) -> None:
    data = small_manifest()
    data["packs"][0]["status"] = "Bad\x1b[2Jstatus\u202e"
    data["packs"][1]["group" + TITLE] = "x"
    ws.write(data)
    for command in (["validate"], ["show"], ["pack", "list"], ["pack", "show", "H"]):
        result = ws.run(*command)
        assert result.exit_code == 1
        assert raw_hostile(result.stderr) == []
        assert "Bad\\x1b[2Jstatus\\u202e" in result.stderr
        assert "group\\x1b]0;PWNED\\x07" in result.stderr


def test_an_id_asked_for_is_escaped_in_the_not_found_line(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("pack", "show", "X\x1b[31m\u202e")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no pack X\\x1b[31m\\u202e;")


# --- pathological documents --------------------------------------------------------------------

DEEP = 200_000


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * DEEP, "nested too deeply"),
        ('{"a": ' * 10 + "[" * DEEP, "nested too deeply"),
        (status_text()[:-2] + ', "deep": ' + "[" * DEEP + "]" * DEEP + "}", "nested too deeply"),
        (status_text(version="1" * 4400 + ".0.0"), "version: over 256 characters"),
        (status_text(version="1.0.0-" + "9" * 5000), "version: over 256 characters"),
        (status_text().replace('"total_packs": 16', '"total_packs": ' + "7" * 5000), "digits"),
        (status_text().replace('"total_packs": 16', '"total_packs": NaN'), "NaN"),
        (status_text().replace('"total_packs": 16', '"total_packs": -Infinity'), "Infinity"),
        (status_text().replace('"total_packs": 16', '"total_packs": 1e999'), "a number"),
        (status_text(updated_at="0001-01-01T00:30:00+01:00"), "out of range"),
        (status_text(updated_at="9999-12-31T23:30:00-01:00"), "out of range"),
        (status_text(updated_at="x" * 100_000), "is not an RFC 3339"),
        (status_text(name="LONE").replace("LONE", "\\ud800"), "lone surrogate"),
        ("[]", "it is an array"),
        ('"status"', "it is a string"),
        ("1e400", "it is a number"),
        ("null", "it is null"),
        ("", "is not JSON"),
    ],
)
def test_an_unusable_document_is_exit_3_never_an_internal_error(
    tmp_path: Path, body: str, reason: str
) -> None:
    path = tmp_path / "status.json"
    path.write_text(body, encoding="utf-8", errors="surrogatepass")
    result = check("--file", str(path), "--min-version", "1.0.0")
    assert result.exit_code == 3, result.stderr
    assert reason in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    with pytest.raises(InvalidStatus):
        fetch_status(path)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", status_text().encode("utf-16"), b'{"name": "\xc3"}', b"\x00" * 100],
)
def test_bytes_that_are_not_utf8_are_exit_3(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "status.json"
    path.write_bytes(body)
    result = check("--file", str(path))
    assert result.exit_code == 3
    assert "is not UTF-8 text" in result.stderr or "is not JSON" in result.stderr
    with pytest.raises(InvalidStatus):
        fetch_status(path)


def test_a_byte_order_mark_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_bytes(b"\xef\xbb\xbf" + status_text().encode())
    assert check("--file", str(path)).exit_code == 0


def test_huge_strings_are_read_and_printed_escaped(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(status_text(name="V\x1b" * 500_000), encoding="utf-8")
    result = check("--file", str(path))
    assert result.exit_code == 0
    assert raw_hostile(result.stderr) == []


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e12", "-1", "0", "abc", "1e309"])
def test_a_timeout_that_is_no_number_of_seconds_is_a_usage_error(
    tmp_path: Path, value: str
) -> None:
    path = write_status(tmp_path / "status.json", manifest(complete=True))
    result = check("--file", str(path), "--timeout", value)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for '--timeout': ")


def test_a_huge_min_version_is_compared_not_crashed(tmp_path: Path) -> None:
    path = write_status(tmp_path / "status.json", manifest(complete=True))
    result = check("--file", str(path), "--min-version", "1" * 5000 + ".0.0")
    assert result.exit_code == 1
    assert "is lower than" in result.stderr


def test_semver_comparison_has_no_length_limit() -> None:
    big = "9" * 5000
    assert semver_key(f"{big}.0.0") > semver_key(f"{big[:-1]}8.0.0") > semver_key("2.0.0")
    assert semver_key(f"1.0.0-{big}") < semver_key("1.0.0-a") < semver_key("1.0.0")


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"timeout": 1e12},
        {"timeout": -1},
        {"timeout": True},
        {"timeout": "5"},
        {"retries": -1},
        {"retries": 1.5},
        {"backoff": float("nan")},
    ],
)
def test_the_client_refuses_unusable_options_with_its_own_exception(
    options: dict[str, Any],
) -> None:
    with pytest.raises(InvalidArgument):
        StatusClient("https://example.org/", **options)


@pytest.mark.parametrize("source", [None, 42, b"status.json", "gopher://example.org/"])
def test_the_client_refuses_unusable_sources_with_its_own_exception(source: Any) -> None:
    with pytest.raises(InvalidArgument):
        StatusClient(source)


# --- redirects ---------------------------------------------------------------------------------


@contextmanager
def listener() -> Iterator[tuple[int, Any]]:
    """A listening socket on 127.0.0.1 that records connections without accepting them;
    ``connected()`` tells whether anything connected."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)

        def connected() -> bool:
            sock.setblocking(False)
            try:
                sock.accept()[0].close()
            except BlockingIOError:
                return False
            return True

        yield sock.getsockname()[1], connected


@contextmanager
def redirecting(body: bytes) -> Iterator[str]:
    """A server that answers ``/go?to=URL`` with a 302 to URL, ``/hop/N`` with a 302 to
    ``/hop/N-1`` (``/hop/0`` is the status), and anything else with ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/go?to="):
                self._redirect(self.path[len("/go?to=") :])
            elif self.path.startswith("/hop/") and self.path != "/hop/0":
                self._redirect(f"/hop/{int(self.path[5:]) - 1}")
            elif self.path == "/loop":
                self._redirect("/loop")
            else:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def _redirect(self, target: str) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("scheme", ["ftp", "FTP", "gopher", "telnet", "ws", "irc"])
def test_a_redirect_to_another_scheme_is_refused_before_connecting(scheme: str) -> None:
    with listener() as (port, connected), redirecting(status_text().encode()) as url:
        target = f"{scheme}://127.0.0.1:{port}/s.json"
        result = check("--url", f"{url}/go?to={target}", "--timeout", "5")
        assert result.exit_code == 3
        assert f"HTTP 302 redirect to {target}: " in result.stderr
        assert "only http and https redirects are followed" in result.stderr
        assert not connected()


@pytest.mark.parametrize("target", ["file:///etc/passwd", "data:,{}", "javascript:alert(1)"])
def test_a_redirect_to_a_local_scheme_is_refused(target: str) -> None:
    with redirecting(b"{}") as url:
        result = check("--url", f"{url}/go?to={target}", "--timeout", "5")
        assert result.exit_code == 3
        assert "only http and https redirects are followed" in result.stderr


def test_a_redirect_target_is_escaped_in_the_message() -> None:
    with redirecting(b"{}") as url:
        result = check("--url", f"{url}/go?to=ftp://x/%1b]0;PWNED%07", "--timeout", "5")
        assert result.exit_code == 3
        assert raw_hostile(result.stderr) == []


def test_http_redirects_are_followed_up_to_five() -> None:
    with redirecting(status_text().encode()) as url:
        assert check("--url", f"{url}/hop/5", "--timeout", "5").exit_code == 0
        too_many = check("--url", f"{url}/hop/6", "--timeout", "5")
        assert too_many.exit_code == 3
        assert "more than 5 redirects in a row" in too_many.stderr
        loop = check("--url", f"{url}/loop", "--timeout", "5")
        assert loop.exit_code == 3
        assert "more than 5 redirects in a row" in loop.stderr
        assert loop.stderr.count("\n") == 1


def test_the_library_refuses_redirects_with_its_own_exception() -> None:
    with listener() as (port, connected), redirecting(b"{}") as url:
        with pytest.raises(StatusUnavailable, match="only http and https"):
            fetch_status(f"{url}/go?to=ftp://127.0.0.1:{port}/s.json", timeout=5)
        assert not connected()


def test_a_reason_phrase_with_terminal_escapes_is_shown_escaped() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404, TITLE + "\x9b2J")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        result = check("--url", f"http://127.0.0.1:{httpd.server_address[1]}/", "--timeout", "5")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.exit_code == 3
    assert raw_hostile(result.stderr) == []
    assert "HTTP 404 \\x1b]0;PWNED\\x07\\x9b2J from" in result.stderr
