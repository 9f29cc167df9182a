"""The layout of schema_version 2: a main file, and one history file per change beside it.

What is promised: each change writes one new history file and the main file, nothing else;
the main file holds no history and no updated_at; errors in a history file are located in that
file; files that do not belong are named, and files a platform writes by itself (.DS_Store,
Thumbs.db…) are ignored; a schema_version 1 manifest keeps its layout; packs
carry a note and since when they have had their status.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import EPOCH, EPOCH_TEXT, Workspace, edit, entry_files, small_manifest, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valhalla_status.storage.layout import EXAMPLE_NAME, classify, entry_place

M = "manifest/valhalla.yaml"
H = "manifest/valhalla.history"
NB = "--no-build"


def at(ws: Workspace, hours: int, *args: str) -> str:
    """Run a command stamped ``hours`` after EPOCH; return stderr (exit 0 asserted)."""
    result = ws.run(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH + hours * 3600)})
    assert result.exit_code == 0, result.output
    return result.stderr


def fails(ws: Workspace, *args: str) -> str:
    result = ws.run(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr


def history_folder(ws: Workspace) -> Path:
    return ws.root / H


def entries(ws: Workspace) -> list[str]:
    """The names of the entry files in the history folder, wherever they are in it."""
    return list(entry_files(history_folder(ws)))


def entry_file(ws: Workspace, name: str) -> Path:
    """The file of the entry ``name``, where it is in the history folder."""
    return entry_files(history_folder(ws))[name]


def tree(ws: Workspace) -> list[str]:
    """Every file in the history folder, by its path in it."""
    folder = history_folder(ws)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def in_place(names: list[str]) -> list[str]:
    """The files of a history folder that holds the entries ``names``, each in its subfolder,
    and nothing else."""
    return sorted(map(entry_place, names))


def document(ws: Workspace, *args: str) -> dict:  # type: ignore[type-arg]
    result = ws.run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def v2(ws: Workspace) -> Workspace:
    at(ws, 0, "init", NB, "--by", "alice")
    return ws


# --- one change, two files ---------------------------------------------------------------------


def test_a_change_writes_one_history_file_and_the_main_file_only(v2: Workspace) -> None:
    before = snapshot(v2.root)
    at(v2, 1, "pack", "set", "K", "--status", "pending", NB, "--by", "bob")
    after = snapshot(v2.root)
    changed = {p for p in {*before, *after} if before.get(p) != after.get(p)}
    [new] = [p for p in changed if p.startswith(H)]
    assert changed == {M, new}
    name = new.rsplit("/", 1)[1]
    text = after[new].decode()
    assert name == f"20250920T010000Z-000001-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
    assert text == (
        "at: '2025-09-20T01:00:00Z'\nby: bob\naction: pack-set\n"
        "changes:\n  packs.K.status: [installed, pending]\nnotes: null\n"
    )
    main = after[M].decode()
    assert "updated_at" not in main and "history" not in main
    assert document(v2, "show", "--json")["updated_at"] == "2025-09-20T01:00:00Z"


def test_a_change_leaves_every_earlier_history_file_as_it_is(v2: Workspace) -> None:
    at(v2, 1, "set-version", "1.1.0", NB, "--by", "bob")
    first, second = entry_files(history_folder(v2)).values()
    # Valid but not canonical (quoted differently): a change does not rewrite it, fmt does.
    second.write_text(second.read_text().replace("by: bob", 'by: "bob"'))
    before = {p: (p.read_bytes(), p.stat().st_ino) for p in (first, second)}

    at(v2, 2, "pack", "set", "K", "--status", "pending", NB)
    at(v2, 3, "set-notes", "Go-live Friday", NB)

    assert {p: (p.read_bytes(), p.stat().st_ino) for p in (first, second)} == before
    assert len(entries(v2)) == 4
    assert tree(v2) == in_place(entries(v2))
    assert [e["action"] for e in document(v2, "history", "--json")["history"]] == [
        "set-notes",
        "pack-set",
        "set-version",
        "init",
    ]
    assert fails(v2, "fmt", "--check") == (
        f"error: {H}/{entry_place(second.name)} is not in canonical form; run "
        "`valhalla-status fmt`\n"
    )
    assert at(v2, 3, "fmt") == f"{M}: reformatted\n"
    assert at(v2, 3, "fmt", "--check") == f"{M}: canonical\n"
    assert len(entries(v2)) == 4
    assert tree(v2) == in_place(entries(v2))


def test_history_is_read_in_time_order_whatever_the_names(v2: Workspace) -> None:
    for hour, status in ((3, "pending"), (5, "deprecated"), (7, "installed")):
        at(v2, hour, "pack", "set", "K", "--status", status, NB)
    history = document(v2, "history", "--json")["history"]
    assert [e["at"][11:13] for e in history] == ["07", "05", "03", "00"]
    assert document(v2, "show", "--json")["updated_at"] == "2025-09-20T07:00:00Z"


def test_a_schema_version_1_manifest_keeps_its_layout_when_changed(ws: Workspace) -> None:
    ws.write(small_manifest())
    at(ws, 1, "pack", "set", "I", "--status", "installed", NB, "--notes", "done")
    data = ws.read()
    assert data["schema_version"] == 1
    assert len(data["history"]) == 2
    assert data["system"]["updated_at"] == "2025-09-20T01:00:00Z"
    assert data["packs"][1]["notes"] == "done"
    assert "notes" not in data["packs"][0]  # absent unless set
    assert not history_folder(ws).exists()
    assert at(ws, 1, "fmt", "--check") == f"{M}: canonical\n"


def test_two_manifests_in_one_folder_keep_separate_histories(ws: Workspace) -> None:
    at(ws, 0, "--manifest", "m/a.yaml", "init", NB)
    at(ws, 0, "--manifest", "m/b.yaml", "init", NB)
    at(ws, 1, "--manifest", "m/a.yaml", "set-version", "2.0.0", NB)
    assert len(os.listdir(ws.root / "m/a.history")) == 2
    assert len(os.listdir(ws.root / "m/b.history")) == 1


NAMES = ["a.yaml", "a.yml", "a.json", "a"]


def _refused_as_shared(name: str, other: str) -> str:
    return (
        f"error: m/{name}: its history folder m/a.history/ would be shared with m/{other}, "
        "beside it (a history folder is named after its manifest without the suffix, and "
        "belongs to the .yaml one); give this manifest another name\n"
    )


@pytest.mark.parametrize(
    ("first", "second"), [pytest.param(a, b, id=f"{a}+{b}") for a in NAMES for b in NAMES if a != b]
)
def test_a_history_folder_belongs_to_one_manifest(ws: Workspace, first: str, second: str) -> None:
    at(ws, 0, "--manifest", f"m/{first}", "init", NB)
    at(ws, 1, "--manifest", f"m/{first}", "set-version", "2.0.0", NB)
    before = snapshot(ws.root)
    refused = fails(ws, "--manifest", f"m/{second}", "init", NB)
    if second == "a.yaml":  # the .yaml manifest keeps the folder: the entries are not its own
        assert refused == (
            f"error: m/a.history/ holds 2 recorded changes of m/{first}, beside it (a history "
            "folder is named after its manifest without the suffix); give m/a.yaml another "
            "name\n"
        )
    else:
        assert refused == _refused_as_shared(second, first)
    assert snapshot(ws.root) == before
    assert at(ws, 2, "--manifest", f"m/{first}", "validate") == f"m/{first}: valid (16 packs)\n"
    assert len(os.listdir(ws.root / "m/a.history")) == 2


@pytest.mark.parametrize("name", NAMES[1:])
@pytest.mark.parametrize("command", [["validate"], ["show"], ["set-version", "3.0.0", NB]])
def test_a_manifest_beside_the_yaml_one_of_its_name_is_refused_by_every_command(
    ws: Workspace, name: str, command: list[str]
) -> None:
    at(ws, 0, "--manifest", "m/a.yaml", "init", NB)
    (ws.root / "m" / name).write_bytes((ws.root / "m/a.yaml").read_bytes())
    before = snapshot(ws.root)
    assert fails(ws, "--manifest", f"m/{name}", *command) == _refused_as_shared(name, "a.yaml")
    assert snapshot(ws.root) == before
    assert at(ws, 1, "--manifest", "m/a.yaml", "validate") == "m/a.yaml: valid (16 packs)\n"


def test_a_history_file_removed_by_hand_leaves_a_value_the_history_no_longer_explains(
    v2: Workspace,
) -> None:
    at(v2, 1, "set-version", "1.1.0", NB)
    assert len(document(v2, "history", "--json")["history"]) == 2
    newest = entries(v2)[-1]
    entry_file(v2, newest).unlink()
    init = entries(v2)[0].removesuffix(".yaml")
    assert fails(v2, "validate") == (
        f'{M}:7: system.version: "1.1.0" here, but the history says "1.0.0" (init {init}); '
        "record the edit with `valhalla-status record --notes WHY`, or put the value back\n"
    )


def _deleted(ws: Workspace) -> None:
    ws.manifest.unlink()


def _moved_away(ws: Workspace) -> None:
    ws.manifest.rename(ws.manifest.with_name("old.yaml"))


GONE = {"deleted": _deleted, "moved away": _moved_away}


@pytest.mark.parametrize("gone", sorted(GONE))
@pytest.mark.parametrize("changes", [0, 2])
def test_init_never_deletes_the_recorded_changes_of_a_missing_main_file(
    v2: Workspace, gone: str, changes: int
) -> None:
    for hour in range(1, changes + 1):
        at(v2, hour, "set-version", f"1.{hour}.0", NB)
    count = changes + 1
    recorded = "change" if count == 1 else "changes"
    GONE[gone](v2)
    before = snapshot(v2.root)
    refused = (
        f"error: {H}/ holds {count} recorded {recorded} but the main file is missing; restore "
        f"it from git (`git checkout -- {M}`), or move the folder away (`init --force` "
        "replaces them)\n"
    )
    assert fails(v2, "init", NB) == refused
    assert fails(v2, "migrate") == refused
    assert snapshot(v2.root) == before
    assert at(v2, 9, "init", "--force", NB) == (
        f"Created {M} with 16 packs; it replaces the {count} recorded {recorded} in {H}/\n"
    )
    assert len(entries(v2)) == 1
    assert tree(v2) == in_place(entries(v2))
    assert at(v2, 9, "validate") == f"{M}: valid (16 packs)\n"


def test_a_main_file_restored_from_git_finds_its_history_where_init_left_it(
    ws: Workspace,
) -> None:
    _git(ws.root, "init", "-q", "-b", "main")
    at(ws, 0, "init", NB)
    at(ws, 1, "pack", "set", "K", "--status", "pending", NB)
    _git(ws.root, "add", "-A")
    _git(ws.root, "commit", "-qm", "K pending")
    ws.manifest.unlink()
    assert fails(ws, "init", NB).startswith(f"error: {H}/ holds 2 recorded changes")
    _git(ws.root, "checkout", "--", M)
    assert at(ws, 2, "validate") == f"{M}: valid (16 packs)\n"
    assert len(document(ws, "history", "--json")["history"]) == 2


# --- where the entry files are: a subfolder per hash's first two digits ------------------------


def everything(ws: Workspace) -> dict[str, bytes | None]:
    """Everything in the history folder by its path in it: a file's bytes, None for a folder."""
    folder = history_folder(ws)
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def flatten(ws: Workspace) -> list[str]:
    """Move every entry file up into the history folder itself, as earlier versions wrote them
    (their subfolders removed); returns the entries' names."""
    folder = history_folder(ws)
    for name, path in entry_files(folder).items():
        path.rename(folder / name)
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
    assert [p.parent for p in folder.rglob("*")] == [folder] * len(entries(ws))
    return entries(ws)


