"""The fast paths keep their promises: the JSON encoder, the shipped schemas, the history
written one entry at a time, and the light start-up's paths.

Each test drives the real command line (in-process or as a real process) on real files.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import (
    EPOCH,
    EPOCH_TEXT,
    Workspace,
    clean_env,
    entry_files,
    other_files,
    run_tool,
    small_manifest,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from valhalla_status import site
from valhalla_status.cli import main as main_command
from valhalla_status.manifest import load_manifest
from valhalla_status.models import ACTIONS, HistoryEntry
from valhalla_status.rules.history import differences
from valhalla_status.storage import canonical
from valhalla_status.storage.layout import digest, entry_place

M = "manifest/valhalla.yaml"
H = "manifest/valhalla.history"
NB = "--no-build"


# --- 1. the published JSON means what the manifest says, or the build says why ------------


def _nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _nested_flow(depth: int) -> str:
    """YAML flow text of :func:`_nested`."""
    text = "1"
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f"{{k: {text}}}"
    return text


@pytest.mark.parametrize("depth", [200, 249, 252, 253])
def test_a_deeply_nested_extra_the_manifest_accepts_is_published_as_written(
    ws: Workspace, depth: int
) -> None:
    data = small_manifest()
    data["system"]["extra"] = {}
    text = yaml.safe_dump(data, sort_keys=False).replace(
        "extra: {}", f"extra: {{d: {_nested_flow(depth)}}}"
    )
    ws.write(text)
    assert ws.run("validate").exit_code == 0  # the manifest takes it...

    built = ws.run("build")  # ...so the site and show --json publish it
    assert built.exit_code == 0, built.output
    status = json.loads((ws.root / "site/status.json").read_text("utf-8"))
    assert status["extra"] == {"d": _nested(depth)}
    shown = ws.run("show", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["extra"] == {"d": _nested(depth)}


def _v2(ws: Workspace, *, by_hand: list[dict[str, Any]] | None = None) -> Path:
    """A schema_version 2 manifest made by init, plus entries written by hand after it."""
    result = ws.run("init", NB, env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert result.exit_code == 0, result.output
    folder = ws.root / H
    for seq, data in enumerate(by_hand or [], start=1):
        entry = HistoryEntry.model_validate(data)
        text = canonical.dump_entry(entry)
        _write(folder, canonical.entry_file_name(entry, seq, text), text)
    return folder


def _write(folder: Path, name: str, text: str) -> None:
    """Write the entry file ``name`` by hand where the tool would: in its subfolder."""
    path = folder / entry_place(name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, "utf-8")


def _entry_name(text: str, seq: int = 1) -> str:
    """The name of an entry file holding ``text``, made 2025-09-21 00:00: its hash is the
    text's, as a recorded entry's is (a made-up hash reads as an entry edited by hand)."""
    return f"20250921T000000Z-{seq:06d}-{digest(text.encode())[:8]}.yaml"


def _put_back(ws: Workspace, folder: Path, seq: int) -> None:
    """Write by hand the entry that takes every field back to what the main file holds (the
    changes `record` would write), so that the history explains the manifest again."""
    read = load_manifest(ws.manifest, explained=False)
    changes = {d.key: [d.said, d.actual] for d in differences(read)}
    entry = HistoryEntry.model_validate(
        {"at": "2025-09-21T00:00:01Z", "by": "hand", "action": "set-notes", "changes": changes,
         "notes": "put back"}
    )  # fmt: skip
    text = canonical.dump_entry(entry)
    _write(folder, canonical.entry_file_name(entry, seq, text), text)


@pytest.mark.parametrize("depth", [200, 245, 250, 252])
def test_deeply_nested_history_values_are_published_as_written(ws: Workspace, depth: int) -> None:
    entry = {
        "at": "2025-09-21T00:00:00Z",
        "by": "hand",
        "action": "set-notes",
        "changes": {"extra": [_nested(depth), {}]},
        "notes": None,
    }
    folder = _v2(ws)
    text = (
        "at: '2025-09-21T00:00:00Z'\nby: hand\naction: set-notes\nchanges:\n"
        f"  extra: [{_nested_flow(depth)}, {{}}]\nnotes: null\n"
    )
    _write(folder, _entry_name(text), text)
    assert ws.run("validate").exit_code == 0

    built = ws.run("build")
    assert built.exit_code == 0, built.output
    history = json.loads((ws.root / "site/history.json").read_text("utf-8"))
    assert history["history"][0]["changes"] == entry["changes"]
    listed = ws.run("history", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["history"][0]["changes"] == entry["changes"]


FLOATS = ["1.0e-7", "1.0e+16", "5.0e-324", "-0.0", "0.1", "1.7976931348623157e+308", "-2.5e-300"]


def test_numbers_text_and_control_characters_in_extra_and_history_read_back_the_same(
    ws: Workspace,
) -> None:
    values = "[" + ", ".join([*FLOATS, "9" * 99, "-" + "9" * 99, "0", "-1"]) + "]"
    text_value = '"a\\x01\\u2028\\x7f\\x85é😀\\t\\"\\\\ </script>"'
    data = small_manifest()
    data["schema_version"] = 1
    manifest_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).replace(
        "extra: {}", f"extra: {{n: {values}, t: {text_value}, {text_value}: 1}}"
    )
    manifest_text = manifest_text.replace(
        "changes: {}", f"changes: {{extra: [{values}, -0.0], notes: [{text_value}, null]}}"
    )
    ws.write(manifest_text)
    expected = yaml.safe_load(manifest_text)
    assert ws.run("validate").exit_code == 0

    built = ws.run("build")
    assert built.exit_code == 0, built.output
    status = json.loads((ws.root / "site/status.json").read_text("utf-8"))
    history = json.loads((ws.root / "site/history.json").read_text("utf-8"))
    assert status["extra"] == expected["system"]["extra"]
    assert history["history"][0]["changes"] == expected["history"][0]["changes"]
    assert math.copysign(1, status["extra"]["n"][3]) == -1  # -0.0 keeps its sign
    shown = ws.run("show", "--json")
    assert json.loads(shown.output)["extra"] == expected["system"]["extra"]


_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ODD_CHANGES = (
    'changes:\n  "packs.K.status": ["a\\x02\\uFFFF", "b\\x0b"]\n'
    '  version: ["1\\x01", {"\\x04k": "\\x05"}]\n  "extra": [["\\x1f"], null]\n'
    '  "packs.Z": [null, {id: "Z\\x07", name: "n\\x08", group: g, status: pending}]\n'
)


@pytest.mark.parametrize("action", ACTIONS)
def test_control_characters_in_history_values_never_reach_the_feed_or_the_pages(
    ws: Workspace, action: str
) -> None:
    folder = _v2(ws)
    text = f"at: '2025-09-21T00:00:00Z'\nby: hand\naction: {action}\n{_ODD_CHANGES}notes: null\n"
    _write(folder, _entry_name(text), text)
    _put_back(ws, folder, 2)
    assert ws.run("validate").exit_code == 0

    built = ws.run("build")

    assert built.exit_code == 0, built.output
    site_folder = ws.root / "site"
    for name in ("feed.xml", "badge.svg"):
        xml.dom.minidom.parse(str(site_folder / name))  # well-formed XML
    for path in [site_folder / "feed.xml", *site_folder.rglob("*.html")]:
        found = _NOT_XML_TEXT.search(path.read_text("utf-8"))
        assert found is None, (path.name, found)


# --- 2. the shipped schemas describe every published document ------------------------------


def _with_history(data: dict[str, Any], count: int) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["history"] += [
        {
            "at": f"2025-09-21T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "by": "bot ★ שלום",
            "action": "set-notes",
            "changes": {
                "notes": [None if n % 2 else "x\ny", "é\x01\u2028"],
                "extra": [_nested(40), [1.0e-7, -0.0, 10**99]],
            },
            "notes": "line one\nline two" if n % 3 else None,
        }
        for n in range(count)
    ]
    data["system"]["updated_at"] = data["history"][-1]["at"]
    return data


def _hostile(data: dict[str, Any]) -> dict[str, Any]:
    data["system"].update(
        name="Валгалла ★", backend_complete=True, completed_at=EPOCH_TEXT, notes="a\n\nb\n"
    )
    data["system"]["extra"] = {"deep": _nested(60), "f": [1.0e-7, -0.0], "t": "\x01\u2028"}
    data["packs"][0]["notes"] = "why\nbecause"
    data["packs"][1]["status"] = "deprecated"  # a complete backend has no pending pack
    data["packs"].append(
        {"id": "Z-9_", "name": "🚀" * 100, "group": "ש" * 60, "status": "experimental"}
    )
    return data


@pytest.mark.slow
@pytest.mark.parametrize("count", [0, 49, 50, 100, 101])
@pytest.mark.parametrize("hostile", [False, True], ids=["plain", "hostile"])
def test_every_published_document_validates_against_the_schema_it_names(
    ws: Workspace, count: int, hostile: bool
) -> None:
    data = _with_history(small_manifest(), count)
    if hostile:
        data = _hostile(data)
    ws.write(data)
    built = ws.run("build")
    assert built.exit_code == 0, built.output
    site_folder = ws.root / "site"
    checked = 0
    for path in sorted(site_folder.rglob("*.json")):
        relative = path.relative_to(site_folder).as_posix()
        if relative.startswith("schema/"):
            continue
        document = json.loads(path.read_text("utf-8"))
        if relative == "shields.json":
            schema_path = site_folder / "schema/shields.schema.json"
        else:
            schema_path = (path.parent / document["$schema"]).resolve()
        schema = json.loads(schema_path.read_text("utf-8"))
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
        checked += 1
    pages = max(1, -(-(count + 1) // 50))
    assert len(list((site_folder).glob("history/*.json"))) == pages - 1
    assert checked >= 3 + pages + 8 + len(data["packs"])


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's schema folder that the build reads instead of the real one."""
    copy_folder = tmp_path / "package-schema"
    shutil.copytree(site.SCHEMA_FOLDER, copy_folder)
    monkeypatch.setattr(site, "SCHEMA_FOLDER", copy_folder)
    return copy_folder


