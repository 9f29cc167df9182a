"""Every output channel has one escaping rule per format, and clips values from outside.

- For a terminal: every control, C1, bidi and other format character is shown as an escape
  (``text.for_terminal``).
- For JSON (every ``--json`` output, ``diff --format json``, every published JSON file): the
  same characters are written as JSON escapes (``text.for_json``), so the text is exact JSON
  with the same meaning, and what the site publishes stays byte for byte what ``--json``
  prints.
- In a message: a value from outside (what a server or a document sent) is quoted at most 60
  characters long, with its size, whatever it is and wherever it sits.
"""

from __future__ import annotations

import json
import socket
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import Workspace, small_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_server import manifest

from valhalla_status.cli import main
from valhalla_status.publishing.documents import status_document, to_json
from valhalla_status.rules.formats import summary_of
from valhalla_status.rules.text import for_json

ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
JOINERS = "\u200c\u200d"


def escaped_for_a_terminal(char: str) -> bool:
    """The terminal rule, stated from Unicode's categories."""
    return char not in JOINERS and unicodedata.category(char) in ESCAPED_CATEGORIES


def raw(text: str) -> list[str]:
    """The characters of ``text`` a terminal would obey or hide (line breaks aside)."""
    return [c for c in text if c != "\n" and escaped_for_a_terminal(c)]


# --- one rule for JSON --------------------------------------------------------------------


def test_json_escapes_exactly_what_the_terminal_rule_escapes_over_all_of_unicode() -> None:
    """Every character but the quote and the backslash (which JSON escapes itself), as JSON
    string content: each one the terminal rule escapes is written as ``json.dumps`` with
    ``ensure_ascii`` writes it, every other one as it is, and the text reads back the same."""
    every = "".join(
        chr(c) for c in range(0x20, 0x110000) if chr(c) not in '"\\' and not 0xD800 <= c < 0xE000
    )
    written = for_json(every)
    assert written == "".join(
        json.dumps(c)[1:-1] if escaped_for_a_terminal(c) else c for c in every
    )
    assert json.loads(f'"{written}"') == every


def test_each_character_the_terminal_rule_escapes_is_escaped_on_its_own() -> None:
    """Found alone among ordinary text of any script, not only among its neighbours."""
    escaped = [chr(c) for c in range(0x7F, 0x110000) if escaped_for_a_terminal(chr(c))]
    assert len(escaped) > 200
    for char in escaped:
        if 0xD800 <= ord(char) < 0xE000:
            continue
        for around in ("", "é", "日本", "👩\u200d💻 “x”", "مرحبا"):
            text = json.dumps(around + char + around, ensure_ascii=False)
            assert for_json(text) == text.replace(char, json.dumps(char)[1:-1]), hex(ord(char))


def test_a_lone_surrogate_is_written_as_its_escape() -> None:
    assert for_json('["\ud800", "\udfff"]') == '["\\ud800", "\\udfff"]'


@pytest.mark.parametrize(
    "text",
    ["plain ascii", "\x7f", "é and 日本語 and עברית", "👩\u200d💻 and 🏴\U000e0067\U000e007f"],
)
def test_json_text_needing_no_escape_is_returned_unchanged(text: str) -> None:
    document = json.dumps({"k": text}, ensure_ascii=False)
    written = for_json(document)
    assert json.loads(written) == {"k": text}
    if not raw(text):
        assert written is document


HOSTILE = [
    *["\x7f", "\x85", "\x9b", "\x9b2J", "\u202e", "\u2066", "\u2069", "\u200e", "\u061c"],
    *["\u2028", "\u2029", "\ufeff", "\u00ad", "\u2062", "\ufff9", "\U000e0001", "\U000e0041"],
    *["\x1b[2J", "\x1b]0;PWNED\x07", "\r", "\n"],
]
ORDINARY = ["a", "Z", " ", "é", "日", "ע", "م", "👩", "\u200d", "\\", '"']
hostile_text = st.lists(st.sampled_from(HOSTILE + ORDINARY), min_size=1, max_size=8).map("".join)
# Pack names may hold format characters that are not controls (U+00AD, U+2062, tags…).
name_text = (
    st.lists(
        st.sampled_from(["\u00ad", "\u2062", "\ufff9", "\U000e0041", *ORDINARY[:-2]]),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(str.strip)
)

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def write_hostile_manifest(ws: Workspace, text: str, name: str) -> None:
    data = small_manifest()
    data["packs"][0]["name"] = name
    data["system"]["extra"] = {text: [text, {"k": text}]}
    data["history"].append(
        {
            "at": "2025-09-21T00:00:00Z",
            "by": "bob",
            "action": "set-notes",
            "changes": {"notes": [text, None]},
            "notes": None,
        }
    )
    data["system"]["updated_at"] = "2025-09-21T00:00:00Z"
    ws.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))