def unknown(place: str) -> str:
    return (
        f"{H}/{place}: not a history entry file (names look like {EXAMPLE_NAME}); move it out "
        "of the folder\n"
    )


def test_a_change_writes_its_entry_into_the_subfolder_of_its_hash_and_nothing_else(
    v2: Workspace,
) -> None:
    at(v2, 1, "set-version", "1.1.0", NB)
    before, names = everything(v2), entries(v2)
    at(v2, 2, "pack", "set", "K", "--status", "pending", NB, "--by", "bob")
    after = everything(v2)
    [name] = set(entries(v2)) - set(names)
    text = after[entry_place(name)]
    assert text is not None
    digest = hashlib.sha256(text).hexdigest()
    assert name.endswith(f"-{digest[:8]}.yaml")
    assert entry_place(name) == f"{digest[:2]}/{name}"
    added = {entry_place(name): text}
    if digest[:2] not in before:
        added[digest[:2]] = None
    assert after == {**before, **added}


def test_entries_written_flat_by_earlier_versions_are_still_the_history(v2: Workspace) -> None:
    at(v2, 1, "set-version", "1.1.0", NB, "--by", "bob")
    at(v2, 2, "pack", "set", "K", "--status", "pending", "--notes", "why", NB)
    history = document(v2, "history", "--json")
    shown = document(v2, "show", "--json")
    names = flatten(v2)
    assert len(names) == 3
    assert at(v2, 2, "validate") == f"{M}: valid (16 packs)\n"
    assert document(v2, "history", "--json") == history
    assert document(v2, "show", "--json") == shown
    assert at(v2, 2, "fmt", "--check") == f"{M}: canonical\n"
    flat = everything(v2)

    at(v2, 3, "set-notes", "after the move", NB)
    [new] = set(entries(v2)) - set(names)
    new_text = (history_folder(v2) / entry_place(new)).read_bytes()
    assert everything(v2) == {
        **flat,
        entry_place(new).split("/")[0]: None,
        entry_place(new): new_text,
    }
    assert at(v2, 3, "validate") == f"{M}: valid (16 packs)\n"
    assert len(document(v2, "history", "--json")["history"]) == 4

    bobs = history_folder(v2) / names[1]
    bobs.write_text(bobs.read_text().replace("by: bob", "by: ''"))
    assert fails(v2, "validate") == f"{H}/{names[1]}:2: by: must not be empty\n"


