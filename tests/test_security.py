"""Security: safe YAML only, nothing rendered as a template, everything
escaped, no path outside ``site/``, no write through a planted symlink, no invisible or
direction-changing characters, and no file content that can drive the terminal.

The commands a user runs are run as real processes (``python -m valhalla_status``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from test_properties import as_recorded

from valhalla_status.errors import ManifestError, ValhallaError
from valhalla_status.manifest import dump_manifest, load_manifest, lock_path, write_manifest
from valhalla_status.models import Manifest

BASE: dict[str, Any] = {
    "schema_version": 1,
    "system": {
        "name": "Valhalla",
        "description": "Security test system",
        "version": "1.0.0",
        "backend_complete": False,
        "notes": None,
        "updated_at": "2025-09-20T00:00:00Z",
        "completed_at": None,
        "extra": {},
    },
    "packs": [
        {"id": "H", "name": "Analyst Essentials", "group": "Professional", "status": "installed"},
        {"id": "S", "name": "Rollout Manager", "group": "System", "status": "pending"},
    ],
    "history": [
        {
            "at": "2025-09-20T00:00:00Z",
            "by": "alice",
            "action": "init",
            "changes": {},
            "notes": None,
        }
    ],
}


def base() -> dict[str, Any]:
    return json.loads(json.dumps(BASE))


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process, on ``tmp_path/m.yaml`` and ``tmp_path/site``."""
    env = dict(os.environ)
    env.update(SOURCE_DATE_EPOCH="1767225600")
    return subprocess.run(
        [sys.executable, "-m", "valhalla_status", "--manifest", str(tmp_path / "m.yaml"),
         "--site", str(tmp_path / "site"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def invoke(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in this process (for the many cases whose guarantee is not about processes)."""
    from click.testing import CliRunner

    from valhalla_status.cli import main

    result = CliRunner().invoke(
        main,
        ["--manifest", str(tmp_path / "m.yaml"), "--site", str(tmp_path / "site"), *args],
        env={"SOURCE_DATE_EPOCH": "1767225600"},
    )
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, or the target of a symlink (lock files aside:
    taking the lock before reading the manifest leaves an empty lock file, by design)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if path.name.endswith(".lock"):
            continue
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


# --- safe YAML only ------------------------------------------------------------------------

UNSAFE = {
    "apply": "!!python/object/apply:os.system ['touch {marker}']",
    "new": "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "object": "!!python/object:subprocess.Popen {{args: ['touch', '{marker}']}}",
    "name": "!!python/name:os.system",
    "module": "!!python/module:os",
    "verbatim": "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
    "binary": "!!binary dG91Y2g=",
    "set": "!!set {{a, b}}",
    "custom": "!Ref marker",
}


@pytest.mark.parametrize("payload", UNSAFE.values(), ids=UNSAFE.keys())
def test_object_constructing_tags_are_refused_and_never_run(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    text = dump_manifest(Manifest.model_validate(BASE)).replace(
        "name: Analyst Essentials", "name: " + payload.format(marker=marker)
    )
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text, encoding="utf-8")
    for command in (("build",), ("pack", "set", "H", "--status", "pending", "--by", "x")):
        result = (run if command == ("build",) else invoke)(tmp_path, *command)
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"{manifest}:16: packs[0].name: YAML tag ")
        assert lines[0].endswith(" is not allowed")
    assert not marker.exists(), "the payload ran"
    assert manifest.read_text(encoding="utf-8") == text
    assert not (tmp_path / "site").exists()


def test_tag_directive_shorthand_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    text = "%TAG !p! tag:yaml.org,2002:python/\n---\n" + dump_manifest(
        Manifest.model_validate(BASE)
    ).split("\n", 3)[3].replace(
        "name: Valhalla", f"name: !p!object/apply:os.system ['touch {tmp_path}/x']"
    )
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    assert caught.value.problems == [
        f"{manifest}:5: system.name: YAML tag "
        "'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
    ]
    assert not (tmp_path / "x").exists()


# --- templates, escaping -------------------------------------------------------------------

HOSTILE = {
    "system_name": "{{ 7*7 }} <b>Valhalla</b>",
    "description": "{% include 'index.html' %} \"quoted\" & 'single' ]]> <!-- -->",
    "notes": "<script>alert(1)</script>\n{{ config.items() }}\n{% for x in 'abc' %}X{% endfor %}",
    "pack_name": '"><img src=x onerror=alert(1)>',
    "group": "</title><svg onload=alert(1)>",
    "by": "' onmouseover='alert(1)",
    "history_notes": "{{ ''.__class__.__mro__[1].__subclasses__() }} &amp; &#x3C; ]]>",
}


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def hostile_manifest(base_url: str | None = None) -> dict[str, Any]:
    data = base()
    system = data["system"]
    system.update(
        name=HOSTILE["system_name"], description=HOSTILE["description"], notes=HOSTILE["notes"]
    )
    if base_url:
        system["base_url"] = base_url
    data["packs"][0].update(name=HOSTILE["pack_name"], group=HOSTILE["group"])
    data["history"].append(
        {
            "at": "2025-09-20T00:00:00Z",
            "by": HOSTILE["by"],
            "action": "pack-set",
            "changes": {"packs.H.name": ["Analyst Essentials", HOSTILE["pack_name"]]},
            "notes": HOSTILE["history_notes"],
        }
    )
    return data


def test_hostile_strings_render_literally_and_escaped(tmp_path: Path) -> None:
    data = hostile_manifest()
    manifest = tmp_path / "m.yaml"
    write_manifest(manifest, Manifest.model_validate(data))
    result = run(tmp_path, "build")
    assert result.returncode == 0, result.stderr
    site = tmp_path / "site"

    for name in ("index.html", "404.html"):
        raw = (site / name).read_text(encoding="utf-8")
        page = Page()
        page.feed(raw)
        page.close()
        assert not {"script", "img", "svg", "iframe", "object"} & set(page.tags), name
        assert not [a for a, _ in page.attributes if a.startswith("on")], name
        assert raw.lower().count("<html") == 1, "a template was included"
        text = "".join(page.text)
        assert HOSTILE["system_name"] in text  # {{ 7*7 }} shown, not 49
    page = Page()
    page.feed((site / "index.html").read_text(encoding="utf-8"))
    index = "".join(page.text)
    for key in ("description", "pack_name", "group", "by"):
        assert HOSTILE[key] in index, key
    for line in HOSTILE["notes"].splitlines():
        assert line in index
    assert "XXX" not in index, "a {% for %} loop ran"
    assert "<class" not in index, "an expression was evaluated"

    feed = ElementTree.parse(site / "feed.xml").getroot()  # raises if escaping broke the XML
    feed_text = " ".join(feed.itertext())
    assert HOSTILE["system_name"] in feed_text
    assert HOSTILE["history_notes"] in feed_text
    assert HOSTILE["by"] in feed_text
    badge = ElementTree.parse(site / "badge.svg").getroot()
    assert HOSTILE["system_name"] in " ".join(badge.itertext())
    assert not [e for e in badge.iter() if any(a.startswith("on") for a in e.attrib)]

    status = json.loads((site / "status.json").read_text(encoding="utf-8"))
    assert status["name"] == HOSTILE["system_name"]
    assert status["notes"] == HOSTILE["notes"]
    assert status["packs"][0]["name"] == HOSTILE["pack_name"]


def test_a_hostile_base_url_stays_inside_its_attributes(tmp_path: Path) -> None:
    url = "https://status.example.com/a\"'><script>alert(1)</script>/"
    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(hostile_manifest(url)))
    result = run(tmp_path, "build")
    assert result.returncode == 0, result.stderr
    raw = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(raw)
    assert "script" not in page.tags
    links = [value for name, value in page.attributes if name == "href" and value]
    assert f"{url}status.json" in links, "the URL is one attribute value, intact"
    feed = ElementTree.parse(tmp_path / "site" / "feed.xml").getroot()
    hrefs = [e.attrib["href"] for e in feed.iter() if "href" in e.attrib]
    assert any(href.startswith(url) for href in hrefs)


# --- paths ---------------------------------------------------------------------------------

BAD_IDS = ["../../etc/passwd", "..", ".", "/abs", "A/B", "A\\B", "A..", "h", "A B", "Ａ", "A.JSON",
           "", "-A", "A" * 33, "..\\..\\x", "A\u0000"]  # fmt: skip


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_a_path_like_pack_id_in_the_manifest_is_refused_and_builds_nothing(
    tmp_path: Path, bad_id: str
) -> None:
    data = base()
    data["packs"][1]["id"] = bad_id
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    before = tree(tmp_path)
    result = (run if bad_id == BAD_IDS[0] else invoke)(tmp_path, "build")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "packs[1].id: " in result.stderr
    assert tree(tmp_path) == before, "something was written"


@pytest.mark.parametrize("bad_id", ["../x", "..", "a/b", "/etc", "Ａ", "A\\B"])
def test_a_path_like_pack_id_on_the_command_line_is_refused(tmp_path: Path, bad_id: str) -> None:
    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(BASE))
    before = tree(tmp_path)
    for args in (
        ("pack", "add", bad_id, "--name", "N", "--group", "G", "--by", "x"),
        ("pack", "set", bad_id, "--status", "pending", "--by", "x"),
        ("pack", "remove", bad_id, "--by", "x"),
    ):
        result = invoke(tmp_path, *args)
        assert result.returncode == 1, args
        assert "is not a valid pack id" in result.stderr
    shown = invoke(tmp_path, "pack", "show", bad_id)
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert tree(tmp_path) == before


def test_render_refuses_an_unvalidated_path_like_id(tmp_path: Path) -> None:
    """Defence in depth: even a manifest that skipped validation cannot name a path."""
    from valhalla_status.models import Pack
    from valhalla_status.site import build_site

    manifest = Manifest.model_validate(BASE)
    evil = Pack.model_construct(id="../../evil", name="x", group="g", status="installed")
    bad = manifest.model_copy(update={"packs": [*manifest.packs, evil]})
    with pytest.raises(ValhallaError):
        build_site(bad, tmp_path / "site")
    assert tree(tmp_path) == {}


@pytest.mark.slow
def test_build_does_not_write_through_symlinks_planted_in_the_site(tmp_path: Path) -> None:
    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(BASE))
    assert run(tmp_path, "build").returncode == 0
    site = tmp_path / "site"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("outside")
    victim = tmp_path / "victim.html"
    victim.write_text("precious")
    outside_before = {**tree(elsewhere), "victim": victim.read_bytes()}
    for path in (site / "packs").iterdir():
        path.unlink()
    (site / "packs").rmdir()
    (site / "packs").symlink_to(elsewhere, target_is_directory=True)
    (site / "index.html").unlink()
    (site / "index.html").symlink_to(victim)
    (site / "api").rename(tmp_path / "api-moved")
    (site / "api").symlink_to(tmp_path / "api-moved", target_is_directory=True)

    result = run(tmp_path, "pack", "set", "H", "--status", "deprecated", "--by", "x")
    assert result.returncode == 0, result.stderr
    assert {**tree(elsewhere), "victim": victim.read_bytes()} == outside_before
    moved = tree(tmp_path / "api-moved")
    assert all(b"deprecated" not in v for v in moved.values() if isinstance(v, bytes))
    for path in site.rglob("*"):
        assert not path.is_symlink(), f"{path} is still a symlink"
    from valhalla_status.site import check_site

    assert check_site(load_manifest(tmp_path / "m.yaml"), site) == {}
    assert json.loads((site / "packs" / "H.json").read_text())["status"] == "deprecated"


def test_a_symlinked_lock_file_is_not_followed(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    write_manifest(manifest, Manifest.model_validate(BASE))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock_path(manifest).symlink_to(victim)
    run(tmp_path, "pack", "set", "H", "--status", "pending", "--no-build", "--by", "x")
    assert victim.read_text() == "precious"


# --- invisible and direction-changing characters -------------------------------------------

REFUSED = {
    "ALM": "\u061c", "ZWSP": "\u200b", "LRM": "\u200e", "RLM": "\u200f", "LRE": "\u202a",
    "RLE": "\u202b", "PDF": "\u202c", "LRO": "\u202d", "RLO": "\u202e", "WJ": "\u2060",
    "LRI": "\u2066", "RLI": "\u2067", "FSI": "\u2068", "PDI": "\u2069", "BOM": "\ufeff",
    "LSEP": "\u2028", "PSEP": "\u2029", "NEL": "\x85", "ESC": "\x1b", "DEL": "\x7f",
}  # fmt: skip


@pytest.mark.parametrize("char", REFUSED.values(), ids=REFUSED.keys())
def test_bidi_and_zero_width_characters_are_refused_in_names(tmp_path: Path, char: str) -> None:
    data = base()
    data["packs"][0]["name"] = f"Admin{char}Pack"
    manifest = tmp_path / "m.yaml"
    text = yaml.safe_dump(data)  # ASCII, every other character escaped: exactly what we mean
    manifest.write_text(text, encoding="utf-8")
    line = text[: text.index("Admin")].count("\n") + 1
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    assert caught.value.problems == [
        f"{manifest}:{line}: packs[0].name: contains the control character "
        f"U+{ord(char):04X}, which is not allowed"
    ]
    write_manifest(manifest, Manifest.model_validate(BASE))
    before = manifest.read_bytes()
    result = invoke(tmp_path, "pack", "set", "H", "--name", f"Admin{char}Pack", "--by", "x")
    assert result.returncode == 1
    assert f"U+{ord(char):04X}" in result.stderr
    assert manifest.read_bytes() == before
    assert not (tmp_path / "site").exists()


def test_joiners_that_scripts_and_emoji_need_are_kept(tmp_path: Path) -> None:
    data = base()
    data["packs"][0]["name"] = "Reporter 👩\u200d💻 می\u200cخواهم"
    manifest = Manifest.model_validate(data)
    write_manifest(tmp_path / "m.yaml", manifest)
    loaded = load_manifest(tmp_path / "m.yaml")
    assert loaded.packs[0].name == "Reporter 👩\u200d💻 می\u200cخواهم"
    assert as_recorded(loaded) == manifest


def test_file_content_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """Keys and values are echoed in errors escaped: one line each, no escape sequence."""
    manifest = tmp_path / "m.yaml"
    text = dump_manifest(Manifest.model_validate(BASE)) + (
        '"\\e[2J\\e]0;owned\\a": 1\n"bad[0]\\rkey\\nline": 2\n'
    )
    manifest.write_text(text, encoding="utf-8")
    first = text.count("\n") - 1
    result = run(tmp_path, "validate")
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "\r" not in result.stderr and "\x07" not in result.stderr
    key = "\\x1b[2J\\x1b]0;owned\\x07"
    assert result.stderr.splitlines() == [
        f"{manifest}:{first}: {key}: unknown field '{key}'",
        f"{manifest}:{first + 1}: bad[0]\\rkey\\nline: unknown field 'bad[0]\\rkey\\nline'",
    ]


# --- limits ----------------------------------------------------------------------------------


def test_limits_count_characters_not_bytes(tmp_path: Path) -> None:
    """100 four-byte characters are a valid name; the 101st is refused, with the count."""
    data = base()
    data["packs"][0]["name"] = "😀" * 100
    data["system"]["notes"] = "é" * 2000
    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(data))
    data["packs"][0]["name"] = "😀" * 101
    data["system"]["notes"] = "é" * 2001
    manifest = tmp_path / "m.yaml"
    text = yaml.safe_dump(data, allow_unicode=True, width=10**6)
    manifest.write_text(text, encoding="utf-8")
    name, notes = (text[: text.index(s)].count("\n") + 1 for s in ("😀", "éé"))
    result = run(tmp_path, "validate")
    assert result.returncode == 1
    assert sorted(result.stderr.splitlines()) == [
        f"{manifest}:{name}: packs[0].name: is 101 characters; the limit is 100",
        f"{manifest}:{notes}: system.notes: is 2,001 characters; the limit is 2,000",
    ]


@pytest.mark.slow
def test_a_planted_symlink_with_the_right_bytes_does_not_survive_a_build(tmp_path: Path) -> None:
    """A symlink whose target holds exactly the expected bytes must not be kept (or linked):
    its owner could change the published file later, without any build."""
    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(BASE))
    assert run(tmp_path, "build").returncode == 0
    site = tmp_path / "site"
    for name in ("badge.svg", "index.html"):
        outside = tmp_path / f"outside-{name}"
        outside.write_bytes((site / name).read_bytes())
        (site / name).unlink()
        (site / name).symlink_to(outside)
    result = run(tmp_path, "build")
    assert result.returncode == 0, result.stderr
    for name in ("badge.svg", "index.html"):
        assert not (site / name).is_symlink()
        assert os.stat(site / name).st_ino != os.stat(tmp_path / f"outside-{name}").st_ino
        (tmp_path / f"outside-{name}").write_text("changed later")
        assert b"changed later" not in (site / name).read_bytes()


# --- serve -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_stays_inside_the_site_and_logs_requests_escaped(tmp_path: Path) -> None:
    """Raw requests (no client normalising them): no file outside site/ is served, and a
    request line holding terminal escapes is logged escaped."""
    import socket
    import threading

    from valhalla_status.readers.serve import make_server

    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(BASE))
    assert run(tmp_path, "build").returncode == 0
    (tmp_path / "secret.txt").write_text("SECRET")
    log: list[str] = []
    server = make_server(str(tmp_path / "site"), "127.0.0.1", 0, log.append)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()

    def raw(target: bytes) -> bytes:
        with socket.create_connection(server.server_address[:2], timeout=10) as sock:
            sock.sendall(b"GET " + target + b" HTTP/1.0\r\n\r\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    try:
        outside = [b"/../secret.txt", b"/%2e%2e/secret.txt", b"/..%2fsecret.txt"]
        outside += [b"/packs/../../secret.txt", b"//../secret.txt", b"/%2e%2e%5csecret.txt"]
        for target in outside:
            answer = raw(target)
            assert answer.startswith(b"HTTP/1.0 404"), (target, answer[:40])
            assert b"SECRET" not in answer
        assert raw(b"/status.json").startswith(b"HTTP/1.0 200")
        raw(b"/\x1b[2J\x1b]0;owned\x07.json")
    finally:
        server.shutdown()
        server.server_close()
    assert log, "requests are logged"
    for line in log:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), repr(line)


@pytest.mark.slow
def test_ids_typed_on_the_command_line_are_echoed_escaped(tmp_path: Path) -> None:
    """An id from a script variable may hold anything: messages stay one line, no escapes."""
    write_manifest(tmp_path / "m.yaml", Manifest.model_validate(BASE))
    assert run(tmp_path, "build").returncode == 0
    hostile = "z\n\x1b[2J\x1b]0;owned\x07"
    shown = "Z\\n\\x1b[2J\\x1b]0;OWNED\\x07"  # ids are case-insensitive: upper-cased
    result = run(tmp_path, "pack", "show", hostile)
    assert result.returncode == 1
    assert result.stderr == f"error: no pack {shown}; `valhalla-status pack list` shows the packs\n"
    result = run(tmp_path, "check", "--require-installed", hostile)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "\x1b" not in output and "\x07" not in output
    assert f"no pack {shown}" in output
