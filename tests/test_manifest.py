"""Manifest I/O: round trip, canonical form, atomic writes and what a killed writer leaves."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import EPOCH_TEXT, MANIFEST_REL, Workspace, clean_env, dump, small_manifest, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import as_recorded

from valhalla_status.errors import ManifestError
from valhalla_status.manifest import (
    HEADER,
    dump_manifest,
    load_manifest,
    parse_manifest,
    write_manifest,
)
from valhalla_status.models import FORBIDDEN_CHAR, Manifest
from valhalla_status.service import default_manifest

M = MANIFEST_REL


def rich_manifest() -> dict:
    """Unicode, multi-line notes, nested extra, fractions of seconds, every change shape."""
    data = small_manifest()
    data["system"].update(
        notes="Line one: with a colon\n  indented line\n# not a comment",
        backend_complete=True,
        completed_at="2025-09-20T00:00:00.250Z",
        updated_at="2025-09-20T00:00:00.250Z",
        extra={"owner": {"team": "Kärnteam", "ids": [1, 2.5, None, True]}, "empty": {}},
    )
    data["packs"][1]["status"] = "deprecated"  # no pack is pending while the backend is complete
    pack = {"id": "X_1-B", "name": "Ünïcødé «pack» 👩‍💻", "group": "Ω", "status": "experimental"}
    data["packs"].append(pack)
    data["history"].append(
        {
            "at": "2025-09-20T00:00:00.250Z",
            "by": "Zoë O'Brien",
            "action": "pack-add",
            "changes": {"packs.X_1-B": [None, dict(pack)]},  # a copy: safe_dump would alias it
            "notes": "with 'quotes' and \"double\" ones",
        }
    )
    return data


@pytest.mark.parametrize("kind", ["small", "rich", "default"])
def test_round_trip(tmp_path: Path, kind: str) -> None:
    """load -> write -> load gives the same model; the text written is dump_manifest's."""
    path = tmp_path / "valhalla.yaml"
    if kind == "default":
        write_manifest(path, default_manifest(by="alice"))
    else:
        path.write_text(dump(small_manifest() if kind == "small" else rich_manifest()))
    first = load_manifest(path)
    write_manifest(path, first)
    text = path.read_text(encoding="utf-8")
    assert text == dump_manifest(first)
    second = load_manifest(path)
    assert second == first
    assert dump_manifest(second) == text
    assert write_manifest(path, second) is None  # already canonical: nothing written
    assert path.read_text(encoding="utf-8") == text
    expected = ["valhalla.history", "valhalla.yaml"] if kind == "default" else ["valhalla.yaml"]
    assert sorted(os.listdir(tmp_path)) == expected


def test_canonical_text_of_the_rich_manifest(tmp_path: Path) -> None:
    text = dump_manifest(parse_manifest(dump(rich_manifest())))
    assert text.startswith(HEADER + "schema_version: 1\nsystem:\n  name: Valhalla\n")
    assert "\r" not in text and text.endswith("\n") and not text.endswith("\n\n")
    assert (
        "  notes: |-\n    Line one: with a colon\n      indented line\n    # not a comment\n"
        in text
    )
    assert "  updated_at: '2025-09-20T00:00:00.250000Z'\n" in text
    assert "- id: X_1-B\n  name: Ünïcødé «pack» 👩‍💻\n  group: Ω\n  status: experimental\n" in text
    assert (
        "    packs.X_1-B: [null, {id: X_1-B, name: Ünïcødé «pack» 👩‍💻, group: Ω, "
        "status: experimental}]\n" in text
    )
    assert "  extra:\n    owner:\n      team: Kärnteam\n      ids:\n      - 1\n" in text
    assert "\\u" not in text and "\\x" not in text  # nothing escaped that need not be


def test_key_order_is_canonical_whatever_the_input_order(tmp_path: Path) -> None:
    data = small_manifest()
    shuffled = {
        "history": data["history"],
        "packs": [dict(reversed(list(p.items()))) for p in data["packs"]],
        "system": dict(reversed(list(data["system"].items()))),
        "schema_version": 1,
    }
    assert dump_manifest(parse_manifest(dump(shuffled))) == dump_manifest(
        parse_manifest(dump(data))
    )


