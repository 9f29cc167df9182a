"""Every command agrees on which pack an id names: ASCII white space around it dropped and
ASCII letters upper-cased; a non-ASCII character never names a pack, even one that upper-cases
to an ASCII letter (``'ı'.upper()`` is ``'I'``) or looks like one."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import Workspace

from valhalla_status.client import StatusClient
from valhalla_status.readers.serve import SiteServer, make_server

NO_PACK = "1–32 characters of A-Z, 0-9, _ and -, starting with a letter"

# What each typed id names, given packs I, K and FF: every surface must say the same.
TABLE = [
    ("ı", None),  # dotless i: upper-cases to I
    ("İ", None),  # I with a dot: lower-cases to i and a combining dot
    ("ﬀ", None),  # the ff ligature: upper-cases to FF
    ("\u212a", None),  # KELVIN SIGN: lower-cases to k
    ("Ｋ", None),  # full-width K
    ("k", "K"),
    ("ff", "FF"),
    (" K", "K"),
    ("K\n", "K"),
]


@pytest.fixture
def built(ws: Workspace) -> Workspace:
    assert ws.run("init", "--by", "alice").exit_code == 0
    added = ws.run(
        "pack",
        "add",
        "FF",
        "--name",
        "Ligature",
        "--group",
        "G",
        "--status",
        "installed",
        "--by",
        "alice",
    )
    assert added.exit_code == 0, added.output
    return ws


@pytest.fixture
def server(built: Workspace) -> Iterator[SiteServer]:
    served = make_server(str(built.root / "site"), "127.0.0.1", 0, lambda line: None)
    thread = threading.Thread(target=served.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def shown_by_pack_show(ws: Workspace, typed: str) -> str | None:
    result = ws.run("pack", "show", typed, "--json")
    if result.exit_code == 0:
        return str(json.loads(result.stdout)["id"])
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: no pack {typed}; `valhalla-status pack list` shows the packs\n",
    )
    return None


def required_by_check(ws: Workspace, typed: str) -> str | None:
    result = ws.run("check", "--file", "site/status.json", "--require-installed", typed)
    if result.exit_code == 0:
        assert result.stdout == ""
        found = result.stderr.removeprefix("ready: Valhalla 1.0.0: pack ").split()[0]
        assert result.stderr.endswith(": installed\n"), result.stderr
        return found
    assert (result.exit_code, result.stderr) == (
        1,
        f"not ready: Valhalla 1.0.0 (site/status.json)\n  - no pack {typed}\n",
    )
    return None


def found_by_client(ws: Workspace, typed: str) -> str | None:
    pack = StatusClient(str(ws.root / "site" / "status.json")).fetch().pack(typed)
    return None if pack is None else pack.id


def served_by_serve(server: SiteServer, typed: str) -> str | None:
    url = f"{server.url}packs/{urllib.parse.quote(typed)}.json"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(json.loads(response.read())["id"])
    except urllib.error.HTTPError as error:
        assert error.code == 404
        return None


def changed_by_pack_set(ws: Workspace, typed: str) -> str | None:
    before = ws.read()["packs"]
    result = ws.run("pack", "set", typed, "--status", "deprecated", "--by", "alice")
    if result.exit_code != 0:
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: {typed!r} is not a valid pack id: {NO_PACK}\n",
        )
        assert ws.read()["packs"] == before
        return None
    changed = [p["id"] for p, q in zip(before, ws.read()["packs"], strict=True) if p != q]
    assert len(changed) == 1
    return str(changed[0])


@pytest.mark.parametrize(("typed", "pack_id"), TABLE, ids=[ascii(t) for t, _ in TABLE])
def test_every_command_agrees_on_which_pack_an_id_names(
    built: Workspace, server: SiteServer, typed: str, pack_id: str | None
) -> None:
    named = {
        "pack show": shown_by_pack_show(built, typed),
        "check --require-installed": required_by_check(built, typed),
        "the client": found_by_client(built, typed),
        "serve": served_by_serve(server, typed),
        "pack set": changed_by_pack_set(built, typed),
    }
    assert named == dict.fromkeys(named, pack_id)


@pytest.mark.parametrize("typed", ["ı", "\u212a"])
def test_a_manifest_id_that_upper_cases_to_a_valid_one_is_not_suggested_when_not_ascii(
    ws: Workspace, typed: str
) -> None:
    assert ws.run("init", "--by", "alice").exit_code == 0
    text = ws.manifest.read_text(encoding="utf-8")
    ws.manifest.write_text(text.replace("- id: K\n", f"- id: {typed}\n", 1), encoding="utf-8")
    result = ws.run("validate")
    assert result.exit_code == 1
    assert f"{typed!r} is not a valid pack id: {NO_PACK}" in result.stderr
    assert "upper-case" not in result.stderr