@pytest.mark.parametrize("damage", ["gone", "emptied", "one missing", "a folder in its place"])
def test_a_damaged_schema_folder_in_the_package_fails_the_build_in_one_line(
    ws: Workspace, shipped_copy: Path, damage: str
) -> None:
    ws.write(small_manifest())
    if damage == "gone":
        shutil.rmtree(shipped_copy)
    elif damage == "emptied":
        for path in shipped_copy.iterdir():
            path.unlink()
    elif damage == "one missing":
        (shipped_copy / "history.schema.json").unlink()
    else:
        (shipped_copy / "status.schema.json").unlink()
        (shipped_copy / "status.schema.json").mkdir()

    result = ws.run("build")

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "reinstall valhalla-status" in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (ws.root / "site").exists()


# --- 3. a change writes its own entry; what it leaves must still be the history ------------


def _history_json(ws: Workspace) -> list[dict[str, Any]]:
    result = ws.run("history", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output)["history"])


def _change(ws: Workspace, *args: str) -> None:
    result = ws.run(*args, "--by", "tester", NB, env={"SOURCE_DATE_EPOCH": str(EPOCH + 86400)})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "leftover",
    ["other main", "this main, entry there", "temp file", "this main, new entry"],
)
def test_a_change_after_a_killed_writer_records_exactly_what_happened(
    ws: Workspace, leftover: str
) -> None:
    folder = _v2(ws)
    main_hash = digest(ws.manifest.read_bytes())
    [(first, first_file)] = entry_files(folder).items()
    ghost = HistoryEntry.model_validate(
        {
            "at": "2025-09-20T12:00:00Z",
            "by": "ghost",
            "action": "set-notes",
            "changes": {},
            "notes": None,
        }
    )
    ghost_text = canonical.dump_entry(ghost)
    ghost_name = canonical.entry_file_name(ghost, 1, ghost_text)
    if leftover == "other main":  # killed before its main file was replaced: never happened
        (folder / f".pending-{'0' * 64}-{ghost_name}").write_text(ghost_text, "utf-8")
    elif leftover == "this main, entry there":  # renamed already, the pending copy stayed
        (folder / f".pending-{main_hash}-{first}").write_bytes(first_file.read_bytes())
    elif leftover == "temp file":
        (folder / ".tmp-123-abcd").write_text("half", "utf-8")
    else:  # killed after the main file was replaced, before the rename: it happened
        (folder / f".pending-{main_hash}-{ghost_name}").write_text(ghost_text, "utf-8")
    happened = leftover == "this main, new entry"

    _change(ws, "pack", "set", "K", "--status", "pending")

    assert other_files(folder) == []
    history = _history_json(ws)
    assert [e["by"] for e in history] == [
        "tester",
        *(["ghost"] if happened else []),
        history[-1]["by"],
    ]
    assert len(entry_files(folder)) == len(history)
    assert ws.run("fmt", "--check").exit_code == 0


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