@pytest.mark.parametrize("where", ["another entry's subfolder", "1A", "zz", "1a2", "sub/1a"])
def test_an_entry_file_outside_its_own_subfolder_is_no_entry_and_is_named(
    v2: Workspace, where: str
) -> None:
    at(v2, 1, "set-version", "1.1.0", NB)
    name, path = list(entry_files(history_folder(v2)).items())[-1]
    if where == "another entry's subfolder":
        where = "00" if entry_place(name).startswith("ff") else "ff"
    copy = history_folder(v2) / where / name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(path.read_bytes())
    before = snapshot(v2.root)
    # A two-hex-digit subfolder is looked into; any other folder is a name that does not belong.
    shown = f"{where}/{name}" if re.fullmatch("[0-9a-f]{2}", where) else where.split("/")[0]
    assert fails(v2, "validate") == unknown(shown)
    assert fails(v2, "set-notes", "x", NB) == unknown(shown)
    assert snapshot(v2.root) == before


def test_the_same_entry_flat_and_in_its_subfolder_counts_once_when_the_bytes_agree(
    v2: Workspace,
) -> None:
    at(v2, 1, "set-version", "1.1.0", NB)
    at(v2, 2, "pack", "set", "K", "--status", "pending", NB)
    history = document(v2, "history", "--json")
    for name, path in entry_files(history_folder(v2)).items():
        (history_folder(v2) / name).write_bytes(path.read_bytes())
    assert at(v2, 2, "validate") == f"{M}: valid (16 packs)\n"
    assert document(v2, "history", "--json") == history
    assert len(history["history"]) == 3


def test_the_same_entry_flat_and_in_its_subfolder_with_other_bytes_names_the_flat_file(
    v2: Workspace,
) -> None:
    at(v2, 1, "set-version", "1.1.0", NB, "--by", "bob")
    for name, path in entry_files(history_folder(v2)).items():
        flat = history_folder(v2) / name
        flat.write_text(path.read_text().replace("notes: null", "notes: other"))
        before = snapshot(v2.root)
        assert fails(v2, "validate") == unknown(name)
        assert fails(v2, "set-notes", "x", NB) == unknown(name)
        assert snapshot(v2.root) == before
        flat.unlink()


def _spying(real: Any, looked: list[str]) -> Any:
    """``real``, noting in ``looked`` every path it is called with."""

    def spy(*args: object, **kwargs: object) -> object:
        if args and isinstance(args[0], (str, os.PathLike)):
            looked.append(os.path.abspath(os.fsdecode(args[0])))  # type: ignore[arg-type]
        return real(*args, **kwargs)

    return spy


def test_a_subfolder_that_is_a_link_is_never_followed(
    v2: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Elsewhere: an entry of a subfolder no entry of the history has, and a link to it there.
    used = {place.split("/")[0] for place in map(entry_place, entries(v2))}
    texts = (PULLED.replace("carol", f"mallory{n}") for n in range(10_000))
    planted = next(t for t in texts if hashlib.sha256(t.encode()).hexdigest()[:2] not in used)
    digest = hashlib.sha256(planted.encode()).hexdigest()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"20250920T013000Z-000001-{digest[:8]}.yaml").write_text(planted)
    link = history_folder(v2) / digest[:2]
    link.symlink_to(elsewhere, target_is_directory=True)
    kept = snapshot(elsewhere)
    before = snapshot(v2.root)
    looked: list[str] = []
    for call in ("open", "scandir", "listdir", "stat", "lstat"):
        monkeypatch.setattr(os, call, _spying(getattr(os, call), looked))
    said = {args[0]: v2.run(*args) for args in (["validate"], ["history"], ["set-notes", "x"])}
    monkeypatch.undo()
    assert looked  # the spies saw the tool at work
    assert [p for p in looked if p.startswith((f"{link}/", f"{elsewhere}"))] == []
    assert (said["validate"].exit_code, said["validate"].stderr) == (1, unknown(digest[:2]))
    assert (said["set-notes"].exit_code, said["set-notes"].stderr) == (1, unknown(digest[:2]))
    assert said["history"].exit_code == 0, said["history"].output
    assert said["history"].stdout.splitlines()[-1].endswith("  alice  init")
    assert "mallory" not in said["history"].output
    assert snapshot(v2.root) == before
    assert snapshot(elsewhere) == kept and link.is_symlink()


