"""Every command's happy path through the CLI, and the mutations'
timestamps, history entries, no-op behaviour and ``--force`` guards.

Mutating commands run with ``--no-build`` here: the site build has its own tests.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import (
    EPOCH,
    EPOCH2,
    EPOCH2_TEXT,
    EPOCH_TEXT,
    LOCK_NAME,
    MANIFEST_REL,
    Workspace,
    clean_env,
    dump,
    entry_files,
    git,
    holding_lock,
    other_files,
    small_manifest,
    snapshot,
)

from valhalla_status.manifest import HEADER, dump_manifest, load_manifest
from valhalla_status.models import HistoryEntry
from valhalla_status.publishing.documents import (
    history_document,
    pack_documents,
    pack_file_document,
    packs_document,
    status_document,
    summary_document,
)
from valhalla_status.storage.canonical import entry_file_name
from valhalla_status.storage.layout import entry_place

M = MANIFEST_REL
NB = "--no-build"
IGNORED = ".gitignore: added the site folder, lock files and scratch files (7 patterns)\n"

DEFAULT_PACKS = [
    ("H", "Analyst Essentials", "Professional"),
    ("I", "Reporter Premium", "Professional"),
    ("J", "Dashboard Master", "Professional"),
    ("K", "Executor Pro", "Professional"),
    ("L", "Verifier Suite", "Professional"),
    ("M", "Tracker Manager", "Professional"),
    ("N", "Forecaster Analytics", "Professional"),
    ("O", "Forecaster Pro", "Professional"),
    ("P", "Supervisor Manager", "Professional"),
    ("Q", "Supervisor Insight", "Professional"),
    ("R", "Analyst Enterprise", "Professional"),
    ("S", "Rollout Manager", "System infrastructure"),
    ("T", "Security Protocol", "System infrastructure"),
    ("U", "Debug Suite", "System infrastructure"),
    ("V", "Deployment Checklist", "System infrastructure"),
    ("W", "System Completion Metadata", "System infrastructure"),
]

STATUS_JSON_KEYS = [
    "$schema",
    "schema_version",
    "name",
    "description",
    "version",
    "backend_complete",
    "notes",
    "updated_at",
    "completed_at",
    "packs",
    "summary",
    "extra",
]
SUMMARY_KEYS = [
    "total_packs",
    "installed_packs",
    "pending_packs",
    "deprecated_packs",
    "experimental_packs",
]


def default_manifest_text(at: str, by: str) -> str:
    """The canonical main file of a fresh ``init`` (the history is beside it)."""
    packs = "".join(
        f"- id: {i}\n  status: installed\n  name: {n}\n  group: {g}\n" for i, n, g in DEFAULT_PACKS
    )
    return (
        HEADER
        + "schema_version: 2\n"
        + "system:\n"
        + "  name: Valhalla\n"
        + "  version: 1.0.0\n"
        + "  description: Valhalla professional capital markets system\n"
        + "  backend_complete: false\n"
        + "  completed_at: null\n"
        + "  extra: {}\n"
        + "  notes: null\n"
        + "packs:\n"
        + packs
    )


def history_files(ws: Workspace) -> dict[str, str]:
    """The history folder's entry files (name -> text), after asserting that each is in its
    subfolder and that the folder holds no other file."""
    folder = ws.manifest.with_name(ws.manifest.stem + ".history")
    found = entry_files(folder)
    assert [path.relative_to(folder).as_posix() for path in found.values()] == [
        entry_place(name) for name in found
    ]
    assert other_files(folder) == []
    return {name: path.read_text(encoding="utf-8") for name, path in found.items()}


def init_entry_text(at: str, by: str) -> str:
    return f"at: '{at}'\nby: {by}\naction: init\nchanges: {{}}\nnotes: null\n"


def ok(result: Result, stderr: str, stdout: str = "") -> None:
    """Exit 0 with exactly these streams."""
    assert result.exit_code == 0, result.output
    assert result.stderr == stderr
    assert result.stdout == stdout


def fails(result: Result, stderr: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr == stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def canonical(ws: Workspace) -> str:
    """The file's text, after asserting it is exactly the canonical dump of its content."""
    text = ws.manifest.read_text(encoding="utf-8")
    assert text == dump_manifest(load_manifest(ws.manifest))
    return text


@pytest.fixture
def small(ws: Workspace, epoch: int) -> Workspace:
    """The small manifest (3 packs, I pending), written in canonical form by ``fmt``."""
    ws.write(small_manifest())
    assert ws.run("fmt").exit_code == 0
    return ws


def set_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))


# --- init ------------------------------------------------------------------------------------


def test_init_writes_the_default_manifest(ws: Workspace, epoch: int) -> None:
    ok(ws.run("init", NB, "--by", "alice"), f"Created {M} with 16 packs\n{IGNORED}")
    assert ws.manifest.read_text(encoding="utf-8") == default_manifest_text(EPOCH_TEXT, "alice")
    assert canonical(ws)
    assert sorted(os.listdir(ws.manifest.parent)) == [
        ".valhalla.yaml.lock",
        "valhalla.history",
        "valhalla.yaml",
    ]
    [(name, text)] = history_files(ws).items()
    assert name.startswith("20250920T000000Z-000000-") and name.endswith(".yaml")
    assert text == init_entry_text(EPOCH_TEXT, "alice")