def test_bom_and_crlf_are_read_and_normalised_by_fmt(ws: Workspace) -> None:
    text = dump(small_manifest())
    ws.write(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert ws.run("validate").exit_code == 0
    result = ws.run("fmt")
    assert (result.exit_code, result.stderr) == (0, f"{M}: reformatted\n")
    assert ws.manifest.read_bytes() == (HEADER + text).encode()


def test_a_byte_order_mark_is_not_canonical(ws: Workspace, epoch: int) -> None:
    assert ws.run("init", "--no-build", "--by", "alice").exit_code == 0
    canonical_bytes = ws.manifest.read_bytes()
    ws.write(b"\xef\xbb\xbf" + canonical_bytes)
    result = ws.run("fmt", "--check")
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {M} is not in canonical form; run `valhalla-status fmt`\n",
    )
    assert ws.manifest.read_bytes() == b"\xef\xbb\xbf" + canonical_bytes
    assert ws.run("fmt").stderr == f"{M}: reformatted\n"
    assert ws.manifest.read_bytes() == canonical_bytes


# Text a person may type into a name or notes: anything but the forbidden characters.
_name_chars = st.characters(blacklist_categories=("Cs",)).filter(
    lambda c: not FORBIDDEN_CHAR.match(c)
)
names = st.text(_name_chars, min_size=1, max_size=40).filter(lambda s: s.strip() != "")
notes = st.text(st.one_of(_name_chars, st.just("\n")), min_size=1, max_size=80).filter(
    lambda s: s.strip() != ""
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, group=names, note=notes, by=names)
def test_any_valid_text_survives_the_canonical_dump(
    name: str, group: str, note: str, by: str
) -> None:
    data = small_manifest()
    data["packs"][0].update(name=name, group=group)
    data["system"]["notes"] = note
    data["history"][0].update(by=by, notes=note, changes={"notes": [None, note]})
    manifest = Manifest.model_validate(data)
    text = dump_manifest(manifest)
    assert as_recorded(parse_manifest(text)) == manifest
    assert dump_manifest(parse_manifest(text)) == text


def test_write_refuses_an_invalid_manifest(tmp_path: Path) -> None:
    path = tmp_path / "valhalla.yaml"
    path.write_text(dump(small_manifest()))
    before = path.read_bytes()
    good = load_manifest(path)
    duplicate = good.packs[0]
    bad = good.model_copy(update={"packs": [*good.packs, duplicate]})
    with pytest.raises(ManifestError) as caught:
        write_manifest(path, bad)
    assert caught.value.problems == [f"{path}: packs[3].id: duplicate id 'H' (also packs[0])"]
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["valhalla.yaml"]


def test_write_keeps_the_file_mode(ws: Workspace, epoch: int) -> None:
    ws.write(small_manifest())
    ws.manifest.chmod(0o640)
    assert ws.run("set-notes", "x", "--no-build", "--by", "bob").exit_code == 0
    assert stat.S_IMODE(ws.manifest.stat().st_mode) == 0o640


# A writer that gets as far as its temp file and then hangs (so the test can kill it there).
_STUCK_WRITER = textwrap.dedent(
    """
    import os, sys, time
    def stuck(*args, **kwargs):
        print("temp file written", flush=True)
        time.sleep(600)
    os.replace = stuck
    from valhalla_status.cli import main
    main(sys.argv[1:], prog_name="valhalla-status")
    """
)