# --- located errors ----------------------------------------------------------------------------


def test_an_error_in_a_history_file_is_located_in_that_file(v2: Workspace) -> None:
    at(v2, 1, "set-version", "1.1.0", NB, "--by", "bob")
    name = entries(v2)[-1]
    path = entry_file(v2, name)
    place = entry_place(name)
    assert path == history_folder(v2) / place
    path.write_text(path.read_text().replace("by: bob", "by: ''"))
    assert fails(v2, "validate") == f"{H}/{place}:2: by: must not be empty\n"
    path.write_text(path.read_text().replace("action: set-version", "action: set-versoin"))
    assert f"{H}/{place}:3: action: 'set-versoin' is not one of init" in fails(v2, "validate")
    path.write_text(path.read_text().replace("notes: null", "notse: null"))
    assert f"{H}/{place}:6: notse: unknown field 'notse' (did you mean 'notes'?)" in fails(
        v2, "validate"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("at: [\n", ":2: YAML syntax error"),
        ("- a list\n", ":1: a history entry must be a mapping, not a list"),
        ("<<<<<<< HEAD\n", ":1: merge-conflict marker '<<<<<<<'"),
        ("at: 2025-09-20\n", ":1: at: '2025-09-20' is not an RFC 3339 timestamp"),
    ],
)
def test_a_broken_history_file_is_named(v2: Workspace, content: str, message: str) -> None:
    name = "20250920T010000Z-000001-00000000.yaml"
    (history_folder(v2) / name).write_text(content)
    assert fails(v2, "validate").startswith(f"{H}/{name}{message}")


# Names a platform writes into the history folder by itself; any of them may be a folder.
PLATFORM_WRITTEN = [
    ".DS_Store",  # Finder, in every folder it shows
    "._20250920T000000Z-000000-00000000.yaml",  # AppleDouble, beside a copied entry
    "._.DS_Store",
    "Icon\r",  # a folder with a custom icon
    ".localized",
    "Thumbs.db",  # Windows Explorer
    "thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    "Desktop.ini",
    ".directory",  # KDE's Dolphin
    ".nfs0000000001a2b3c400000001",  # NFS: a file removed while open
]
# Names close to those that no platform writes: still named as files that do not belong.
STRAY = [
    "notes.txt",
    "20250920-1-abc.yaml",
    "sub",
    "DS_Store",
    ".DS_Store.yaml",
    "Icon",
    "Thumbs.db.orig",
    "desktop.ini~",
    ".nfs",
    "_.yaml",
]


@pytest.mark.parametrize("name", STRAY)
def test_a_file_that_does_not_belong_in_the_history_folder_is_named(
    v2: Workspace, name: str
) -> None:
    if name == "sub":
        (history_folder(v2) / name).mkdir()
    else:
        (history_folder(v2) / name).write_text("x")
    before = snapshot(v2.root)
    error = fails(v2, "validate")
    assert error.startswith(f"{H}/{name}: not a history entry file (names look like ")
    fails(v2, "set-version", "2.0.0", NB)
    assert snapshot(v2.root) == before


@pytest.mark.parametrize("folder", [False, True])
@pytest.mark.parametrize("name", PLATFORM_WRITTEN)
def test_files_a_platform_writes_into_the_history_folder_are_ignored(
    v2: Workspace, name: str, folder: bool
) -> None:
    path = history_folder(v2) / name
    if folder:
        path.mkdir()
        (path / "inside").write_bytes(b"\x00\x01Bud1")
    else:
        path.write_bytes(b"\x00\x00\x00\x01Bud1\x00 not YAML: [")
    shown = at(v2, 0, "validate")
    assert shown == f"{M}: valid (16 packs)\n"
    for command in (["show"], ["history"], ["pack", "list"], ["fmt", "--check"], ["build"]):
        at(v2, 0, *command)
    at(v2, 1, "set-version", "1.1.0", NB)
    assert [e["action"] for e in document(v2, "history", "--json")["history"]] == [
        "set-version",
        "init",
    ]
    assert path.is_dir() if folder else path.read_bytes().endswith(b"not YAML: [")
    assert len(entries(v2)) == 2


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from([n for n in PLATFORM_WRITTEN if not n.startswith("._")]).flatmap(
        lambda n: st.tuples(*(st.sampled_from(sorted({c.lower(), c.upper()})) for c in n))
    ),
    apple_double=st.text(min_size=0, max_size=12).filter(lambda t: "/" not in t and "\0" not in t),
)
def test_platform_names_are_ignored_in_any_case_and_apple_double_of_any_name(
    name: tuple[str, ...], apple_double: str
) -> None:
    """File systems that write these names ignore case, so any case is theirs; an AppleDouble
    file is ``._`` and the name of whatever file it shadows."""
    names = ("".join(name), f"._{apple_double}", "x.txt")
    assert classify(names, lambda _: b"", b"").unknown == ("x.txt",)


def test_a_layout_2_main_file_with_history_or_updated_at_is_refused(v2: Workspace) -> None:
    text = v2.manifest.read_text()
    text = text.replace("  extra: {}\n", "  extra: {}\n  updated_at: '2025-09-20T00:00:00Z'\n")
    v2.manifest.write_text(text + "history: []\n")
    error = fails(v2, "validate")
    assert f"{M}:12: system.updated_at: schema_version 2 takes updated_at from the newest" in error
    assert f"{M}:79: history: schema_version 2 keeps the history in {H}/" in error


def test_a_layout_2_manifest_without_history_is_refused(v2: Workspace) -> None:
    for path in entry_files(history_folder(v2)).values():
        path.unlink()
    assert fails(v2, "show") == (
        f"{M}: no history entries in {H}/; schema_version 2 takes updated_at from the "
        "newest entry\n"
    )


# --- canonical form ----------------------------------------------------------------------------