# Each --json output and the published file it is.
PUBLISHED = {
    ("show", "--json"): "status.json",
    ("summary", "--json"): "summary.json",
    ("pack", "list", "--json"): "packs.json",
    ("pack", "show", "H", "--json"): "packs/H.json",
    ("history", "--json"): "history.json",
}


@pytest.mark.slow
@SETTINGS
@given(text=hostile_text, name=name_text)
def test_json_output_and_the_published_files_carry_no_raw_control_and_are_the_same_bytes(
    ws: Workspace, text: str, name: str
) -> None:
    write_hostile_manifest(ws, text, name)
    assert ws.run("build").exit_code == 0
    for command, published in PUBLISHED.items():
        result = ws.run(*command)
        assert result.exit_code == 0, result.output
        assert raw(result.stdout) == [], command
        assert result.stdout.encode() == (ws.root / "site" / published).read_bytes(), command
    status = json.loads(ws.run("show", "--json").stdout)
    assert status["extra"] == {text: [text, {"k": text}]}
    assert status["packs"][0]["name"] == name
    history = json.loads(ws.run("history", "--json").stdout)["history"]
    assert history[0]["changes"]["notes"] == [text, None]
    for path in (ws.root / "site").rglob("*.json"):
        assert raw(path.read_text(encoding="utf-8")) == [], path


