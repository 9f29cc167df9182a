"""Property: no command prints outside text raw. Fed random control, bidi and other format
characters (in status.json fields, manifest values, history values, ids asked for), every command
that shows them to a person prints each one escaped, on stdout and on stderr alike, and
``--json`` output still carries the exact text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Workspace, small_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_outside_input import HOSTILE, hostile_history, raw_hostile, status_text

from valhalla_status.cli import main
from valhalla_status.rules.formats import summary_of

# Mostly hostile characters, among ordinary ones of several scripts.
ORDINARY = list("aZ9 -é日עم")
hostile_text = st.text(
    alphabet=st.one_of(st.sampled_from(HOSTILE), st.sampled_from(ORDINARY)), min_size=1, max_size=16
).filter(lambda text: raw_hostile(text) != [])

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def printed(ws: Workspace, *args: str) -> str:
    result = ws.run(*args)
    return result.stdout + result.stderr


@SETTINGS
@given(name=hostile_text, pack_name=hostile_text, group=hostile_text, notes=hostile_text)
def test_check_prints_no_status_field_raw(
    ws: Workspace, name: str, pack_name: str, group: str, notes: str
) -> None:
    document = json.loads(status_text(name=name, description=name, notes=notes))
    # not pending: a complete backend with a pending pack is refused before anything is shown
    document["packs"][0].update(name=pack_name, group=group, status="deprecated")
    document["summary"] = summary_of(pack["status"] for pack in document["packs"])
    path: Path = ws.root / "status.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    for options in (["--all-installed"], ["--require-installed", "H", "--min-version", "9.0.0"]):
        result = CliRunner().invoke(main, ["check", "--file", str(path), *options])
        assert result.exit_code == 1
        assert raw_hostile(result.stdout + result.stderr) == []
    result = CliRunner().invoke(main, ["check", "--file", str(path), "--json"])
    assert json.loads(result.stdout)["name"] == name


@SETTINGS
@given(text=hostile_text)
def test_history_prints_no_value_raw(ws: Workspace, text: str) -> None:
    hostile_history(ws, text)
    assert raw_hostile(printed(ws, "history")) == []
    assert json.loads(ws.run("history", "--json").stdout)["history"][0]["changes"]["notes"] == [
        text,
        None,
    ]


@pytest.mark.slow
@SETTINGS
@given(name=hostile_text, group=hostile_text, description=hostile_text)
def test_show_and_pack_commands_print_no_manifest_text_raw(
    ws: Workspace, name: str, group: str, description: str
) -> None:
    """Whether the manifest is valid (some format characters are allowed in names) or not
    (then the error lines quote the values), nothing reaches the terminal raw."""
    data = small_manifest()
    data["packs"][0].update(name=name, group=group)
    data["system"]["description"] = description
    data["packs"][1][name] = group  # an unknown key, quoted in the error line
    ws.write(data)
    for command in (
        ["validate"],
        ["show"],
        ["summary"],
        ["pack", "list"],
        ["pack", "show", "H"],
        ["history"],
    ):
        assert raw_hostile(printed(ws, *command)) == []
    del data["packs"][1][name]
    ws.write(data)
    for command in (["show"], ["pack", "list"], ["pack", "show", "H"], ["pack", "show", name]):
        assert raw_hostile(printed(ws, *command)) == []