def test_fmt_check_checks_every_history_file_and_fmt_fixes_them(v2: Workspace) -> None:
    at(v2, 1, "set-notes", "hello", NB)
    path = entry_file(v2, entries(v2)[-1])
    path.write_text(path.read_text().replace("by: ", "by:    "))
    error = fails(v2, "fmt", "--check")
    assert error == (
        f"error: {H}/{entry_place(path.name)} is not in canonical form; run `valhalla-status fmt`\n"
    )
    history = document(v2, "history", "--json")
    assert at(v2, 1, "fmt") == f"{M}: reformatted\n"
    assert at(v2, 1, "fmt", "--check") == f"{M}: canonical\n"
    assert document(v2, "history", "--json") == history
    assert len(entries(v2)) == 2
    assert tree(v2) == in_place(entries(v2))


def _by_hand(
    text: str, name: str, form: tuple[str, str], seq: int | None, named_after_text: bool
) -> tuple[str, str]:
    """An entry file rewritten by hand: ``form`` replaced in its text, another ``seq``, named
    after its canonical text or after the new text."""
    text = edit(text, *form)
    at_, old_seq, rest = name.split("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8] if named_after_text else rest[:8]
    return f"{at_}-{old_seq if seq is None else f'{seq:06d}'}-{digest}.yaml", text


HAND_FORMS = {
    "spaces": ("by: bob", "by:    bob"),
    "quotes": ("by: bob", "by: 'bob'"),
    "block list": ("  notes: [null, hello]", "  notes:\n  - null\n  - hello"),
    "double quotes": ("notes: hello\n", 'notes: "hello"\n'),
}


@pytest.mark.parametrize("form", sorted(HAND_FORMS))
@pytest.mark.parametrize(
    ("seq", "named_after_text"),
    [(None, False), (7, False), (None, True), (12, True)],
    ids=["named after its canonical text", "another seq", "named after its text", "both"],
)
def test_fmt_keeps_every_entry_by_its_name_and_never_makes_one_edited(
    v2: Workspace, form: str, seq: int | None, named_after_text: bool
) -> None:
    at(v2, 1, "set-notes", "hello", NB, "--by", "bob")
    old = entries(v2)[-1]
    canonical = entry_file(v2, old).read_text()
    name, text = _by_hand(canonical, old, HAND_FORMS[form], seq, named_after_text)
    entry_file(v2, old).unlink()
    (history_folder(v2) / entry_place(name)).parent.mkdir(exist_ok=True)
    (history_folder(v2) / entry_place(name)).write_text(text)
    assert at(v2, 2, "validate") == f"{M}: valid (16 packs)\n"
    history = document(v2, "history", "--json")
    before = tree(v2)
    at(v2, 2, "fmt")
    assert tree(v2) == before
    # Rewritten in place when its canonical text fits its name; else left as recorded.
    expected = text if named_after_text else canonical
    assert (history_folder(v2) / entry_place(name)).read_text() == expected
    assert at(v2, 2, "fmt", "--check") == f"{M}: canonical\n"
    assert at(v2, 2, "validate") == f"{M}: valid (16 packs)\n"
    assert document(v2, "history", "--json") == history


def test_a_comment_typed_into_the_main_file_is_reported_with_its_line(v2: Workspace) -> None:
    text = v2.manifest.read_text()
    text = text.replace(
        "- id: K\n  status: installed\n", "- id: K  # waiting\n  status: installed\n"
    )
    v2.manifest.write_text(text + "# end\n")
    lines = fails(v2, "fmt", "--check").splitlines()
    line_k = text.splitlines().index("- id: K  # waiting") + 1
    assert lines[0].startswith(f"{M}:{line_k}: warning: this comment is dropped by the next write")
    assert "--notes" in lines[0]
    assert lines[1].startswith(f"{M}:{len(text.splitlines()) + 1}: warning:")
    assert lines[2].startswith("error: ")
    assert v2.run("validate").stderr.splitlines()[:2] == lines[:2]


def test_a_hash_sign_inside_a_value_is_no_comment(v2: Workspace) -> None:
    at(v2, 1, "set-notes", "issue #12 and\n# a line starting with a hash", NB)
    at(v2, 2, "pack", "set", "K", "--name", "K #1", NB)
    assert at(v2, 2, "validate") == f"{M}: valid (16 packs)\n"
    # Characters beyond one byte (and beyond U+FFFF) before the '#' move no column.
    text = v2.manifest.read_text()
    text = text.replace("  name: Analyst Essentials\n", "  name: 'Ünïcødé 👩‍💻 #1'\n")
    text = text.replace("  name: Reporter Premium\n", "  name: Ωmega 👩‍💻 Prëmium # why\n")
    v2.manifest.write_text(text)
    line = text.splitlines().index("  name: Ωmega 👩‍💻 Prëmium # why") + 1
    said = v2.run("validate").stderr.splitlines()
    warnings = [w for w in said if ": warning: " in w]
    assert [w.split(": warning")[0] for w in warnings] == [f"{M}:{line}"]


# --- crash consistency: what a killed writer leaves -----------------------------------------


def _pending(ws: Workspace, main: bytes, entry_text: str, when: str = "20250920T050000Z") -> str:
    final = f"{when}-000001-{hashlib.sha256(entry_text.encode()).hexdigest()[:8]}.yaml"
    name = f".pending-{hashlib.sha256(main).hexdigest()}-{final}"
    (history_folder(ws) / name).write_text(entry_text)
    return final


ENTRY = (
    "at: '2025-09-20T05:00:00Z'\nby: bob\naction: set-notes\n"
    "changes:\n  notes: [null, x]\nnotes: x\n"
)


def test_a_pending_entry_of_the_main_file_on_disk_counts_and_is_rolled_forward(
    v2: Workspace,
) -> None:
    # The change the pending entry records: the main file already holds it.
    v2.manifest.write_text(edit(v2.manifest.read_text(), "  notes: null\n", "  notes: x\n"))
    final = _pending(v2, v2.manifest.read_bytes(), ENTRY)
    history = document(v2, "history", "--json")["history"]
    assert [e["by"] for e in history] == ["bob", "alice"]
    assert document(v2, "show", "--json")["updated_at"] == "2025-09-20T05:00:00Z"
    at(v2, 6, "set-version", "1.0.1", NB)
    assert final in entries(v2)
    assert tree(v2) == in_place(entries(v2))
    assert len(document(v2, "history", "--json")["history"]) == 3


def test_a_pending_entry_of_another_main_file_is_ignored_and_removed(v2: Workspace) -> None:
    _pending(v2, b"the main file that was never written", ENTRY)
    (history_folder(v2) / ".tmp-123-abcd").write_text("torn")
    assert len(document(v2, "history", "--json")["history"]) == 1
    assert at(v2, 0, "validate") == f"{M}: valid (16 packs)\n"
    at(v2, 6, "set-version", "1.0.1", NB)
    assert tree(v2) == in_place(entries(v2))
    assert len(document(v2, "history", "--json")["history"]) == 2


def test_a_pending_entry_of_the_main_file_on_disk_that_reads_as_no_entry_is_never_put_in_place(
    v2: Workspace,
) -> None:
    """Its writer would have written a valid entry: what is there is no writer's."""
    final = _pending(v2, v2.manifest.read_bytes(), "at: [\n")
    pending = next(history_folder(v2).glob(".pending-*"))
    assert fails(v2, "validate").startswith(f"{H}/{pending.name}:2: YAML syntax error")
    at(v2, 6, "set-version", "1.0.1", NB)
    assert final not in entries(v2)
    assert tree(v2) == in_place(entries(v2))


@pytest.mark.parametrize("name", [".tmp-123", "pending"])
def test_a_folder_with_a_scratch_name_is_named_by_validate_and_every_change(
    v2: Workspace, name: str
) -> None:
    if name == "pending":
        name = f".pending-{hashlib.sha256(v2.manifest.read_bytes()).hexdigest()}-"
        name += "20250920T050000Z-000001-c8ff166f.yaml"
    (history_folder(v2) / name).mkdir()
    before = snapshot(v2.root)
    assert fails(v2, "validate") == (
        f"{H}/{name}: not a history entry file (names look like "
        "20261130T120000Z-000012-1a2b3c4d.yaml); move it out of the folder\n"
    )
    assert fails(v2, "set-version", "1.0.1", NB) == (
        f"error: {H}/{name}: a folder with the name of the tool's scratch files; move it out "
        "of the history folder\n"
    )
    assert snapshot(v2.root) == before
    assert (history_folder(v2) / name).is_dir()


def _killed(ws: Workspace, hours: int, *change: str, replaced: bool) -> str:
    """Make ``change``, then leave the files as a writer killed just before renaming its entry
    into place (``replaced``: after replacing the main file; else before); returns the entry's
    name."""
    before_main, before = ws.manifest.read_bytes(), set(entries(ws))
    at(ws, hours, *change, NB)
    (final,) = set(entries(ws)) - before
    main = ws.manifest.read_bytes()
    pending = f".pending-{hashlib.sha256(main).hexdigest()}-{final}"
    path = entry_file(ws, final)
    path.rename(history_folder(ws) / pending)
    if not any(path.parent.iterdir()):
        path.parent.rmdir()  # the writer makes the entry's subfolder just before the rename
    if not replaced:
        ws.manifest.write_bytes(before_main)
    return final


def _reformat_by_hand(ws: Workspace, hours: int) -> None:
    """The main file changed another way (its header dropped), then a change."""
    text = ws.manifest.read_text()
    ws.manifest.write_text(text[text.index("schema_version") :])
    at(ws, hours, "set-notes", "later", NB)


def _edit_and_record(ws: Workspace, hours: int) -> None:
    """Another field edited by hand, then the edit recorded."""
    ws.manifest.write_text(edit(ws.manifest.read_text(), "version: 1.0.0", "version: 1.0.1"))
    at(ws, hours, "record", "--notes", "hand edit", NB)


def _reformat_then_fmt(ws: Workspace, hours: int) -> None:
    """The main file changed another way (its header dropped), then ``fmt``."""
    text = ws.manifest.read_text()
    ws.manifest.write_text(text[text.index("schema_version") :])
    assert at(ws, hours, "fmt") == f"{M}: reformatted\n"


PULLED = (
    "at: '2025-09-20T01:30:00Z'\nby: carol\naction: set-version\nchanges:\n"
    "  version: [1.0.0, 1.1.0]\nnotes: null\n"
)


def _pull_then_change(ws: Workspace, hours: int) -> None:
    """Another's change brought in as a pull brings it (its entry, its line of the main file),
    then a change."""
    name = f"20250920T013000Z-000001-{hashlib.sha256(PULLED.encode()).hexdigest()[:8]}.yaml"
    (history_folder(ws) / entry_place(name)).parent.mkdir(exist_ok=True)
    (history_folder(ws) / entry_place(name)).write_text(PULLED)
    ws.manifest.write_text(edit(ws.manifest.read_text(), "version: 1.0.0", "version: 1.1.0"))
    at(ws, hours, "set-notes", "later", NB)


LATER = {
    "reformatted, then a change": _reformat_by_hand,
    "reformatted, then fmt": _reformat_then_fmt,
    "edited, then recorded": _edit_and_record,
    "another change pulled, then a change": _pull_then_change,
}


@pytest.mark.parametrize("later", sorted(LATER))
@pytest.mark.parametrize("replaced", [True, False], ids=["main file replaced", "not replaced"])
def test_a_pending_entry_of_a_change_the_main_file_shows_survives_a_later_change_to_it(
    v2: Workspace, later: str, replaced: bool
) -> None:
    final = _killed(v2, 1, "pack", "set", "K", "--status", "pending", replaced=replaced)
    LATER[later](v2, 2)
    assert tree(v2) == in_place(entries(v2))
    assert (final in entries(v2)) is replaced
    assert at(v2, 3, "validate") == f"{M}: valid (16 packs)\n"
    actions = [e["action"] for e in document(v2, "history", "--json")["history"]]
    assert ("pack-set" in actions) is replaced
    status = document(v2, "pack", "show", "K", "--json")["status"]
    assert status == ("pending" if replaced else "installed")


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_killed_change_is_never_committed_half_nor_lost_by_a_later_merge(ws: Workspace) -> None:
    _git(ws.root, "init", "-q", "-b", "main")
    at(ws, 0, "init", NB, "--by", "alice")
    _git(ws.root, "add", "-A")
    _git(ws.root, "commit", "-qm", "init")
    _git(ws.root, "switch", "-qc", "version")
    at(ws, 1, "set-version", "2.0.0", NB)
    _git(ws.root, "add", "-A")
    _git(ws.root, "commit", "-qm", "version")
    _git(ws.root, "switch", "-q", "main")
    final = _killed(ws, 2, "pack", "set", "K", "--status", "pending", replaced=True)
    _git(ws.root, "add", "-A")
    assert _git(ws.root, "status", "--porcelain") == f"M  {M}\n"  # the pending file is ignored
    _git(ws.root, "commit", "-qm", "K pending")
    _git(ws.root, "merge", "-q", "--no-edit", "version")
    at(ws, 3, "set-notes", "after the merge", NB)
    assert final in entries(ws)
    assert at(ws, 4, "validate") == f"{M}: valid (16 packs)\n"
    assert [e["action"] for e in document(ws, "history", "--json")["history"]] == [
        "set-notes",
        "pack-set",
        "set-version",
        "init",
    ]


# --- per-pack notes and since ------------------------------------------------------------------


def test_pack_notes_are_kept_on_the_pack_and_in_the_history(v2: Workspace) -> None:
    at(v2, 1, "pack", "set", "k", "--status", "pending", "--notes", "waiting for vendor fix", NB)
    pack = document(v2, "pack", "show", "K", "--json")
    assert (pack["notes"], pack["since"]) == ("waiting for vendor fix", "2025-09-20T01:00:00Z")
    newest = document(v2, "history", "--json")["history"][0]
    assert newest["notes"] == "waiting for vendor fix"
    assert newest["changes"]["packs.K.notes"] == [None, "waiting for vendor fix"]
    assert (
        "- id: K\n  status: pending\n  name: Executor Pro\n  notes: waiting for vendor fix\n"
        "  group: Professional\n" in v2.manifest.read_text()
    )
    # a rename keeps since; a note change keeps since
    at(v2, 2, "pack", "set", "K", "--name", "Executor Max", "--notes", "multi\nline", NB)
    pack = document(v2, "pack", "show", "K", "--json")
    assert (pack["notes"], pack["since"]) == ("multi\nline", "2025-09-20T01:00:00Z")
    assert at(v2, 3, "pack", "set", "K", "--clear-notes", NB) == "Pack K: note cleared\n"
    assert document(v2, "pack", "show", "K", "--json")["notes"] is None
    assert "notes" not in v2.manifest.read_text().split("- id: K\n")[1].split("- id:")[0]


def test_pack_add_and_remove_take_notes(v2: Workspace) -> None:
    at(v2, 1, "pack", "add", "X", "--name", "Ex", "--group", "G", "--notes", "trial", NB)
    pack = document(v2, "pack", "show", "X", "--json")
    assert (pack["status"], pack["notes"], pack["since"]) == (
        "pending",
        "trial",
        "2025-09-20T01:00:00Z",
    )
    at(v2, 2, "pack", "remove", "X", "--notes", "trial over", NB)
    newest = document(v2, "history", "--json")["history"][0]
    assert (newest["action"], newest["notes"]) == ("pack-remove", "trial over")
    assert newest["changes"]["packs.X"][0]["notes"] == "trial"
    at(v2, 3, "pack", "add", "X", "--name", "Ex", "--group", "G", "--status", "installed", NB)
    assert document(v2, "pack", "show", "X", "--json")["since"] == "2025-09-20T03:00:00Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--notes", "x" * 2001), "error: pack notes: is 2,001 characters; the limit is 2,000"),
        (("--notes", "   "), "error: pack notes: must not be blank"),
        (("--notes", "bell\x07"), "error: pack notes: contains the control character U+0007"),
        (("--notes", "a", "--clear-notes"), "give --notes or --clear-notes, not both"),
    ],
)
def test_bad_pack_notes_are_refused_and_nothing_is_written(
    v2: Workspace, args: tuple[str, ...], message: str
) -> None:
    before = snapshot(v2.root)
    result = v2.run("pack", "set", "K", *args, NB)
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert snapshot(v2.root) == before