@SETTINGS
@given(text=hostile_text)
def test_diff_json_carries_no_raw_control(ws: Workspace, text: str) -> None:
    old = small_manifest()
    new = small_manifest()
    new["system"]["extra"] = {"k": text}
    (ws.root / "old.yaml").write_text(yaml.safe_dump(old, allow_unicode=False))
    (ws.root / "new.yaml").write_text(yaml.safe_dump(new, allow_unicode=False))
    result = ws.run("diff", "old.yaml", "new.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    assert raw(result.stdout) == []
    assert json.loads(result.stdout)["changes"]["extra"] == [{}, {"k": text}]


def check(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


@SETTINGS
@given(name=hostile_text, pack_name=hostile_text)
def test_check_json_carries_no_raw_control_from_the_document(
    tmp_path_factory: pytest.TempPathFactory, name: str, pack_name: str
) -> None:
    document = status_document(manifest(complete=True))
    document["name"] = name
    document["packs"][0].update(name=pack_name, status="experimental")
    document["summary"] = summary_of(pack["status"] for pack in document["packs"])
    path = tmp_path_factory.mktemp("check") / "status.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    for options in ([], ["--all-installed"]):
        result = check("--file", str(path), "--json", *options)
        assert raw(result.stdout) == []
        shown = json.loads(result.stdout)
        assert shown["name"] == name
        if options:
            assert pack_name in shown["unmet"][0]


# --- a hostile server --------------------------------------------------------------------------


@contextmanager
def answering(reply: bytes) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every request with exactly ``reply``; its URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)  # to see ``stop`` soon
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(reply)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def response(status_line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [status_line, *headers, b"Content-Length: %d" % len(body), b"", b""]
    return b"\r\n".join(lines) + body


def test_a_reason_phrase_with_c1_and_bidi_characters_is_escaped_in_check_json() -> None:
    reply = response(b"HTTP/1.1 404 Not \xc2\x9b2J\xe2\x80\xae found\xe2\x81\xa6")
    with answering(reply) as url:
        result = check("--url", url, "--json", "--timeout", "5")
    assert result.exit_code == 3
    assert raw(result.stdout) == [] and raw(result.stderr) == []
    error = json.loads(result.stdout)["error"]
    # http.client reads the status line as ISO-8859-1: each byte is one character.
    assert error.startswith("HTTP 404 Not \xc2\x9b2J\xe2\x80\xae found\xe2\x81\xa6 from ")
    assert "\\u009b" in result.stdout and "\\x9b" in result.stderr


def status_body(**changes: Any) -> bytes:
    document = status_document(manifest(complete=True))
    document.update(changes)
    return to_json(document).encode()


LONG = 60_000


def pending_pack(name: str = "P", pack_id: str = "H") -> bytes:
    """A status.json with one pack not installed (experimental: the backend is complete)."""
    document = status_document(manifest(complete=True))
    document["packs"][0].update(id=pack_id, name=name, status="experimental")
    document["summary"] = summary_of(pack["status"] for pack in document["packs"])
    return to_json(document).encode()


# Where a server's text lands in a message, each with 60,000 characters of it.
SERVER_TEXT: dict[str, bytes] = {
    "status line": b"HTTP/1.1 " + b"\x9b" * LONG + b"\r\n\r\n",
    "status line of letters": b"HTTP/1.1 " + b"A" * LONG + b"\r\n\r\n",
    "reason phrase": response(b"HTTP/1.1 404 " + b"\xe2\x80\xae" * (LONG // 3)),
    "reason phrase of a 5xx": response(b"HTTP/1.1 503 " + b"x" * LONG),
    "redirect to another scheme": response(
        b"HTTP/1.1 302 Found", b"Location: ftp://x/" + b"a" * LONG
    ),
    "redirect with user information": response(
        b"HTTP/1.1 302 Found", b"Location: http://u:p@127.0.0.1/" + b"a" * LONG
    ),
    "schema_version": response(b"HTTP/1.1 200 OK", body=status_body(schema_version="9" * LONG)),
    "a pack's status": response(
        b"HTTP/1.1 200 OK",
        body=status_body().replace(
            b'"status": "installed"', b'"status": "' + b"s" * LONG + b'"', 1
        ),
    ),
    "version": response(b"HTTP/1.1 200 OK", body=status_body(version="v" * 200)),
    "timestamp": response(b"HTTP/1.1 200 OK", body=status_body(updated_at="t" * LONG)),
    "a key twice": response(
        b"HTTP/1.1 200 OK",
        body=b'{"' + b"k" * LONG + b'": 1, "' + b"k" * LONG + b'": 2}',
    ),
    "a pack's name": response(b"HTTP/1.1 200 OK", body=pending_pack(name="N\u202e" * LONG)),
    "a pack's id": response(b"HTTP/1.1 200 OK", body=pending_pack(pack_id="I" * LONG)),
    "the system's name": response(
        b"HTTP/1.1 200 OK",
        body=status_body(name="\x9b" * LONG, backend_complete=False, completed_at=None),
    ),
}
QUOTE = 60  # characters of a value a message quotes


@pytest.mark.slow
@pytest.mark.parametrize("where", SERVER_TEXT)
def test_whatever_a_server_sends_is_quoted_short_in_every_message(where: str) -> None:
    # At most 60 characters of a value, each shown as at most 10 (\U000e0041), around a
    # message of a few dozen words.
    limit = 10 * QUOTE + 300
    outputs = []
    with answering(SERVER_TEXT[where]) as url:
        for extra in ([], ["--all-installed"], ["--json"], ["--json", "--all-installed"]):
            result = check("--url", url, "--timeout", "5", *extra)
            assert result.exit_code in (0, 1, 3), result.output
            assert "Traceback" not in result.output and "p@" not in result.output
            for line in result.stderr.splitlines():
                assert len(line) < limit, (where, extra, line[:200])
            if "--json" in extra:  # the document's data is exact; its messages are short
                document = json.loads(result.stdout)
                details = [c["detail"] for c in document.get("conditions", [])]
                for message in [document.get("error", ""), *document.get("unmet", []), *details]:
                    assert len(message) < limit, (where, extra, message[:200])
            outputs.append(result.output)
    assert "characters)" in "".join(outputs)  # the size of what was cut short is said


@pytest.mark.parametrize("length", [QUOTE - 1, 80, 81, 10_000])
def test_a_value_is_cut_short_exactly_when_longer_than_a_line_should_quote(length: int) -> None:
    name = "n" * length
    with answering(response(b"HTTP/1.1 200 OK", body=pending_pack(name=name))) as url:
        result = check("--url", url, "--timeout", "5", "--all-installed")
    assert result.exit_code == 1
    line = result.stderr.splitlines()[1]
    if length <= 80:
        assert line == f"  - pack H {name}: experimental, not installed"
    else:
        cut = f"{'n' * QUOTE}… ({length:,} characters)"
        assert line == f"  - pack H {cut}: experimental, not installed"