def kill_a_writer_mid_write(ws: Workspace, args: list[str]) -> list[str]:
    """Run a real writer process, SIGKILL it after its temp file is written; return leftovers."""
    process = subprocess.Popen(
        [sys.executable, "-c", _STUCK_WRITER, *args],
        cwd=ws.root,
        env=clean_env(SOURCE_DATE_EPOCH="1758326400"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "temp file written\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return sorted(n for n in os.listdir(ws.manifest.parent) if ".tmp-" in n)


@pytest.mark.parametrize(
    "next_write",
    [
        ["set-notes", "after the crash", "--no-build", "--by", "bob"],
        ["pack", "set", "I", "--status", "installed", "--no-build", "--by", "bob"],
        ["fmt"],
    ],
    ids=["set-notes", "pack-set", "fmt"],
)
def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(
    ws: Workspace, epoch: int, next_write: list[str]
) -> None:
    ws.write(dump(small_manifest()).replace("version: 1.0.0", "version:  1.0.0"))
    before = ws.manifest.read_bytes()

    leftovers = kill_a_writer_mid_write(ws, ["set-notes", "never lands", "--no-build"])
    assert len(leftovers) == 1 and leftovers[0].startswith(".valhalla.yaml.tmp-")
    leftover = ws.manifest.parent / leftovers[0]
    assert b"never lands" in leftover.read_bytes()  # the new content, never put in place
    assert ws.manifest.read_bytes() == before  # the manifest is the old one, whole
    assert ws.run("validate").exit_code == 0

    result = ws.run(*next_write)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(ws.manifest.parent)) == [".valhalla.yaml.lock", "valhalla.yaml"]
    assert "never lands" not in ws.manifest.read_text(encoding="utf-8")


def test_no_op_mutation_after_a_crash_still_writes_nothing(ws: Workspace, epoch: int) -> None:
    """A no-op writes nothing at all, so the manifest's bytes stay; only a write cleans up."""
    ws.write(small_manifest())
    kill_a_writer_mid_write(ws, ["set-notes", "never lands", "--no-build"])
    before = snapshot(ws.root)
    result = ws.run("set-notes", "--clear", "--no-build", "--by", "bob")
    assert (result.exit_code, result.stderr) == (0, "No change: the notes are already empty\n")
    assert snapshot(ws.root)[M] == before[M]


def test_yaml_timestamps_unquoted_are_read_as_rfc3339(tmp_path: Path) -> None:
    text = dump(small_manifest()).replace(f"'{EPOCH_TEXT}'", "2025-09-20T00:00:00Z")
    assert "updated_at: 2025-09-20T00:00:00Z" in text
    manifest = parse_manifest(text)
    assert dump_manifest(manifest) == dump_manifest(parse_manifest(dump(small_manifest())))


def test_safe_dump_of_the_canonical_text_is_plain_yaml() -> None:
    """The canonical text is ordinary YAML any safe loader reads to the same data."""
    manifest = parse_manifest(dump(rich_manifest()))
    loaded = yaml.safe_load(dump_manifest(manifest))
    assert loaded == manifest.model_dump(
        mode="json", exclude={"system": {"base_url"}, "packs": {"__all__": {"notes"}}}
    )


def test_canonical_text_does_not_depend_on_libyaml() -> None:
    """libyaml's emitter escapes characters beyond U+FFFF and ends a document holding a '|+'
    scalar with '...'; the canonical text has neither, with or without libyaml."""
    data = small_manifest()
    data["packs"][0]["name"] = "Rocket 🚀"
    data["system"]["notes"] = "kept trailing blank line\n\n"
    text = dump_manifest(parse_manifest(dump(data)))
    assert "  name: Rocket 🚀\n" in text
    assert "  notes: |+\n    kept trailing blank line\n\n  updated_at:" in text
    assert text.endswith("  notes: null\n")
    assert parse_manifest(text).system.notes == "kept trailing blank line\n\n"


def test_a_symlinked_manifest_is_written_through_not_replaced(ws: Workspace, epoch: int) -> None:
    ws.write(small_manifest())
    link = ws.root / "link.yaml"
    link.symlink_to(M)
    args = ("--manifest", "link.yaml")
    result = ws.run(*args, "set-notes", "via the link", "--no-build", "--by", "bob")
    assert (result.exit_code, result.stderr) == (0, "Notes updated\n")
    assert link.is_symlink()
    assert ws.read()["system"]["notes"] == "via the link"
    (ws.manifest.parent / "valhalla.yaml").write_text(dump(small_manifest()))
    assert ws.run(*args, "fmt").stderr == "link.yaml: reformatted\n"
    assert link.is_symlink()
    assert ws.manifest.read_text(encoding="utf-8").startswith(HEADER)
    # One lock for both names, beside the real file.
    assert sorted(os.listdir(ws.root)) == ["link.yaml", "manifest"]
    assert sorted(os.listdir(ws.manifest.parent)) == [".valhalla.yaml.lock", "valhalla.yaml"]


def test_base_url_is_written_after_description_only_when_set() -> None:
    data = small_manifest()
    data["system"] = {"base_url": "https://status.example/valhalla/", **data["system"]}
    text = dump_manifest(parse_manifest(dump(data)))
    assert (
        "  description: Valhalla professional capital markets system\n"
        "  base_url: https://status.example/valhalla/\n"
        "  version: 1.0.0\n"
    ) in text
    assert "base_url" not in dump_manifest(parse_manifest(dump(small_manifest())))


def test_yes_no_on_off_are_text_not_booleans(ws: Workspace) -> None:
    """Only true/false are booleans: a pack may be named "No" without quotes (the Norway
    problem), and the canonical form quotes it so every YAML 1.1 reader agrees."""
    data = small_manifest()
    ws.write(dump(data).replace("name: Reporter Premium", "name: No"))
    assert ws.run("fmt").exit_code == 0
    text = ws.manifest.read_text(encoding="utf-8")
    assert "  name: 'No'\n" in text
    assert load_manifest(ws.manifest).packs[1].name == "No"


@pytest.mark.parametrize(
    "value",
    ["YES", "NO", "ON", "OFF", "TRUE", "FALSE", "NULL", "Yes", "no", "Null", "on", "True"],
)
def test_a_pack_id_name_or_group_that_yaml_reads_as_a_boolean_or_null_stays_quoted(
    value: str,
) -> None:
    data = small_manifest()
    data["schema_version"] = 2
    data["packs"][0]["id"] = value.upper()
    data["packs"][1]["name"] = value
    data["packs"][2]["group"] = value
    manifest = Manifest.model_validate(data)
    text = dump_manifest(manifest)
    assert f"- id: '{value.upper()}'\n" in text
    assert f"  name: '{value}'\n" in text
    assert f"  group: '{value}'\n" in text


@pytest.mark.parametrize(
    "value",
    [
        "a " * 49 + "b",  # 99 characters of words, past every default line width
        "Word-" * 20,
        "x" * 100,
        "a/b&c(d)+e.f_g-h " * 5 + "end",
    ],
    ids=["words", "dashes", "one word", "mixed"],
)
def test_long_plain_names_and_notes_are_written_on_one_line(value: str) -> None:
    data = small_manifest()
    data["schema_version"] = 2
    data["packs"][0]["name"] = value.strip()[:100]
    data["packs"][1]["notes"] = (value * 20).strip()[:2000]
    text = dump_manifest(Manifest.model_validate(data))
    assert f"  name: {value.strip()[:100]}\n" in text
    assert f"  notes: {(value * 20).strip()[:2000]}\n" in text


# --- a complete backend has no pending pack -------------------------------------------------

ONE_PENDING = (
    "pending while the backend is complete; set the pack's status (valhalla-status pack set {} "
    "--status installed) or mark the backend in development (valhalla-status incomplete)"
)
SEVERAL_PENDING = (
    "pending while the backend is complete ({} packs are pending); mark the backend in "
    "development (valhalla-status incomplete), then set their statuses"
)
READ_COMMANDS = [
    ("validate",),
    ("build",),
    ("show",),
    ("show", "--json"),
    ("summary",),
    ("pack", "list"),
    ("pack", "show", "H"),
    ("history",),
    ("fmt", "--check"),
]


def _complete_with_pending_layout_2(ws: Workspace, *pending: str) -> str:
    """The default manifest (schema_version 2) hand-edited: complete, these packs pending."""
    assert ws.run("init", "--no-build", "--by", "alice").exit_code == 0
    text = ws.manifest.read_text(encoding="utf-8")
    text = text.replace(
        "  backend_complete: false\n  completed_at: null\n",
        f"  backend_complete: true\n  completed_at: '{EPOCH_TEXT}'\n",
    )
    for pack_id in pending:
        text = text.replace(
            f"- id: {pack_id}\n  status: installed\n", f"- id: {pack_id}\n  status: pending\n"
        )
    ws.manifest.write_text(text, encoding="utf-8")
    return text


def _status_line(text: str, pack_id: str) -> int:
    """The line number of the pack's status (which is pending)."""
    lines = text.splitlines()
    start = lines.index(f"- id: {pack_id}")
    number = next(n for n in range(start, len(lines)) if lines[n].startswith("  status: ")) + 1
    assert lines[number - 1] == "  status: pending"
    return number


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_a_complete_backend_with_a_pending_pack_is_invalid_in_schema_version_1(
    ws: Workspace, epoch: int, command: tuple[str, ...]
) -> None:
    data = small_manifest()  # I pending
    data["system"].update(backend_complete=True, completed_at=EPOCH_TEXT)
    ws.write(data)
    line = _status_line(ws.manifest.read_text(encoding="utf-8"), "I")
    before = snapshot(ws.root)
    result = ws.run(*command)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"{M}:{line}: packs[1].status: {ONE_PENDING.format('I')}\n"
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_a_complete_backend_with_pending_packs_is_invalid_in_schema_version_2_each_pack_named(
    ws: Workspace, epoch: int, command: tuple[str, ...]
) -> None:
    text = _complete_with_pending_layout_2(ws, "K", "L", "W")
    before = snapshot(ws.root)
    result = ws.run(*command)
    assert (result.exit_code, result.stdout) == (1, "")
    message = SEVERAL_PENDING.format(3)
    assert result.stderr == (
        f"{M}:{_status_line(text, 'K')}: packs[3].status: {message}\n"
        f"{M}:{_status_line(text, 'L')}: packs[4].status: {message}\n"
        f"{M}:{_status_line(text, 'W')}: packs[15].status: {message}\n"
    )
    assert snapshot(ws.root) == before


def test_the_rule_is_located_on_the_status_line_of_the_one_pending_pack(
    ws: Workspace, epoch: int
) -> None:
    text = _complete_with_pending_layout_2(ws, "K")
    assert _status_line(text, "K") == 27
    result = ws.run("validate")
    assert (result.exit_code, result.stderr) == (
        1,
        f"{M}:27: packs[3].status: {ONE_PENDING.format('K')}\n",
    )


def test_the_rule_is_reported_with_the_other_problems(ws: Workspace) -> None:
    data = small_manifest()  # I pending
    data["system"].update(backend_complete=True, completed_at=None)
    data["packs"].append(dict(data["packs"][0]))
    ws.write(data)
    result = ws.run("validate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{M}:9: system.completed_at: must be set when backend_complete is true\n"
        f"{M}:24: packs[3].id: duplicate id 'H' (also packs[0])\n"
        f"{M}:19: packs[1].status: {ONE_PENDING.format('I')}\n"
    )


def test_a_manifest_built_in_memory_keeps_the_rule_too(tmp_path: Path) -> None:
    path = tmp_path / "valhalla.yaml"
    path.write_text(dump(small_manifest()))
    before = path.read_bytes()
    good = load_manifest(path)
    system = good.system.model_copy(
        update={"backend_complete": True, "completed_at": good.system.updated_at}
    )
    with pytest.raises(ManifestError) as caught:
        write_manifest(path, good.model_copy(update={"system": system}))
    assert caught.value.problems == [f"{path}: packs[1].status: {ONE_PENDING.format('I')}"]
    assert path.read_bytes() == before


def test_history_entries_read_back_are_the_models_validation_makes(ws: Workspace) -> None:
    from valhalla_status.models import LandedEntry

    assert ws.run("init", "--no-build", "--by", "a").exit_code == 0
    assert (
        ws.run("pack", "set", "K", "--status", "pending", "--notes", "n", "--by", "b").exit_code
        == 0
    )
    for _ in range(2):  # parsed, then taken from what was kept of each entry
        entries = load_manifest(ws.manifest).history
        assert len(entries) == 2
        for entry in entries:
            validated = LandedEntry.model_validate(entry.model_dump())
            assert entry == validated and validated == entry
            assert entry.model_fields_set == validated.model_fields_set
            assert entry.__pydantic_extra__ is validated.__pydantic_extra__ is None
            assert entry.model_copy(update={"by": "c"}).by == "c"