def test_a_status_change_without_notes_clears_the_old_note(v2: Workspace) -> None:
    at(v2, 1, "pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix", NB)
    said = at(v2, 2, "pack", "set", "K", "--status", "installed", NB, "--by", "bob")
    assert said == "Pack K: pending → installed; note cleared\n"
    assert document(v2, "pack", "show", "K", "--json")["notes"] is None
    newest = document(v2, "history", "--json")["history"][0]
    assert newest["changes"] == {
        "packs.K.status": ["pending", "installed"],
        "packs.K.notes": ["waiting for vendor fix", None],
    }
    assert newest["notes"] is None
    assert (
        "- id: K\n  status: installed\n  name: Executor Pro\n  group: Professional\n"
        in v2.manifest.read_text()
    )


def test_keep_notes_keeps_the_note_through_a_status_change(v2: Workspace) -> None:
    at(v2, 1, "pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix", NB)
    said = at(v2, 2, "pack", "set", "K", "--status", "deprecated", "--keep-notes", NB)
    assert said == "Pack K: pending → deprecated\n"
    assert document(v2, "pack", "show", "K", "--json")["notes"] == "waiting for vendor fix"
    newest = document(v2, "history", "--json")["history"][0]
    assert newest["changes"] == {"packs.K.status": ["pending", "deprecated"]}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--name", "Executor Max"), "Pack K: name Executor Pro → Executor Max\n"),
        (("--group", "Core"), "Pack K: group Professional → Core\n"),
        (("--status", "pending"), "No change: pack K is already like that\n"),
    ],
)
def test_a_change_that_is_not_a_status_change_keeps_the_note(
    v2: Workspace, args: tuple[str, ...], said: str
) -> None:
    at(v2, 1, "pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix", NB)
    assert at(v2, 2, "pack", "set", "K", *args, NB) == said
    assert document(v2, "pack", "show", "K", "--json")["notes"] == "waiting for vendor fix"


