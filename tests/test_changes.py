"""One change, typed, in one set of words: every reader says a change the same way."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from conftest import Workspace, small_manifest

from valhalla_status.rules import changes
from valhalla_status.rules.changes import (
    BackendChange,
    CompletedAtChange,
    ExtraChange,
    Item,
    NotesChange,
    PackAdded,
    PackFieldChange,
    PackRemoved,
    UpdatedChange,
    VersionChange,
    Words,
    items,
)

REVIEW = Words(review=True, names={"K": "Executor Pro"})
RECORD = {"id": "K", "name": "Executor Pro", "group": "Professional", "status": "installed"}
WHEN = "2025-09-21T00:00:00Z"

# A recorded change -> its typed item -> its line, and its line for a reviewer.
KINDS: list[tuple[dict[str, list[Any]], Item, str, str]] = [
    (
        {"version": ["1.1.0", "1.0.0"]},
        VersionChange("version", "1.1.0", "1.0.0"),
        "version 1.1.0 → 1.0.0",
        "version 1.1.0 → 1.0.0 (lower)",
    ),
    (
        {"backend_complete": [False, True], "completed_at": [None, WHEN]},
        BackendChange("backend_complete", False, True, completed_at=WHEN),
        "backend: in development → complete",
        "backend: in development → complete (completed_at 2025-09-21 00:00 UTC)",
    ),
    (
        {"backend_complete": [True, False], "completed_at": [WHEN, None]},
        BackendChange("backend_complete", True, False),
        "backend: complete → in development",
        "backend: complete → in development",
    ),
    (
        {"completed_at": ["2025-09-20T00:00:00Z", WHEN]},
        CompletedAtChange("completed_at", "2025-09-20T00:00:00Z", WHEN),
        "backend: completed_at 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
        "backend: completed_at 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
    ),
    (
        {"notes": [None, "Line one\nLine two"]},
        NotesChange("notes", None, "Line one\nLine two"),
        "notes updated",
        'notes: (none) → "Line one\\nLine two"',
    ),
    (
        {"notes": ["old", None]},
        NotesChange("notes", "old", None),
        "notes cleared",
        'notes: "old" → (none)',
    ),
    (
        {"name": ["Valhalla", "Valhalla 2"]},
        Item("name", "Valhalla", "Valhalla 2"),
        "name: Valhalla → Valhalla 2",
        'name: "Valhalla" → "Valhalla 2"',
    ),
    (
        {"extra": [{"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}]},
        ExtraChange("extra", {"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}),
        'extra: changed "b", "c"',
        'extra: changed "b", "c"',
    ),
    (
        {"updated_at": ["2025-09-20T00:00:00Z", WHEN]},
        UpdatedChange("updated_at", "2025-09-20T00:00:00Z", WHEN),
        "updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
        "updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
    ),
    (
        {"packs.K": [None, RECORD]},
        PackAdded("packs.K", None, RECORD, pack="K"),
        "Pack K added: Executor Pro (Professional, installed)",
        "Pack K added: Executor Pro (Professional, installed)",
    ),
    (
        {"packs.K": [RECORD, None]},
        PackRemoved("packs.K", RECORD, None, pack="K"),
        "Pack K removed",
        "Pack K removed: Executor Pro (was Professional, installed)",
    ),
    (
        {"packs.K.status": ["installed", "pending"]},
        PackFieldChange("packs.K.status", "installed", "pending", pack="K", field="status"),
        "Pack K: installed → pending",
        "Pack K: installed → pending (Executor Pro)",
    ),
    (
        {"packs.K.name": ["Executor Pro", "Executor Max"]},
        PackFieldChange("packs.K.name", "Executor Pro", "Executor Max", pack="K", field="name"),
        "Pack K: name Executor Pro → Executor Max",
        'Pack K: name "Executor Pro" → "Executor Max"',
    ),
    (
        {"packs.K.group": ["Professional", "Core"]},
        PackFieldChange("packs.K.group", "Professional", "Core", pack="K", field="group"),
        "Pack K: group Professional → Core",
        'Pack K: group "Professional" → "Core" (Executor Pro)',
    ),
    (
        {"packs.K.notes": [None, "vendor fix"]},
        PackFieldChange("packs.K.notes", None, "vendor fix", pack="K", field="notes"),
        "Pack K: note updated",
        'Pack K: note (none) → "vendor fix" (Executor Pro)',
    ),
    (
        {"packs.K.notes": ["vendor fix", None]},
        PackFieldChange("packs.K.notes", "vendor fix", None, pack="K", field="notes"),
        "Pack K: note cleared",
        'Pack K: note "vendor fix" → (none) (Executor Pro)',
    ),
]


@pytest.mark.parametrize(("recorded", "item", "line", "review"), KINDS)
def test_each_kind_of_change_is_one_typed_item_with_its_words(
    recorded: dict[str, list[Any]], item: Item, line: str, review: str
) -> None:
    assert items(recorded) == [item]
    assert (item.line(), item.line(REVIEW)) == (line, review)


def test_a_pack_recorded_as_something_else_is_still_told() -> None:
    told = items({"packs.X": [None, "not a pack"], "packs.Y": [{"id": "Y"}, None]})
    assert changes.lines(told, REVIEW) == [
        "Pack X added",
        "Pack Y removed: (none) (was (none), (none))",
    ]


def test_a_field_no_renderer_knows_is_told_by_its_name() -> None:
    told = items({"packs.K.owner": ["ann", "bob"], "colour": ["red", None]})
    assert changes.lines(told) == ["colour: red → (none)", "Pack K: owner ann → bob"]


def test_changes_are_told_system_first_then_each_pack_its_status_first() -> None:
    told = items(
        {
            "packs.K.name": ["A", "B"],
            "packs.K.status": ["installed", "pending"],
            "packs.L.group": ["G", "H"],
            "packs.K.notes": [None, "why"],
            "notes": [None, "x"],
            "version": ["1.0.0", "1.1.0"],
        }
    )
    assert changes.lines(told) == [
        "version 1.0.0 → 1.1.0",
        "notes updated",
        "Pack K: installed → pending",
        "Pack K: name A → B",
        "Pack K: note updated",
        "Pack L: group G → H",
    ]
    assert changes.sentence(told) == (
        "version 1.0.0 → 1.1.0; notes updated; Pack K: installed → pending; name A → B; "
        "note updated; Pack L: group G → H"
    )


@pytest.mark.parametrize(
    ("action", "recorded", "title", "details", "message"),
    [
        (
            "complete",
            {"backend_complete": [False, True], "completed_at": [None, WHEN], "notes": [None, "x"]},
            "Backend marked complete",
            ["notes updated"],
            "Backend marked complete at 2025-09-21 00:00 UTC",
        ),
        (
            "complete",
            {"notes": [None, "x"]},
            "Backend marked complete",
            ["notes updated"],
            "Notes updated; backend unchanged",
        ),
        (
            "incomplete",
            {"backend_complete": [True, False]},
            "Backend marked in development",
            [],
            "Backend marked in development",
        ),
        (
            "set-version",
            {"version": ["1.0.0", "1.1.0"]},
            "Version 1.0.0 → 1.1.0",
            [],
            "Version 1.0.0 → 1.1.0",
        ),
        ("set-notes", {"notes": ["x", None]}, "Notes cleared", [], "Notes cleared"),
        (
            "pack-set",
            {"packs.K.status": ["installed", "pending"], "packs.K.notes": [None, "why"]},
            "Pack K: installed → pending (and 1 more)",
            ["Pack K: installed → pending", "Pack K: note updated"],
            "Pack K: installed → pending; note updated",
        ),
        ("pack-remove", {"packs.K": [RECORD, None]}, "Pack K removed", [], "Pack K removed"),
        (
            "record",
            {"packs.W.status": ["installed", "deprecated"], "version": ["1.0.0", "1.1.0"]},
            "Hand edit recorded",
            ["version 1.0.0 → 1.1.0", "Pack W: installed → deprecated"],
            "Recorded: version 1.0.0 → 1.1.0; Pack W: installed → deprecated",
        ),
        ("init", {}, "Manifest created", [], None),
    ],
)
def test_an_entry_is_titled_detailed_and_reported_from_its_items(
    action: str, recorded: dict[str, list[Any]], title: str, details: list[str], message: str | None
) -> None:
    told = items(recorded)
    assert changes.title(action, told) == title
    assert changes.details(action, told) == details
    if message is not None:
        assert changes.message(action, told) == message


def test_a_revert_is_reported_with_the_entry_it_undoes() -> None:
    told = items({"version": ["1.2.0", "1.1.0"]})
    assert changes.message("revert", told, reverted="20250920T120000Z-000002-43b5f6a5") == (
        "Reverted 20250920T120000Z-000002-43b5f6a5: version 1.2.0 → 1.1.0"
    )


def test_values_are_shown_plain_quoted_or_clipped() -> None:
    assert [changes.plain(v) for v in (None, "a\nb", 1, True, {"a": 1})] == [
        "(none)",
        "a b",
        "1",
        "true",
        '{"a": 1}',
    ]
    assert [changes.quoted(v) for v in (None, "a\nb", "é")] == ["(none)", '"a\\nb"', '"é"']
    assert changes.clipped("x" * 100) == '"' + "x" * 58 + "…"
    assert changes.when("not a time") == '"not a time"'


def test_every_reader_words_one_change_the_same(ws: Workspace) -> None:
    env = {"SOURCE_DATE_EPOCH": "1758412800"}
    ws.write(small_manifest())
    shutil.copy(ws.manifest, ws.root / "before.yaml")
    said = ws.run("pack", "set", "I", "--status", "installed", "--by", "bob", env=env)
    assert (said.exit_code, said.stdout, said.stderr) == (0, "", "Pack I: pending → installed\n")
    words = "Pack I: pending → installed"

    history = ws.run("history", "--limit", "1")
    assert history.stdout.endswith(f"  bob  pack-set  {words}\n")

    page = (ws.root / "site" / "history.html").read_text(encoding="utf-8")
    assert f"<strong><bdi>{words}</bdi></strong> by <bdi>bob</bdi></li>" in page
    feed = ET.parse(ws.root / "site" / "feed.xml").getroot()
    atom = "{http://www.w3.org/2005/Atom}"
    assert feed.findall(f"{atom}entry")[0].findtext(f"{atom}title") == words

    diff = ws.run("diff", "before.yaml", str(ws.manifest))
    assert f"  {words} (Reporter Premium)\n" in diff.stdout
    markdown = ws.run("diff", "before.yaml", str(ws.manifest), "--format", "markdown")
    assert "| I | Reporter Premium | pending → installed |\n" in markdown.stdout