def test_init_is_idempotent(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    set_epoch(monkeypatch, EPOCH)
    ok(ws.run("init", NB, "--by", "alice"), f"Created {M} with 16 packs\n{IGNORED}")
    before = snapshot(ws.root)
    set_epoch(monkeypatch, EPOCH2)
    ok(ws.run("init", NB, "--by", "bob"), f"No change: {M} already exists\n")
    assert snapshot(ws.root) == before


def test_init_force_replaces_the_manifest_and_its_history(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_epoch(monkeypatch, EPOCH)
    ok(ws.run("init", NB, "--by", "alice"), f"Created {M} with 16 packs\n{IGNORED}")
    ok(ws.run("set-notes", "temporary", NB, "--by", "alice"), "Notes updated\n")
    assert len(history_files(ws)) == 2
    set_epoch(monkeypatch, EPOCH2)
    ok(
        ws.run("init", "--force", NB, "--by", "bob"),
        f"Created {M} with 16 packs; it replaces the 2 recorded changes in "
        "manifest/valhalla.history/\n",
    )
    assert ws.manifest.read_text(encoding="utf-8") == default_manifest_text(EPOCH2_TEXT, "bob")
    assert list(history_files(ws).values()) == [init_entry_text(EPOCH2_TEXT, "bob")]


def test_init_force_replaces_an_invalid_manifest(ws: Workspace, epoch: int) -> None:
    ws.write("schema_version: 1\nsystem: [broken\n")
    assert ws.run("validate").exit_code == 1
    ok(ws.run("init", "--force", NB, "--by", "alice"), f"Created {M} with 16 packs\n{IGNORED}")
    assert ws.manifest.read_text(encoding="utf-8") == default_manifest_text(EPOCH_TEXT, "alice")


def test_init_creates_the_folder_of_a_custom_path(ws: Workspace, epoch: int) -> None:
    result = ws.run("--manifest", "deep/er/status.yaml", "init", NB, "--by", "alice")
    ok(result, f"Created deep/er/status.yaml with 16 packs\n{IGNORED}")
    text = (ws.root / "deep/er/status.yaml").read_text(encoding="utf-8")
    assert text == default_manifest_text(EPOCH_TEXT, "alice")


# --- validate and fmt ------------------------------------------------------------------------


def test_validate_a_valid_manifest(small: Workspace) -> None:
    before = snapshot(small.root)
    ok(small.run("validate"), f"{M}: valid (3 packs)\n")
    assert snapshot(small.root) == before


def test_validate_counts_in_words(ws: Workspace) -> None:
    data = small_manifest()
    data["packs"] = data["packs"][:1]
    ws.write(data)
    ok(ws.run("validate"), f"{M}: valid (1 pack)\n")
    data["packs"] = []
    ws.write(data)
    ok(ws.run("validate"), f"{M}: valid (0 packs)\n")


HAND_EDITED = """\
# My notes about the manifest, which fmt will drop.
schema_version: 1
system:
    # four-space indentation, keys out of order
    version: "1.0.0"
    name: 'Valhalla'
    description: >-
      Valhalla professional
      capital markets system
    backend_complete: true
    completed_at: 2025-09-19T23:00:00-01:00
    updated_at: "2025-09-20T02:00:00+02:00"
    notes: ~
    extra: {owner: {team: core}, tags: [a, b]}
packs:
  - {status: installed, id: H, group: Professional, name: Analyst Essentials}
  -   id: I      # experimental!
      name:    "Reporter Premium"
      group: Professional
      status: experimental
history: [{at: '2025-09-20T00:00:00.500Z', by: alice, action: init, changes: {}, notes: null},
  {at: '2025-09-20T00:00:00Z', by: bob, action: complete, notes: "Done",
   changes: {backend_complete: [false, true], completed_at: [null, '2025-09-20T00:00:00Z']}}]
"""

HAND_EDITED_CANONICAL = (
    HEADER
    + """\
schema_version: 1
system:
  name: Valhalla
  description: Valhalla professional capital markets system
  version: 1.0.0
  backend_complete: true
  notes: null
  updated_at: '2025-09-20T00:00:00Z'
  completed_at: '2025-09-20T00:00:00Z'
  extra:
    owner:
      team: core
    tags:
    - a
    - b
packs:
- id: H
  name: Analyst Essentials
  group: Professional
  status: installed
- id: I
  name: Reporter Premium
  group: Professional
  status: experimental
history:
- at: '2025-09-20T00:00:00.500000Z'
  by: alice
  action: init
  changes: {}
  notes: null
- at: '2025-09-20T00:00:00Z'
  by: bob
  action: complete
  changes:
    backend_complete: [false, true]
    completed_at: [null, '2025-09-20T00:00:00Z']
  notes: Done
"""
)


def test_the_tool_s_own_header_is_no_comment_to_warn_about_whatever_the_line_ends(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("fmt").exit_code == 0
    text = ws.manifest.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    ws.manifest.write_bytes(text.replace("\n", "\r\n").encode())  # git's core.autocrlf

    ok(ws.run("validate"), f"{M}: valid (3 packs)\n")
    ws.manifest.write_bytes(
        text.replace("\n", "\r\n", 3).replace("- id: I", "# mine\n- id: I").encode()
    )
    result = ws.run("validate")
    assert "warning" in result.stderr and f"{M}:1:" not in result.stderr


def test_fmt_check_and_fmt_on_a_hand_edited_file(ws: Workspace) -> None:
    ws.write(HAND_EDITED)
    dropped = "".join(
        f"{M}:{line}: warning: this comment is dropped by the next write; record why with "
        "--notes (e.g. `pack set ID --notes TEXT`, `set-notes TEXT`)\n"
        for line in (1, 4, 17)
    )
    ok(ws.run("validate"), f"{dropped}{M}: valid (2 packs)\n")
    before = snapshot(ws.root)
    fails(
        ws.run("fmt", "--check"),
        f"{dropped}error: {M} is not in canonical form; run `valhalla-status fmt`\n",
    )
    assert snapshot(ws.root) == before

    ok(ws.run("fmt"), f"{dropped}{M}: reformatted\n")
    assert ws.manifest.read_text(encoding="utf-8") == HAND_EDITED_CANONICAL
    assert sorted(os.listdir(ws.manifest.parent)) == [".valhalla.yaml.lock", "valhalla.yaml"]

    after = snapshot(ws.root)
    ok(ws.run("fmt", "--check"), f"{M}: canonical\n")
    ok(ws.run("fmt"), f"{M}: already canonical\n")
    assert snapshot(ws.root) == after


def test_fmt_records_no_history(ws: Workspace) -> None:
    ws.write(small_manifest())
    ok(ws.run("fmt"), f"{M}: reformatted\n")
    assert ws.read() == small_manifest()


# --- reading commands ------------------------------------------------------------------------

SMALL_TABLE = """\
ID  NAME                GROUP                  STATUS
H   Analyst Essentials  Professional           installed
I   Reporter Premium    Professional           pending
S   Rollout Manager     System infrastructure  installed
"""


def test_show(small: Workspace) -> None:
    ok(
        small.run("show"),
        "",
        "Valhalla 1.0.0: backend in development\n"
        "Valhalla professional capital markets system\n"
        "updated 2025-09-20 00:00 UTC\n"
        "3 packs: 2 installed, 1 pending, 0 deprecated, 0 experimental\n"
        "\n" + SMALL_TABLE,
    )


def test_show_complete_with_notes(small: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    set_epoch(monkeypatch, EPOCH2 + 3600 * 13 + 60 * 7)
    assert small.run("pack", "set", "I", "--status", "experimental", NB, "--by", "b").exit_code == 0
    result = small.run("complete", "--notes", "All green\nsecond line", NB, "--by", "b")
    ok(result, "Backend marked complete at 2025-09-21 13:07 UTC\n")
    ok(
        small.run("show"),
        "",
        "Valhalla 1.0.0: backend complete since 2025-09-21 13:07 UTC\n"
        "Valhalla professional capital markets system\n"
        "updated 2025-09-21 13:07 UTC\n"
        "notes: All green\n"
        "       second line\n"
        "3 packs: 2 installed, 0 pending, 0 deprecated, 1 experimental\n"
        "\n"
        + SMALL_TABLE.replace(
            "Professional           pending", "Professional           experimental"
        ),
    )


def test_show_json_is_status_json(small: Workspace) -> None:
    result = small.run("show", "--json")
    ok(result, "", result.stdout)
    document = json.loads(result.stdout)
    assert list(document) == STATUS_JSON_KEYS
    assert document == status_document(load_manifest(small.manifest))
    assert result.stdout == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert document["summary"] == {
        "total_packs": 3,
        "installed_packs": 2,
        "pending_packs": 1,
        "deprecated_packs": 0,
        "experimental_packs": 0,
    }
    assert document["packs"][1] == {
        "id": "I",
        "name": "Reporter Premium",
        "group": "Professional",
        "status": "pending",
        "notes": None,
        "since": EPOCH_TEXT,
    }
    assert (document["updated_at"], document["completed_at"]) == (EPOCH_TEXT, None)
    assert (document["schema_version"], document["version"], document["extra"]) == (1, "1.0.0", {})


def test_summary(small: Workspace) -> None:
    ok(
        small.run("summary"),
        "",
        "Valhalla 1.0.0: backend in development\n"
        "3 packs: 2 installed, 1 pending, 0 deprecated, 0 experimental\n",
    )


def test_summary_json_is_summary_json(small: Workspace) -> None:
    result = small.run("summary", "--json")
    document = json.loads(result.stdout)
    ok(result, "", result.stdout)
    assert list(document) == ["$schema", "schema_version", *SUMMARY_KEYS, "description"]
    assert document == summary_document(load_manifest(small.manifest))
    assert document == {
        "$schema": "schema/summary.schema.json",
        "schema_version": 1,
        "total_packs": 3,
        "installed_packs": 2,
        "pending_packs": 1,
        "deprecated_packs": 0,
        "experimental_packs": 0,
        "description": "Valhalla professional capital markets system",
    }


def test_pack_list(small: Workspace) -> None:
    ok(
        small.run("pack", "list"),
        "",
        SMALL_TABLE + "3 packs: 2 installed, 1 pending, 0 deprecated, 0 experimental\n",
    )


def test_pack_list_filters(small: Workspace) -> None:
    ok(
        small.run("pack", "list", "--status", "pending"),
        "",
        "ID  NAME              GROUP         STATUS\n"
        "I   Reporter Premium  Professional  pending\n"
        "1 pack: 0 installed, 1 pending, 0 deprecated, 0 experimental\n",
    )
    ok(
        small.run("pack", "list", "--group", "system INFRASTRUCTURE"),
        "",
        "ID  NAME             GROUP                  STATUS\n"
        "S   Rollout Manager  System infrastructure  installed\n"
        "1 pack: 1 installed, 0 pending, 0 deprecated, 0 experimental\n",
    )
    ok(
        small.run("pack", "list", "--status", "installed", "--group", "professional"),
        "",
        "ID  NAME                GROUP         STATUS\n"
        "H   Analyst Essentials  Professional  installed\n"
        "1 pack: 1 installed, 0 pending, 0 deprecated, 0 experimental\n",
    )
    ok(
        small.run("pack", "list", "--status", "deprecated"),
        "",
        "0 packs: 0 installed, 0 pending, 0 deprecated, 0 experimental\n",
    )


def test_pack_list_json_is_packs_json(small: Workspace) -> None:
    manifest = load_manifest(small.manifest)
    result = small.run("pack", "list", "--json")
    ok(result, "", result.stdout)
    document = json.loads(result.stdout)
    assert list(document) == ["$schema", "schema_version", "packs", "summary"]
    assert list(document["summary"]) == SUMMARY_KEYS
    assert document == packs_document(pack_documents(manifest))
    assert [p["id"] for p in document["packs"]] == ["H", "I", "S"]

    result = small.run("pack", "list", "--json", "--group", "PROFESSIONAL", "--status", "pending")
    document = json.loads(result.stdout)
    assert document == packs_document([pack_documents(manifest)[1]])
    assert document["summary"]["total_packs"] == 1


@pytest.mark.parametrize("typed", ["s", "S"])
def test_pack_show_any_case(small: Workspace, typed: str) -> None:
    ok(
        small.run("pack", "show", typed),
        "",
        "id: S\nname: Rollout Manager\ngroup: System infrastructure\nstatus: installed\n"
        f"notes: (none)\nsince: {EPOCH_TEXT}\n",
    )
    result = small.run("pack", "show", typed, "--json")
    ok(result, "", result.stdout)
    document = json.loads(result.stdout)
    assert list(document) == [
        "$schema",
        "schema_version",
        "id",
        "name",
        "group",
        "status",
        "notes",
        "since",
    ]
    assert document == pack_file_document(pack_documents(load_manifest(small.manifest))[2])
    assert document["$schema"] == "../schema/pack.schema.json"


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("zz", "ZZ"), ("../h", "../H"), ("ı", "ı"), ("h\nj", "H\\nJ"), ("h\x1b", "H\\x1b")],
)
def test_pack_show_unknown_id(small: Workspace, typed: str, shown: str) -> None:
    fails(
        small.run("pack", "show", typed),
        f"error: no pack {shown}; `valhalla-status pack list` shows the packs\n",
    )


READ_COMMANDS = [
    ("validate",),
    ("fmt", "--check"),
    ("show",),
    ("show", "--json"),
    ("summary",),
    ("summary", "--json"),
    ("pack", "list"),
    ("pack", "list", "--json", "--status", "pending"),
    ("pack", "show", "h"),
    ("pack", "show", "H", "--json"),
    ("history",),
    ("history", "--json"),
]


def test_read_commands_write_nothing_and_answer_the_same_each_time(small: Workspace) -> None:
    before = snapshot(small.root)
    first = [small.run(*args) for args in READ_COMMANDS]
    second = [small.run(*args) for args in READ_COMMANDS]
    for args, a, b in zip(READ_COMMANDS, first, second, strict=True):
        assert a.exit_code == b.exit_code == 0, args
        assert a.stdout == b.stdout, args
        assert a.stderr == b.stderr, args
    assert snapshot(small.root) == before


# --- pack add / set / remove -----------------------------------------------------------------


def entry(
    action: str,
    changes: dict[str, Any],
    *,
    at: str = EPOCH2_TEXT,
    by: str = "bob",
    notes: str | None = None,
) -> dict[str, Any]:
    return {"at": at, "by": by, "action": action, "changes": changes, "notes": notes}


@pytest.fixture
def later(small: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The small manifest (stamped EPOCH), with the clock moved on a day for the mutations."""
    set_epoch(monkeypatch, EPOCH2)
    return small


def expected_after(**system: Any) -> dict[str, Any]:
    data = small_manifest()
    data["system"].update(updated_at=EPOCH2_TEXT, **system)
    return data


def test_pack_add(later: Workspace) -> None:
    result = later.run(
        "pack", "add", "x1", "--name", "New Pack", "--group", "Extras", NB, "--by", "bob"
    )
    ok(result, "Pack X1 added: New Pack (Extras, pending)\n")
    new = {"id": "X1", "name": "New Pack", "group": "Extras", "status": "pending"}
    expected = expected_after()
    expected["packs"].append(new)
    expected["history"].append(entry("pack-add", {"packs.X1": [None, new]}))
    assert later.read() == expected
    canonical(later)


def test_pack_add_with_status(later: Workspace) -> None:
    args = ("pack", "add", "Y", "--name", "Why", "--group", "G", "--status", "experimental")
    ok(later.run(*args, NB, "--by", "bob"), "Pack Y added: Why (G, experimental)\n")
    assert later.read()["packs"][-1] == {
        "id": "Y",
        "name": "Why",
        "group": "G",
        "status": "experimental",
    }


def test_ids_that_look_like_yaml_values_round_trip(later: Workspace) -> None:
    for typed in ("no", "On", "NULL", "true", "E1"):
        result = later.run("pack", "add", typed, "--name", f"Pack {typed}", "--group", "G", NB)
        assert result.exit_code == 0, result.output
    text = canonical(later)
    assert "- id: 'NO'\n" in text and "- id: 'NULL'\n" in text and "- id: E1\n" in text
    assert [p["id"] for p in later.read()["packs"]] == [
        "H",
        "I",
        "S",
        "NO",
        "ON",
        "NULL",
        "TRUE",
        "E1",
    ]
    ok(later.run("validate"), f"{M}: valid (8 packs)\n")


@pytest.mark.parametrize("typed", ["h", "H"])
def test_pack_add_existing_id_is_refused(later: Workspace, typed: str) -> None:
    before = snapshot(later.root)
    fails(
        later.run("pack", "add", typed, "--name", "Dup", "--group", "G", NB, "--by", "bob"),
        "error: pack H already exists; use `pack set` to change it\n",
    )
    assert snapshot(later.root) == before


def test_pack_set_status_shows_as_a_minimal_diff(later: Workspace) -> None:
    before = canonical(later)
    result = later.run("pack", "set", "i", "--status", "installed", NB, "--by", "bob")
    ok(result, "Pack I: pending → installed\n")
    expected = expected_after()
    expected["packs"][1]["status"] = "installed"
    expected["history"].append(entry("pack-set", {"packs.I.status": ["pending", "installed"]}))
    assert later.read() == expected
    after = canonical(later)
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        f"-  updated_at: '{EPOCH_TEXT}'",
        f"+  updated_at: '{EPOCH2_TEXT}'",
        "-  status: pending",
        "+  status: installed",
        f"+- at: '{EPOCH2_TEXT}'",
        "+  by: bob",
        "+  action: pack-set",
        "+  changes:",
        "+    packs.I.status: [pending, installed]",
        "+  notes: null",
    ]


def test_pack_set_several_fields(later: Workspace) -> None:
    args = ("pack", "set", "S", "--status", "deprecated", "--name", "Rollout", "--group", "Old")
    result = later.run(*args, NB, "--by", "bob")
    ok(
        result,
        "Pack S: installed → deprecated; name Rollout Manager → Rollout; group "
        "System infrastructure → Old\n",
    )
    expected = expected_after()
    expected["packs"][2] = {"id": "S", "name": "Rollout", "group": "Old", "status": "deprecated"}
    expected["history"].append(
        entry(
            "pack-set",
            {
                "packs.S.name": ["Rollout Manager", "Rollout"],
                "packs.S.group": ["System infrastructure", "Old"],
                "packs.S.status": ["installed", "deprecated"],
            },
        )
    )
    assert later.read() == expected


def test_pack_set_refusals(later: Workspace) -> None:
    before = snapshot(later.root)
    fails(
        later.run("pack", "set", "zz", "--status", "installed", NB),
        "error: no pack ZZ; `valhalla-status pack list` shows the packs\n",
    )
    fails(
        later.run("pack", "set", "H", NB),
        "error: nothing to change: give --status, --name, --group or --notes\n",
    )
    assert snapshot(later.root) == before


def test_pack_remove(later: Workspace) -> None:
    ok(later.run("pack", "remove", "s", NB, "--by", "bob"), "Pack S removed\n")
    expected = expected_after()
    removed = expected["packs"].pop(2)
    expected["history"].append(entry("pack-remove", {"packs.S": [removed, None]}))
    assert later.read() == expected
    before = snapshot(later.root)
    fails(
        later.run("pack", "remove", "S", NB, "--by", "bob"),
        "error: no pack S; `valhalla-status pack list` shows the packs\n",
    )
    assert snapshot(later.root) == before


# --- complete / incomplete -------------------------------------------------------------------


@pytest.mark.parametrize("force", [(), ("--force",)])
def test_complete_is_refused_while_packs_are_pending_force_or_not(
    later: Workspace, force: tuple[str, ...]
) -> None:
    ok(
        later.run("pack", "set", "H", "--status", "pending", NB, "--by", "bob"),
        "Pack H: installed → pending\n",
    )
    before = snapshot(later.root)
    fails(
        later.run("complete", *force, NB, "--by", "bob"),
        "error: not marking the backend complete: 2 packs are pending (H Analyst Essentials, "
        "I Reporter Premium); set their status first (valhalla-status pack set H --status "
        "installed)\n",
    )
    assert snapshot(later.root) == before


@pytest.mark.parametrize("force", [(), ("--force",)])
def test_complete_refusal_names_a_single_pack(later: Workspace, force: tuple[str, ...]) -> None:
    before = snapshot(later.root)
    fails(
        later.run("complete", *force, "--notes", "ready", NB, "--by", "bob"),
        "error: not marking the backend complete: 1 pack is pending (I Reporter Premium); "
        "set its status first (valhalla-status pack set I --status installed)\n",
    )
    assert snapshot(later.root) == before


def test_complete_force_is_still_accepted_and_completes_like_complete(later: Workspace) -> None:
    ok(
        later.run("pack", "set", "I", "--status", "installed", NB, "--by", "bob"),
        "Pack I: pending → installed\n",
    )
    ok(
        later.run("complete", "--force", NB, "--by", "bob"),
        "Backend marked complete at 2025-09-21 00:00 UTC\n",
    )
    expected = expected_after(backend_complete=True, completed_at=EPOCH2_TEXT)
    expected["packs"][1]["status"] = "installed"
    expected["history"] += [
        entry("pack-set", {"packs.I.status": ["pending", "installed"]}),
        entry("complete", {"backend_complete": [False, True], "completed_at": [None, EPOCH2_TEXT]}),
    ]
    assert later.read() == expected
    canonical(later)


def test_complete_help_says_force_overrides_nothing(ws: Workspace) -> None:
    result = ws.run("complete", "--help")
    assert result.exit_code == 0
    words = " ".join(result.stdout.split())  # as wrapped to any width
    assert "Mark the backend complete (refused while any pack is pending, --force or not)." in words
    assert (
        "--force Accepted for existing scripts; overrides nothing: a pending pack always refuses."
        in words
    )


def test_complete_when_nothing_is_pending_with_notes(
    later: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(
        later.run("pack", "set", "I", "--status", "installed", NB, "--by", "bob"),
        "Pack I: pending → installed\n",
    )
    set_epoch(monkeypatch, EPOCH2 + 60)
    result = later.run("complete", "--notes", "Backend verification passed", NB, "--by", "carol")
    ok(result, "Backend marked complete at 2025-09-21 00:01 UTC\n")
    data = later.read()
    at = "2025-09-21T00:01:00Z"
    assert data["system"] == {
        **small_manifest()["system"],
        "backend_complete": True,
        "completed_at": at,
        "updated_at": at,
        "notes": "Backend verification passed",
    }
    assert data["history"][-1] == entry(
        "complete",
        {
            "backend_complete": [False, True],
            "completed_at": [None, at],
            "notes": [None, "Backend verification passed"],
        },
        at=at,
        by="carol",
        notes="Backend verification passed",
    )


def test_incomplete(later: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(
        later.run("pack", "set", "I", "--status", "installed", NB, "--by", "bob"),
        "Pack I: pending → installed\n",
    )
    ok(
        later.run("complete", NB, "--by", "bob"),
        "Backend marked complete at 2025-09-21 00:00 UTC\n",
    )
    set_epoch(monkeypatch, EPOCH2 + 3600)
    result = later.run("incomplete", "--notes", "Regression in K", NB, "--by", "dave")
    ok(result, "Backend marked in development\n")
    data = later.read()
    at = "2025-09-21T01:00:00Z"
    assert data["system"] == {
        **small_manifest()["system"],
        "updated_at": at,
        "notes": "Regression in K",
    }
    assert data["history"][-1] == entry(
        "incomplete",
        {
            "backend_complete": [True, False],
            "completed_at": [EPOCH2_TEXT, None],
            "notes": [None, "Regression in K"],
        },
        at=at,
        by="dave",
        notes="Regression in K",
    )
    assert len(data["history"]) == 4


@pytest.fixture
def completed(later: Workspace) -> Workspace:
    """The small manifest with I installed and the backend complete (nothing pending)."""
    assert later.run("pack", "set", "I", "--status", "installed", NB, "--by", "bob").exit_code == 0
    assert later.run("complete", NB, "--by", "bob").exit_code == 0
    return later


REFUSED_PENDING = (
    "the backend is complete; run `valhalla-status incomplete` first, or choose another status"
)


def test_a_pack_set_pending_is_refused_while_the_backend_is_complete(completed: Workspace) -> None:
    before = snapshot(completed.root)
    fails(
        completed.run("pack", "set", "h", "--status", "pending", NB, "--by", "bob"),
        f"error: not setting pack H pending: {REFUSED_PENDING}\n",
    )
    fails(
        completed.run("pack", "set", "H", "--status", "pending", "--notes", "why", NB),
        f"error: not setting pack H pending: {REFUSED_PENDING}\n",
    )
    assert snapshot(completed.root) == before
    ok(
        completed.run("pack", "set", "H", "--status", "deprecated", NB, "--by", "bob"),
        "Pack H: installed → deprecated\n",
    )


@pytest.mark.parametrize("status", [(), ("--status", "pending")])
def test_a_pack_added_as_pending_is_refused_while_the_backend_is_complete(
    completed: Workspace, status: tuple[str, ...]
) -> None:
    before = snapshot(completed.root)
    fails(
        completed.run("pack", "add", "X", "--name", "Ex", "--group", "G", *status, NB),
        f"error: not adding pack X as pending: {REFUSED_PENDING} (--status; pending is the "
        "default)\n",
    )
    assert snapshot(completed.root) == before
    ok(
        completed.run(
            "pack", "add", "X", "--name", "Ex", "--group", "G", "--status", "installed", NB
        ),
        "Pack X added: Ex (G, installed)\n",
    )


def _complete_while_pending(ws: Workspace, *pending: str) -> None:
    """Hand-edit the manifest into a complete backend with these packs pending (as a clean
    merge of ``complete`` and ``pack set ID --status pending`` leaves it)."""
    data = ws.read()
    data["system"].update(backend_complete=True, completed_at=EPOCH_TEXT)
    for pack in data["packs"]:
        pack["status"] = "pending" if pack["id"] in pending else "installed"
    ws.write(data)


SETTLING = {
    "pack-set": (
        ("pack", "set", "I", "--status", "installed"),
        "Pack I: pending → installed",
        "pack-set",
        {"packs.I.status": ["pending", "installed"]},
    ),
    "pack-remove": (
        ("pack", "remove", "I"),
        "Pack I removed",
        "pack-remove",
        {"packs.I": [{"id": "I", "name": "Reporter Premium", "group": "Professional",
                      "status": "pending"}, None]},
    ),
    "incomplete": (
        ("incomplete",),
        "Backend marked in development",
        "incomplete",
        {"backend_complete": [True, False], "completed_at": [EPOCH_TEXT, None]},
    ),
}  # fmt: skip


@pytest.mark.parametrize("settle", SETTLING.values(), ids=SETTLING.keys())
def test_a_manifest_complete_while_one_pack_is_pending_takes_only_the_changes_that_settle_it(
    small: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    settle: tuple[tuple[str, ...], str, str, dict[str, Any]],
) -> None:
    _complete_while_pending(small, "I")
    problem = (
        f"{M}:19: packs[1].status: pending while the backend is complete; set the pack's status "
        "(valhalla-status pack set I --status installed) or mark the backend in development "
        "(valhalla-status incomplete)\n"
    )
    assert small.manifest.read_text().splitlines()[18] == "  status: pending"
    before = snapshot(small.root)
    set_epoch(monkeypatch, EPOCH2)
    for args in [
        ("set-version", "1.1.0"),
        ("pack", "set", "I", "--notes", "still waiting"),
        ("pack", "set", "H", "--status", "deprecated"),
        ("complete",),
        ("show",),
    ]:
        fails(small.run(*args, *((NB,) if args != ("show",) else ())), problem)
    assert snapshot(small.root) == before
    args, said, action, changes = settle
    ok(small.run(*args, NB, "--by", "bob"), said + "\n")
    assert small.run("validate").exit_code == 0
    assert small.read()["history"][-1] == entry(action, changes)


def test_a_manifest_complete_while_packs_are_pending_is_settled_by_incomplete(
    small: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _complete_while_pending(small, "H", "I")
    several = (
        "pending while the backend is complete (2 packs are pending); mark the backend in "
        "development (valhalla-status incomplete), then set their statuses\n"
    )
    before = snapshot(small.root)
    set_epoch(monkeypatch, EPOCH2)
    fails(
        small.run("pack", "set", "I", "--status", "installed", NB),
        f"{M}:15: packs[0].status: {several}{M}:19: packs[1].status: {several}",
    )
    assert snapshot(small.root) == before
    ok(small.run("incomplete", NB, "--by", "bob"), "Backend marked in development\n")
    ok(small.run("validate"), f"{M}: valid (3 packs)\n")


def test_notes_option_alone_changes_only_the_notes(later: Workspace) -> None:
    """``incomplete --notes T`` when already incomplete: a notes change, recorded as such."""
    ok(
        later.run("incomplete", "--notes", "still working", NB, "--by", "bob"),
        "Notes updated; backend unchanged\n",
    )
    assert later.read()["history"][-1] == entry(
        "incomplete", {"notes": [None, "still working"]}, notes="still working"
    )


# --- set-version -----------------------------------------------------------------------------


def test_set_version(later: Workspace) -> None:
    ok(later.run("set-version", "1.1.0", NB, "--by", "bob"), "Version 1.0.0 → 1.1.0\n")
    expected = expected_after(version="1.1.0")
    expected["history"].append(entry("set-version", {"version": ["1.0.0", "1.1.0"]}))
    assert later.read() == expected


def test_set_version_with_notes_and_build_metadata(later: Workspace) -> None:
    result = later.run("set-version", "2.0.0-rc.1+build.5", "--notes", "RC", NB, "--by", "bob")
    ok(result, "Version 1.0.0 → 2.0.0-rc.1+build.5\n")
    assert later.read()["history"][-1] == entry(
        "set-version",
        {"version": ["1.0.0", "2.0.0-rc.1+build.5"], "notes": [None, "RC"]},
        notes="RC",
    )


@pytest.mark.parametrize("version", ["1.0", "1", "v1.2.3", "1.2.3.4", "01.2.3", "1.2.3-", "x"])
def test_set_version_rejects_a_bad_semver(later: Workspace, version: str) -> None:
    before = snapshot(later.root)
    fails(
        later.run("set-version", version, NB, "--by", "bob"),
        f"error: {version!r} is not a SemVer 2.0.0 version (like 1.2.3)\n",
    )
    assert snapshot(later.root) == before


@pytest.mark.parametrize(
    ("current", "lower"), [("1.0.0", "0.9.9"), ("2.0.0", "2.0.0-rc.1"), ("1.10.0", "1.9.0")]
)
def test_set_version_refuses_a_lower_one_unless_forced(
    later: Workspace, current: str, lower: str
) -> None:
    if current != "1.0.0":
        ok(later.run("set-version", current, NB, "--by", "bob"), f"Version 1.0.0 → {current}\n")
    before = snapshot(later.root)
    fails(
        later.run("set-version", lower, NB, "--by", "bob"),
        f"error: not lowering the version from {current} to {lower}; use --force to do so\n",
    )
    assert snapshot(later.root) == before
    ok(
        later.run("set-version", lower, "--force", NB, "--by", "bob"),
        f"Version {current} → {lower}\n",
    )
    data = later.read()
    assert data["system"]["version"] == lower
    assert data["history"][-1] == entry("set-version", {"version": [current, lower]})


# --- set-notes -------------------------------------------------------------------------------


def test_set_notes_and_clear(later: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(later.run("set-notes", "Line one\nLine two", NB, "--by", "bob"), "Notes updated\n")
    data = later.read()
    assert data["system"]["notes"] == "Line one\nLine two"
    assert data["history"][-1] == entry(
        "set-notes", {"notes": [None, "Line one\nLine two"]}, notes="Line one\nLine two"
    )
    assert "  notes: |-\n    Line one\n    Line two\n" in canonical(later)

    set_epoch(monkeypatch, EPOCH2 + 1)
    ok(later.run("set-notes", "--clear", NB, "--by", "bob"), "Notes cleared\n")
    data = later.read()
    assert data["system"]["notes"] is None
    assert data["system"]["updated_at"] == "2025-09-21T00:00:01Z"
    assert data["history"][-1] == entry(
        "set-notes", {"notes": ["Line one\nLine two", None]}, at="2025-09-21T00:00:01Z"
    )


@pytest.mark.parametrize("args", [(), ("text", "--clear")], ids=["neither", "both"])
def test_set_notes_needs_text_or_clear(later: Workspace, args: tuple[str, ...]) -> None:
    before = snapshot(later.root)
    result = later.run("set-notes", *args, NB)
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: give the notes TEXT or --clear, not both or neither\n")
    assert "Traceback" not in result.output
    assert snapshot(later.root) == before


# --- no-op mutations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("init",), f"No change: {M} already exists"),
        (("incomplete",), "No change: the backend is already in development"),
        (("set-version", "1.0.0"), "No change: the version is already 1.0.0"),
        (("set-notes", "--clear"), "No change: the notes are already empty"),
        (("pack", "set", "i", "--status", "pending"), "No change: pack I is already like that"),
        (
            ("pack", "set", "H", "--name", "Analyst Essentials", "--group", "Professional"),
            "No change: pack H is already like that",
        ),
    ],
)
def test_a_mutation_that_changes_nothing_writes_nothing(
    later: Workspace, args: tuple[str, ...], message: str
) -> None:
    before = snapshot(later.root)
    ignored = IGNORED if args == ("init",) else ""  # the manifest's repository is set up once
    ok(later.run(*args, NB, "--by", "bob"), message + "\n" + ignored)
    after = snapshot(later.root)
    if args == ("init",):
        assert b"\n/site/\n" in after.pop(".gitignore")
    assert after == before


def test_repeated_mutations_are_no_ops(later: Workspace) -> None:
    assert later.run("pack", "set", "I", "--status", "installed", NB, "--by", "bob").exit_code == 0
    for args, message in [
        (("complete", "--force"), "No change: the backend is already complete"),
        (("set-notes", "same"), "No change: the notes are already that"),
        (("set-version", "3.0.0"), "No change: the version is already 3.0.0"),
    ]:
        first = later.run(*args, NB, "--by", "bob")
        assert first.exit_code == 0 and not first.stderr.startswith("No change"), first.output
        before = snapshot(later.root)
        ok(later.run(*args, NB, "--by", "bob"), message + "\n")
        assert snapshot(later.root) == before
    assert [e["action"] for e in later.read()["history"]] == [
        "init",
        "pack-set",
        "complete",
        "set-notes",
        "set-version",
    ]


# --- history ---------------------------------------------------------------------------------


def history_workspace(later: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [
        ("pack", "set", "I", "--status", "installed"),
        ("set-version", "1.1.0", "--notes", "Minor release"),
        ("complete",),
    ]
    for minute, args in enumerate(steps, start=1):
        set_epoch(monkeypatch, EPOCH2 + 60 * minute)
        assert later.run(*args, NB, "--by", "erin").exit_code == 0


def history_ids(ws: Workspace) -> list[str]:
    """The ids of the history entries, newest first, as `history --json` gives them."""
    document = json.loads(ws.run("history", "--json", "--limit", "1000").stdout)
    return [e["id"] for e in document["history"]]


def test_history_newest_first(later: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    history_workspace(later, monkeypatch)
    complete, version, pack_set, init = history_ids(later)
    ok(
        later.run("history"),
        "",
        f"2025-09-21 00:03 UTC  {complete}  erin  complete  backend: in development → complete\n"
        f"2025-09-21 00:02 UTC  {version}  erin  set-version  version 1.0.0 → 1.1.0; "
        "notes updated  (Minor release)\n"
        f"2025-09-21 00:01 UTC  {pack_set}  erin  pack-set  Pack I: pending → installed\n"
        f"2025-09-20 00:00 UTC  {init}  alice  init\n",
    )
    ok(
        later.run("history", "--limit", "2"),
        "",
        f"2025-09-21 00:03 UTC  {complete}  erin  complete  backend: in development → complete\n"
        f"2025-09-21 00:02 UTC  {version}  erin  set-version  version 1.0.0 → 1.1.0; "
        "notes updated  (Minor release)\n",
    )
    ok(later.run("history", "--limit", "0"), "", "")


def test_history_json(later: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    history_workspace(later, monkeypatch)
    manifest = load_manifest(later.manifest)
    result = later.run("history", "--json", "--limit", "2")
    ok(result, "", result.stdout)
    document = json.loads(result.stdout)
    assert document == history_document(manifest, 2)
    assert [e["at"] for e in document["history"]] == [
        "2025-09-21T00:03:00Z",
        "2025-09-21T00:02:00Z",
    ]
    assert list(document["history"][0]) == [
        "at",
        "by",
        "action",
        "changes",
        "notes",
        "id",
        "landed_at",
    ]
    recorded = entry(
        "set-version",
        {"version": ["1.0.0", "1.1.0"], "notes": [None, "Minor release"]},
        at="2025-09-21T00:02:00Z",
        by="erin",
        notes="Minor release",
    )
    # The id of an inline entry: the name its file would have, from its text and position.
    ident = entry_file_name(HistoryEntry.model_validate(recorded), 2).removesuffix(".yaml")
    assert ident.startswith("20250921T000200Z-000002-")
    assert document["history"][1] == {
        **recorded,
        "id": ident,
        "landed_at": "2025-09-21T00:02:00Z",
    }
    full = json.loads(later.run("history", "--json", "--limit", "50").stdout)
    assert full == history_document(manifest)
    assert [e["action"] for e in full["history"]] == ["complete", "set-version", "pack-set", "init"]


def test_history_default_limit_is_20(later: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(1, 25):
        set_epoch(monkeypatch, EPOCH2 + n)
        assert later.run("set-notes", f"note {n}", NB, "--by", "bob").exit_code == 0
    lines = later.run("history").stdout.splitlines()
    assert len(lines) == 20
    assert lines[0].endswith("  set-notes  notes updated  (note 24)")
    assert lines[-1].endswith("  set-notes  notes updated  (note 5)")


# --- timestamps and the actor ----------------------------------------------------------------


def test_without_source_date_epoch_the_current_time_is_stamped(
    small: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    start = datetime.now(timezone.utc).replace(microsecond=0)
    ok(small.run("set-notes", "now", NB, "--by", "bob"), "Notes updated\n")
    end = datetime.now(timezone.utc)
    stamped = small.read()["system"]["updated_at"]
    moment = datetime.strptime(stamped, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert start <= moment <= end
    assert small.read()["history"][-1]["at"] == stamped


@pytest.mark.parametrize("value", ["yesterday", "1.5"])
def test_bad_source_date_epoch(
    small: Workspace, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    before = snapshot(small.root)
    fails(
        small.run("set-notes", "x", NB, "--by", "bob"),
        f"error: SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds\n",
    )
    assert snapshot(small.root) == before


def test_a_clock_before_completed_at_is_refused_clearly(
    later: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(later.run("pack", "set", "I", "--status", "installed", NB, "--by", "bob"),
       "Pack I: pending → installed\n")  # fmt: skip
    ok(later.run("complete", NB, "--by", "bob"),
       "Backend marked complete at 2025-09-21 00:00 UTC\n")  # fmt: skip
    before = snapshot(later.root)
    set_epoch(monkeypatch, EPOCH)
    fails(
        later.run("set-notes", "x", NB, "--by", "bob"),
        f"error: the time of this change, {EPOCH_TEXT} (from SOURCE_DATE_EPOCH={EPOCH}), is "
        f"before the newest history entry, {EPOCH2_TEXT} (manifest/valhalla.yaml); unset "
        "SOURCE_DATE_EPOCH or give a "
        "later time\n",
    )
    assert snapshot(later.root) == before
    set_epoch(monkeypatch, EPOCH2)  # the newest entry's second itself is allowed
    ok(later.run("incomplete", NB, "--by", "bob"), "Backend marked in development\n")


def test_by_defaults_to_git_user_name(
    small: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Grace Hopper\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    ok(small.run("set-notes", "x", NB), "Notes updated\n")
    assert small.read()["history"][-1]["by"] == "Grace Hopper"


def test_by_falls_back_to_the_login_name(small: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "opsbot")
    ok(small.run("set-notes", "x", NB), "Notes updated\n")
    assert small.read()["history"][-1]["by"] == "opsbot"


# --- global options --------------------------------------------------------------------------


def test_manifest_option_and_environment_variable(ws: Workspace, epoch: int) -> None:
    ws.write(small_manifest())
    other = ws.root / "elsewhere" / "other.yaml"
    other.parent.mkdir()
    data = small_manifest()
    data["system"]["version"] = "7.0.0"
    other.write_text(dump(data))

    assert ws.run("summary").stdout.startswith("Valhalla 1.0.0:")
    assert ws.run("--manifest", str(other), "summary").stdout.startswith("Valhalla 7.0.0:")
    env = {"VALHALLA_MANIFEST": "elsewhere/other.yaml"}
    assert ws.run("summary", env=env).stdout.startswith("Valhalla 7.0.0:")
    assert ws.run("--manifest", M, "summary", env=env).stdout.startswith("Valhalla 1.0.0:")

    ok(ws.run("set-version", "7.1.0", NB, "--by", "bob", env=env), "Version 7.0.0 → 7.1.0\n")
    assert ws.read()["system"]["version"] == "1.0.0"
    assert ws.run("validate", env=env).stderr == "elsewhere/other.yaml: valid (3 packs)\n"
    fails(
        ws.run("--manifest", "nowhere.yaml", "show"),
        "nowhere.yaml: no manifest here; run `valhalla-status init` to create one\n",
    )


def test_lock_held_by_another_process_times_out(small: Workspace) -> None:
    before = snapshot(small.root)
    with holding_lock(small.manifest.parent / LOCK_NAME):
        result = small.run(
            "set-notes", "x", NB, "--by", "bob", env={"VALHALLA_LOCK_TIMEOUT": "0.2"}
        )
    fails(
        result,
        f"error: {M} is locked by another valhalla-status process (waited 0.2 s); try again\n",
    )
    assert snapshot(small.root) == before


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "inf"])
def test_bad_lock_timeout_setting(small: Workspace, value: str) -> None:
    before = snapshot(small.root)
    fails(
        small.run("set-notes", "x", NB, "--by", "bob", env={"VALHALLA_LOCK_TIMEOUT": value}),
        f"error: VALHALLA_LOCK_TIMEOUT={value!r} is not a number of seconds (0 or more)\n",
    )
    assert snapshot(small.root) == before


# --- usage errors ----------------------------------------------------------------------------


# click words its usage errors slightly differently from version to version: each case checks
# the exit code, the usage line, and that the last line names what was wrong.
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--bogus", "show"), ["No such option", "--bogus"]),
        (("frobnicate",), ["No such command", "frobnicate"]),
        (("show", "--yaml"), ["No such option", "--yaml"]),
        (("pack", "show"), ["Missing argument", "ID"]),
        (("pack", "list", "--status", "done"), ["--status", "'done' is not one of", "pending"]),
        (
            ("pack", "add", "X", "--name", "N", "--group", "G", "--status", "gone"),
            ["--status", "'gone' is not one of", "installed"],
        ),
        (("pack", "add", "X", "--name", "N"), ["Missing option", "--group"]),
        (("history", "--limit", "-1"), ["--limit", "-1 is not in the range x>=0"]),
        (("history", "--limit", "many"), ["--limit", "'many' is not a valid integer"]),
        (("set-version",), ["Missing argument", "VERSION"]),
    ],
)
def test_usage_errors_exit_2(small: Workspace, args: tuple[str, ...], named: list[str]) -> None:
    before = snapshot(small.root)
    result = small.run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: main ")
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: ")
    assert all(word in last for word in named), last
    assert "Traceback" not in result.output
    assert snapshot(small.root) == before


@pytest.mark.parametrize(
    "command",
    [
        ["pack", "show", "{value}"],
        ["pack", "set", "{value}", "--status", "pending", "--by", "p"],
        ["pack", "remove", "{value}", "--by", "p"],
        ["set-version", "{value}", "--by", "p"],
        ["revert", "{value}", "--by", "p"],
        ["set-version", "0.0.1-{value}", "--by", "p"],
        ["pack", "list", "--group", "{value}"],
        ["diff", "{value}"],
        ["diff", "{value}..HEAD"],
    ],
)
def test_a_long_argument_is_quoted_short_in_its_error_line(
    small: Workspace, command: list[str]
) -> None:
    if command[0] == "diff":
        git(small.root, "init", "-q")
        git(small.root, "add", "-A")
        git(small.root, "commit", "-qm", "manifest")
    value = "x" * 100_000
    before = snapshot(small.root)
    result = small.run(*(arg.format(value=value) for arg in command))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 400, result.stderr[:400]
    assert re.search(r"\(100,0\d\d characters\)", result.stderr), result.stderr
    assert snapshot(small.root) == before


# --- real processes --------------------------------------------------------------------------


def run_process(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_env(SOURCE_DATE_EPOCH=str(EPOCH2)),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_only_the_command_line_tunes_the_cycle_collector(small: Workspace) -> None:
    """A program that imports the library keeps its own collector settings; the CLI collects
    reference cycles less often (a full read keeps every history entry alive)."""
    code = (
        "import gc\n"
        "gc.set_threshold(700, 10, 10)\n"
        "from valhalla_status.manifest import load_manifest\n"
        "from valhalla_status.site import build_site\n"
        "build_site(load_manifest('manifest/valhalla.yaml'), 'out')\n"
        "print(gc.get_threshold())\n"
        "from valhalla_status.cli import main\n"
        "main(['validate'], standalone_mode=False)\n"
        "print(gc.get_threshold())\n"
    )
    done = run_process([sys.executable, "-c", code], small.root)
    assert (done.returncode, done.stdout) == (0, "(700, 10, 10)\n(200000, 30, 30)\n"), done.stderr


@pytest.mark.slow
def test_python_dash_m(small: Workspace) -> None:
    expected = small.run("show").stdout
    done = run_process([sys.executable, "-m", "valhalla_status", "show"], small.root)
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")

    done = run_process(
        [sys.executable, "-m", "valhalla_status", "set-notes", "from -m", NB, "--by", "p"],
        small.root,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "Notes updated\n")
    assert small.read()["history"][-1] == entry(
        "set-notes", {"notes": [None, "from -m"]}, by="p", notes="from -m"
    )

    done = run_process(
        [sys.executable, "-m", "valhalla_status", "pack", "show", "nope"], small.root
    )
    assert done.returncode == 1
    assert done.stderr == "error: no pack NOPE; `valhalla-status pack list` shows the packs\n"

    done = run_process([sys.executable, "-m", "valhalla_status", "--nope"], small.root)
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: valhalla-status [OPTIONS] COMMAND [ARGS]...\n")


def test_console_script(small: Workspace) -> None:
    script = shutil.which("valhalla-status", path=str(Path(sys.executable).parent))
    assert script is not None, "the valhalla-status console script is not installed"
    done = run_process([script, "summary", "--json"], small.root)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == summary_document(load_manifest(small.manifest))

    bad = small.manifest.read_text().replace("status: pending", "status: done")
    small.manifest.write_text(bad)
    done = run_process([script, "validate"], small.root)
    assert done.returncode == 1
    assert done.stderr == (
        f"{M}:22: packs[1].status: 'done' is not one of installed, pending, deprecated, "
        "experimental\n"
    )
    assert "Traceback" not in done.stderr