@pytest.mark.parametrize("other", [("--notes", "new reason"), ("--clear-notes",)])
def test_keep_notes_with_a_new_note_or_clear_notes_is_a_usage_error(
    v2: Workspace, other: tuple[str, ...]
) -> None:
    at(v2, 1, "pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix", NB)
    before = snapshot(v2.root)
    result = v2.run("pack", "set", "K", "--status", "installed", "--keep-notes", *other, NB)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: give --keep-notes or {other[0]}, not both"
    assert snapshot(v2.root) == before


def test_since_is_unknown_without_a_history_that_says(ws: Workspace) -> None:
    data = small_manifest()
    data["history"] = [
        {
            "at": EPOCH_TEXT,
            "by": "alice",
            "action": "set-version",
            "changes": {"version": ["0.9.0", "1.0.0"]},
            "notes": None,
        }
    ]
    ws.write(data)
    assert [p["since"] for p in document(ws, "show", "--json")["packs"]] == [None, None, None]


def test_the_page_says_since_when_and_why(v2: Workspace) -> None:
    at(v2, 24 * 71, "pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix")
    page = (v2.root / "site/index.html").read_text()
    assert (
        '<td class="pending">pending since <time datetime="2025-11-30T00:00:00Z">'
        "2025-11-30 00:00 UTC</time> — <bdi>waiting for vendor fix</bdi></td>"
    ) in page
    published = json.loads((v2.root / "site/packs/K.json").read_text())
    assert (published["notes"], published["since"]) == (
        "waiting for vendor fix",
        "2025-11-30T00:00:00Z",
    )