@pytest.mark.parametrize("replaces", [0, 1, 2], ids=["pending", "main", "final name"])
def test_a_change_killed_at_any_rename_leaves_history_and_main_file_agreeing(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, replaces: int
) -> None:
    """Killed at a rename (the pending entry's, the main file's, the entry's final name's):
    readers see the change whole or not at all; the next change goes on from there."""
    _v2(ws)
    real, calls = os.replace, {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > replaces:
            raise Killed
        real(*args, **kwargs)

    monkeypatch.setattr(os, "replace", dying)
    with pytest.raises(Killed):
        ws.runner.invoke(
            main_command,
            ["pack", "set", "K", "--status", "pending", NB],
            env={"SOURCE_DATE_EPOCH": str(EPOCH + 3600)},
            catch_exceptions=False,
        )
    monkeypatch.setattr(os, "replace", real)

    happened = replaces >= 2  # the main file was replaced
    status = json.loads(ws.run("pack", "show", "K", "--json").output)["status"]
    assert status == ("pending" if happened else "installed")
    assert len(_history_json(ws)) == (2 if happened else 1)
    _change(ws, "pack", "set", "H", "--status", "pending")
    assert len(_history_json(ws)) == (3 if happened else 2)
    assert len(entry_files(ws.root / H)) == len(_history_json(ws))
    assert other_files(ws.root / H) == []
    assert ws.run("fmt", "--check").exit_code == 0


def test_a_change_keeps_entries_merged_or_added_by_hand_and_reads_in_order(ws: Workspace) -> None:
    merged = [
        {
            "at": f"2025-09-20T1{n}:00:00Z",
            "by": f"branch{n}",
            "action": "set-notes",
            "changes": {},
            "notes": None,
        }
        for n in range(3)
    ]
    folder = _v2(ws, by_hand=merged)
    # the same change made on two branches at two places: identical bytes, two names
    twin, twin_file = list(entry_files(folder).items())[-1]
    twin_name = twin.replace("-000003-", "-000004-")
    shutil.copy(twin_file, folder / entry_place(twin_name))
    before = {name: path.read_bytes() for name, path in entry_files(folder).items()}

    _change(ws, "set-notes", "after the merge")

    after = {name: path.read_bytes() for name, path in entry_files(folder).items()}
    assert other_files(folder) == []
    assert {k: v for k, v in after.items() if k in before} == before
    [new] = [name for name in after if name not in before]
    assert "-000005-" in new  # after every entry it read
    assert [e["by"] for e in _history_json(ws)][:2] == ["tester", "branch2"]
    assert ws.run("fmt", "--check").exit_code == 0


def test_a_hand_edited_entry_is_left_by_a_change_and_fmt_still_puts_it_right(
    ws: Workspace,
) -> None:
    folder = _v2(ws)
    [first] = entry_files(folder).values()
    # still valid, but not canonical: fmt must rewrite it, a change must not
    first.write_text(first.read_text("utf-8") + "# a comment\n", "utf-8")
    hand = first.read_bytes()

    _change(ws, "set-notes", "one")
    assert first.read_bytes() == hand
    assert ws.run("fmt", "--check").exit_code == 1

    assert ws.run("fmt").exit_code == 0
    assert ws.run("fmt", "--check").exit_code == 0
    assert _history_json(ws)[0]["by"] == "tester"
    assert len(entry_files(folder)) == 2
    assert other_files(folder) == []


def test_init_force_and_migrate_still_write_the_whole_history(ws: Workspace) -> None:
    folder = _v2(
        ws,
        by_hand=[{"at": "2025-09-20T12:00:00Z", "by": "x", "action": "set-notes", "notes": None}],
    )
    _change(ws, "set-notes", "one")
    assert len(entry_files(folder)) == 3
    assert other_files(folder) == []

    forced = ws.run("init", "--force", NB, env={"SOURCE_DATE_EPOCH": str(EPOCH + 2 * 86400)})
    assert forced.exit_code == 0, forced.output
    assert len(entry_files(folder)) == 1
    assert other_files(folder) == []
    assert ws.run("fmt", "--check").exit_code == 0

    v1 = _with_history(small_manifest(), 5)
    shutil.rmtree(folder)
    ws.write(v1)
    migrated = ws.run("migrate")
    assert migrated.exit_code == 0, migrated.output
    # init, the 5 changes, and the migrate entry recording what the history did not explain
    assert len(entry_files(folder)) == 7
    assert other_files(folder) == []
    assert ws.run("fmt", "--check").exit_code == 0
    assert [e["action"] for e in _history_json(ws)] == ["migrate"] + ["set-notes"] * 5 + ["init"]


@pytest.mark.slow
def test_parallel_changes_each_write_their_own_entry_and_lose_none(ws: Workspace) -> None:
    _v2(ws)
    env = clean_env(SOURCE_DATE_EPOCH=str(EPOCH + 86400))
    commands = [
        [sys.executable, "-m", "valhalla_status", "pack", "set", pack, "--status", "pending", NB]
        for pack in ("H", "I", "J", "K")
    ]
    processes = [
        subprocess.Popen(c, cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for c in commands
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    names = entry_files(ws.root / H)
    assert other_files(ws.root / H) == []
    assert sorted(name.split("-")[1] for name in names) == [f"{n:06d}" for n in range(5)]
    history = _history_json(ws)
    assert sorted(next(iter(e["changes"])) for e in history[:4]) == [
        f"packs.{p}.status" for p in "HIJK"
    ]
    assert ws.run("fmt", "--check").exit_code == 0


# --- 4. paths: where the manifest is found, what .gitignore gets ---------------------------


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=clean_env()
    ).stdout


def _tool(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_tool(cwd, *args, env=clean_env(SOURCE_DATE_EPOCH=str(EPOCH)))


@pytest.mark.parametrize(
    ("site_name", "manifest_folder"),
    [
        ("[x]", "manifest"),
        ("x\\y", "manifest"),
        ("a*b", "[m]"),
        ("q?", "m*"),
        ("a\nb", "manifest"),
        ("out/[s] #1", "m\\n"),
        (" lead", "sp ace"),
    ],
    ids=["brackets", "backslash", "star", "question", "newline", "nested", "spaces"],
)
def test_init_ignores_exactly_the_site_and_lock_files_whatever_their_names(
    tmp_path: Path, site_name: str, manifest_folder: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    # files of the user's that a too-wide pattern would hide
    for name in ("axb", "b/keep", "x/b/keep", "qq", "mm/keep", "s/keep", "m/keep"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("mine\n", "utf-8")

    made = _tool(
        repo, "--site", site_name, "--manifest", f"{manifest_folder}/valhalla.yaml", "init"
    )
    assert made.returncode == 0, made.stderr

    status = _git(repo, "status", "--porcelain", "-z", "--untracked-files=all")
    untracked = sorted(entry[3:] for entry in status.split("\0") if entry)
    ours = sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    )
    committed = [p for p in ours if not p.startswith(f"{site_name}/")]
    committed = [p for p in committed if not p.rsplit("/", 1)[-1].endswith(".lock")]
    assert untracked == sorted(committed)
    assert "axb" in untracked and "x/b/keep" in untracked and "qq" in untracked


@pytest.mark.slow
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_init_twice_on_a_gitignore_keeps_its_line_ends_and_adds_nothing_twice(
    tmp_path: Path, newline: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_bytes(f"*.pyc{newline}/build/{newline}".encode())
    assert _tool(repo, "init", NB).returncode == 0
    once = (repo / ".gitignore").read_bytes()
    assert _tool(repo, "init", NB).returncode == 0
    assert (repo / ".gitignore").read_bytes() == once
    if newline == "\r\n":
        assert once.count(b"\n") == once.count(b"\r\n")
    assert once.count(b"/site/") == 1


@pytest.mark.slow
@pytest.mark.parametrize("sub", ["sub dir", "é/ünï", "a\nb/c", "deep/er/still"])
def test_commands_from_a_subfolder_or_through_a_link_find_the_manifest_above(
    tmp_path: Path, sub: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert _tool(repo, "init", NB).returncode == 0
    inner = repo / sub
    inner.mkdir(parents=True)
    (tmp_path / "link").symlink_to(inner, target_is_directory=True)

    for cwd, status in ((inner, "pending"), (tmp_path / "link", "deprecated")):
        # A change with its rebuild: the manifest and the site above are the ones written.
        changed = _tool(cwd, "pack", "set", "K", "--status", status, "--by", "t")
        assert changed.returncode == 0, changed.stderr
        published = json.loads((repo / "site/status.json").read_text(encoding="utf-8"))
        assert [p["status"] for p in published["packs"] if p["id"] == "K"] == [status]
        assert not (cwd / "site").exists()
        valid = _tool(cwd, "validate")
        assert valid.returncode == 0, valid.stderr
        shown = os.path.relpath(repo / M, os.path.realpath(cwd))
        assert valid.stderr.startswith(shown.replace("\n", "\\n") + ":") or valid.stderr.startswith(
            shown + ":"
        ), valid.stderr


@pytest.mark.parametrize(
    "spelling",
    [
        "{abs}",
        "{rel}",
        "./{rel}",
        "{rel_dir}/../manifest/valhalla.yaml",
        "{abs_dir}//valhalla.yaml",
    ],
)
def test_manifest_given_in_any_spelling_of_the_same_file_is_that_file(
    ws: Workspace, spelling: str
) -> None:
    ws.write(small_manifest())
    path = spelling.format(
        abs=str(ws.manifest), rel=M, rel_dir="manifest", abs_dir=str(ws.manifest.parent)
    )
    result = ws.run("--manifest", path, "validate")
    assert result.exit_code == 0, result.output
    shown = ws.run("--manifest", path, "pack", "show", "h", "--json")
    assert json.loads(shown.output)["id"] == "H"


@pytest.mark.parametrize(
    "spelling", ["manifest", "manifest/", "manifest/valhalla.yaml/", "manifest/valhalla.yaml/."]
)
def test_manifest_given_as_a_folder_or_with_a_trailing_slash_is_one_clear_line(
    ws: Workspace, spelling: str
) -> None:
    ws.write(small_manifest())
    for command in (["validate"], ["show"], ["pack", "set", "K", "--status", "pending", NB]):
        result = ws.run("--manifest", spelling, *command)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert "internal error" not in result.output


_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")  # how a URL was told from a path before
SOURCE_TEXT = st.lists(
    st.sampled_from([*"aZ09+.-:/ é\\_?#@%", "://", "http", "HTTPS", "file"]), max_size=8
).map("".join) | st.sampled_from(["http://x", "https://x/", "ftp://x", "c:/x", "1a://x", "://x"])


@settings(max_examples=400, deadline=None)
@given(text=SOURCE_TEXT)
@example(text="http://@")  # a URL, refused for its (empty) user information
def test_the_status_client_tells_a_url_from_a_path_as_it_always_did(text: str) -> None:
    from valhalla_status.client import InvalidArgument, StatusClient

    try:
        is_url = StatusClient(text, timeout=1).is_url
    except InvalidArgument as exc:
        refusals = ("only http:// and https:// URLs", "user information in the URL")
        assert any(refusal in str(exc) for refusal in refusals), str(exc)
        is_url = True
    assert is_url is bool(_SCHEME.match(text))


@pytest.mark.parametrize("spelling", ["m/v.yaml/", "m/v.yaml/.", "m/..", ".", ""])
def test_init_refuses_a_manifest_path_that_names_a_folder_as_every_other_command_does(
    ws: Workspace, spelling: str
) -> None:
    (ws.root / "m").mkdir()
    result = ws.run("--manifest", spelling, "init", NB)
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "names a folder" in result.output
    assert sorted(p.name for p in ws.root.rglob("*")) == ["m"]  # nothing written
    assert ws.run("--manifest", spelling, "validate").exit_code == 1