# --- diff still reads schema_version 1 at a revision ---------------------------------------------


def test_diff_reads_a_schema_version_1_manifest_at_a_revision(ws: Workspace) -> None:
    import subprocess

    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e.org",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=ws.root, env=env, check=True, capture_output=True)

    git("init", "-q")
    ws.write(small_manifest())
    git("add", "-A")
    git("commit", "-qm", "v1")
    at(ws, 1, "migrate")
    at(ws, 2, "pack", "set", "I", "--status", "installed", "--notes", "vendor fixed it", NB)
    result = ws.run("diff", "HEAD")
    assert result.exit_code == 0, result.output
    assert "  Pack I: pending → installed (Reporter Premium)" in result.stdout
    assert '  Pack I: note (none) → "vendor fixed it" (Reporter Premium)' in result.stdout
    assert "History: 2 entries added" in result.stdout  # the migrate entry and the change


def test_the_published_manifest_schema_describes_both_layouts(v2: Workspace) -> None:
    import jsonschema
    import yaml

    at(v2, 1, "pack", "set", "K", "--status", "pending", "--notes", "why")
    schema = json.loads((v2.root / "site/schema/manifest.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    main = yaml.safe_load(v2.manifest.read_text())
    validator.validate(main)
    validator.validate(small_manifest())
    assert not validator.is_valid({**main, "schema_version": 1})
    main["system"]["updated_at"] = EPOCH_TEXT
    assert not validator.is_valid(main)
    entry_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/HistoryEntry"}
    for path in entry_files(history_folder(v2)).values():
        entry = yaml.safe_load(path.read_text())
        jsonschema.validate(entry, entry_schema, jsonschema.Draft202012Validator)


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_a_failing_write_leaves_the_manifest_and_its_history_as_they_were(
    v2: Workspace, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    import errno

    from valhalla_status import service

    before = snapshot(v2.root)
    real = getattr(os, call)
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] >= 2:  # let the pending entry be written, fail on the main file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, call, failing)
    with pytest.raises(Exception) as caught:
        service.set_pack(v2.manifest, "K", status="pending", by="t")
    monkeypatch.undo()
    assert "No space left on device" in str(caught.value)
    assert snapshot(v2.root) == before
    assert tree(v2) == in_place(entries(v2))
    service.set_pack(v2.manifest, "K", status="pending", by="t")
    assert len(entries(v2)) == 2
    assert tree(v2) == in_place(entries(v2))


def test_fmt_check_names_each_file_not_in_canonical_form_and_fmt_leaves_no_flat_copy(
    v2: Workspace,
) -> None:
    at(v2, 1, "set-notes", "hello", NB)
    folder = history_folder(v2)
    flat, placed = entry_files(folder).values()
    # One entry typed out of form where earlier versions wrote it, the main file out of form.
    (folder / flat.name).write_text(flat.read_text().replace("by: ", "by:  "))
    flat.unlink()
    v2.manifest.write_text(v2.manifest.read_text().replace("system:\n", "system:   \n"))
    before = document(v2, "history", "--json")

    assert fails(v2, "fmt", "--check") == (
        f"error: {M} is not in canonical form; run `valhalla-status fmt`\n"
        f"error: {H}/{flat.name} is not in canonical form; run `valhalla-status fmt`\n"
    )
    assert at(v2, 1, "fmt") == f"{M}: reformatted\n"
    assert tree(v2) == in_place([flat.name, placed.name])
    assert at(v2, 1, "fmt", "--check") == f"{M}: canonical\n"
    assert document(v2, "history", "--json") == before


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("3", "3 (a YAML integer)"),
        ("'2'", "'2'"),
        ("2.0", "2.0 (a YAML float)"),
        ("true", "true (a YAML boolean)"),
    ],
)
def test_a_schema_version_of_no_layout_beside_a_history_folder_is_all_every_command_says(
    v2: Workspace, value: str, shown: str
) -> None:
    """Neither "run migrate" (which refuses it too) nor the fields of another layout."""
    text = v2.manifest.read_text()
    v2.manifest.write_text(edit(text, "schema_version: 2\n", f"schema_version: {value}\n"))
    line = text.splitlines().index("schema_version: 2") + 1
    said = (
        f"{M}:{line}: schema_version: unsupported schema_version {shown}; this tool reads 1 and 2"
    )
    before = snapshot(v2.root)
    for command in (["validate"], ["show"], ["pack", "list"], ["history"], ["migrate"]):
        lines = fails(v2, *command).splitlines()
        assert lines in ([said], [f"error: invalid manifest: {said}"]), command
    assert snapshot(v2.root) == before
