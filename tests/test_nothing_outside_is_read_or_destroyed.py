"""Nothing outside the tool's own files is read or destroyed: links, FIFOs, folders and paths.

Each test drives the real command line on real files (links, FIFOs, folders) and checks the
promise of its class: nothing destroyed or read outside, one clear line, nothing written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import (
    EPOCH,
    Workspace,
    clean_env,
    dump,
    entry_files,
    small_manifest,
    snapshot,
    tool_command,
)

from valhalla_status.storage.layout import EXAMPLE_NAME, entry_place

M = "manifest/valhalla.yaml"
H = "manifest/valhalla.history"
NB = "--no-build"
SECRET = "TOP-SECRET-d41d8cd98f00b204"


def at(ws: Workspace, hours: int, *args: str) -> str:
    """Run a command stamped ``hours`` after EPOCH; return stderr (exit 0 asserted)."""
    result = ws.run(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH + hours * 3600)})
    assert result.exit_code == 0, result.output
    return result.stderr


def fails(ws: Workspace, *args: str) -> str:
    result = ws.run(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH + 5 * 3600)})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def v2(ws: Workspace) -> Workspace:
    at(ws, 0, "init", NB, "--by", "alice")
    at(ws, 1, "pack", "set", "K", "--status", "pending", NB, "--by", "bob")
    return ws


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the workspace holding a secret and a well-formed history entry."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(f"root:x:0:0:{SECRET}\n")
    entry = {
        "at": "2025-09-20T03:00:00Z",
        "by": "mallory",
        "action": "set-notes",
        "changes": {"notes": [None, "planted"]},
        "notes": "planted",
    }
    (folder / "entry.yaml").write_text(dump(entry))
    return folder


# --- planted links -----------------------------------------------------------------------------

ENTRY = "20250920T030000Z-000002-deadbeef.yaml"
PLACE = entry_place(ENTRY)  # where the tool keeps ENTRY in the history folder: de/ENTRY


def placed(folder: Path, name: str = ENTRY) -> Path:
    """The file of the entry ``name`` in the history folder ``folder``, where the tool writes
    it (its subfolder made)."""
    path = folder / entry_place(name)
    path.parent.mkdir(exist_ok=True)
    return path


def entry_name(text: str) -> str:
    """The name of an entry file holding ``text`` (made at 03:00, the third entry): its hash
    is the text's, as a recorded entry's is (ENTRY's is not: a file so named reads as edited)."""
    return f"20250920T030000Z-000002-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"


def test_a_history_entry_that_is_a_link_is_never_followed(v2: Workspace, outside: Path) -> None:
    folder = v2.root / H
    for target in (outside / "secret.txt", outside / "entry.yaml"):
        link = placed(folder)
        link.symlink_to(target)
        before = snapshot(v2.root)
        for args in (
            ["validate"],
            ["history"],
            ["show", "--json"],
            ["pack", "set", "K", "--status", "installed", NB],
        ):
            out = fails(v2, *args)
            assert SECRET not in out and "mallory" not in out
        assert snapshot(v2.root) == before
        assert link.is_symlink()
        link.unlink()


def test_a_pending_entry_that_is_a_link_is_never_followed(v2: Workspace, outside: Path) -> None:
    folder = v2.root / H
    main = (v2.root / M).read_bytes()
    pending = folder / f".pending-{hashlib.sha256(main).hexdigest()}-{ENTRY}"
    pending.symlink_to(outside / "entry.yaml")
    out = v2.run("history").output
    assert "mallory" not in out
    at(v2, 6, "pack", "set", "L", "--status", "pending", NB)
    for path in (folder / ENTRY, folder / PLACE):
        assert not path.exists() and not path.is_symlink()
    assert "mallory" not in v2.run("history").output
    assert (outside / "entry.yaml").read_text().startswith("at:")


def test_a_history_folder_that_is_a_link_is_neither_read_nor_written(
    v2: Workspace, outside: Path
) -> None:
    folder = v2.root / H
    other = outside / "history"
    folder.rename(other)
    kept = snapshot(other)
    folder.symlink_to(other)
    for args in (
        ["validate"],
        ["history"],
        ["pack", "set", "K", "--status", "installed", NB],
        ["init", "--force", NB],
    ):
        out = fails(v2, *args)
        assert "link" in out
    assert snapshot(other) == kept


# --- special files -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "folder", "link-to-fifo"])
def test_init_force_never_waits_on_or_removes_a_special_file_in_the_history(
    v2: Workspace, tmp_path: Path, kind: str
) -> None:
    special = placed(v2.root / H)
    if kind == "fifo":
        os.mkfifo(special)
    elif kind == "folder":
        special.mkdir()
    else:
        os.mkfifo(tmp_path / "fifo")
        special.symlink_to(tmp_path / "fifo")
    result = v2.run("init", "--force", NB, env={"SOURCE_DATE_EPOCH": str(EPOCH + 9 * 3600)})
    assert "Traceback" not in result.output
    assert os.path.lexists(special)


# --- outside text in error lines ---------------------------------------------------------------

LONG = "x" * 5000 + SECRET


@pytest.mark.parametrize(
    "old, new",
    [
        ("version: 1.0.0", f"version: v{LONG}"),
        ("status: installed", f"status: {LONG}"),
        ("- id: H", f"- id: H{LONG}"),
        ("schema_version: 2", f"schema_version: {LONG}"),
        ("backend_complete: false", f"backend_complete: {LONG}"),
        ("completed_at: null", f"completed_at: '{LONG}'"),
        ("extra: {}", f"extra: {{}}\n  '{LONG}': 1"),
        ("extra: {}", f"extra: {{}}\n  ? [{LONG}]\n  : 1"),
    ],
)
def test_an_error_line_quotes_the_start_of_a_long_value_never_all_of_it(
    v2: Workspace, old: str, new: str
) -> None:
    text = (v2.root / M).read_text()
    (v2.root / M).write_text(text.replace(old, new, 1))
    out = fails(v2, "validate")
    assert SECRET not in out
    assert max(len(line) for line in out.splitlines()) < 300


def test_a_manifest_linked_to_another_file_never_prints_that_file(
    ws: Workspace, outside: Path
) -> None:
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n" * 40 + SECRET + "\n")
    (ws.root / "manifest").mkdir()
    (ws.root / M).symlink_to(secret)
    for args in (["validate"], ["show"], ["build"]):
        assert SECRET not in fails(ws, *args)
    entry_file = ws.root / "entry.yaml"
    entry_file.write_text(secret.read_text())
    (ws.root / M).unlink()
    at(ws, 0, "init", NB)
    placed(ws.root / H).write_text(secret.read_text())
    assert SECRET not in fails(ws, "history")


# --- the build's own folders -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--site", f"{H}/site", "build"],
        ["build", "--site", f"{H}/a/b"],
        ["build", "--site", f"{H}/."],
        ["build", "--site", "linked/site"],
        ["build", "--site", "linked"],
        ["pack", "set", "K", "--status", "installed", "--site", f"{H}/site"],
    ],
)
def test_a_site_is_never_built_inside_the_manifests_history_folder(
    v2: Workspace, args: list[str]
) -> None:
    (v2.root / "linked").symlink_to(v2.root / H)
    result = v2.run(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH + 5 * 3600)})
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    assert "history folder" in result.output
    folder = v2.root / H
    places = [path.relative_to(folder).as_posix() for path in entry_files(folder).values()]
    found = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))
    assert found == sorted({*places, *(place.split("/")[0] for place in places)})
    assert v2.run("validate").exit_code == 0


# --- migrate -----------------------------------------------------------------------------------


NOT_A_FOLDER = (
    f"error: {H} exists and is not a folder; move it away, then run `valhalla-status migrate` "
    "again\n"
)


@pytest.mark.parametrize("kind", ["entry", "other-file", "plain-file", "link", "fifo"])
def test_migrate_never_removes_or_mixes_in_files_it_did_not_make(
    ws: Workspace, tmp_path: Path, kind: str
) -> None:
    ws.write(small_manifest())
    folder = ws.root / H
    if kind == "plain-file":
        folder.write_text("mine\n")
    elif kind == "link":
        (tmp_path / "elsewhere").mkdir()
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir()
        if kind == "entry":
            placed(folder).write_text("at: '2020-01-01T00:00:00Z'\nby: me\n")
        elif kind == "other-file":
            (folder / "README.txt").write_text("mine\n")
        else:
            os.mkfifo(placed(folder))
    before = snapshot(ws.root)
    out = fails(ws, "migrate")
    # An entry file is taken as one of a migrated branch merged in, so it must be whole; any
    # other file is no history entry, and the folder itself must be a folder.
    said = {
        "entry": f"{H}/{PLACE}:1: action: required field is missing\n"
        f"{H}/{PLACE}:1: notes: required field is missing\n",
        "other-file": f"{H}/README.txt: not a history entry file (names look like "
        f"{EXAMPLE_NAME}); move it out of the folder\n",
        "plain-file": NOT_A_FOLDER,
        "link": NOT_A_FOLDER,
        "fifo": f"{H}/{PLACE}: not a history entry file (names look like {EXAMPLE_NAME}); "
        "move it out of the folder\n",
    }
    assert out == said[kind]
    assert snapshot(ws.root) == before
    assert os.path.lexists(folder)
    assert ws.read()["schema_version"] == 1


def test_migrate_takes_an_empty_history_folder(ws: Workspace) -> None:
    ws.write(small_manifest())
    (ws.root / H).mkdir()
    at(ws, 0, "migrate")
    assert ws.read()["schema_version"] == 2
    assert ws.run("validate").exit_code == 0


# --- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["page", "folder", "included", "partial"])
def test_a_template_link_that_leads_outside_the_templates_folder_is_refused(
    v2: Workspace, outside: Path, kind: str
) -> None:
    templates = v2.root / "templates"
    templates.mkdir()
    secret = outside / "secret.txt"
    if kind == "page":
        (templates / "index.html").symlink_to(secret)
    elif kind == "folder":
        (templates / "sub").symlink_to(outside)
        (templates / "index.html").write_text('{% include "sub/secret.txt" %}')
    elif kind == "included":
        (templates / "extra.html").symlink_to(secret)
        (templates / "index.html").write_text('{% include "extra.html" %}')
    else:
        (templates / "_footer.html").symlink_to(secret)
    site = v2.root / "site"
    out = fails(v2, "build", "--templates", "templates")
    assert SECRET not in out
    assert "outside the templates folder" in out
    if site.exists():
        assert all(SECRET not in p.read_text() for p in site.rglob("*") if p.is_file())


def test_a_template_link_inside_the_templates_folder_is_used(v2: Workspace) -> None:
    templates = v2.root / "templates"
    templates.mkdir()
    (templates / "mine.html").write_text("<!doctype html><title>mine</title>\n")
    (templates / "index.html").symlink_to("mine.html")
    at(v2, 2, "build", "--templates", "templates")
    assert "mine" in (v2.root / "site" / "index.html").read_text()


# --- limits on what is read --------------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_diff_never_reads_a_history_file_past_its_limit_at_a_revision(
    v2: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    _git(v2.root, "init", "-q")
    _git(v2.root, "add", "-A")
    _git(v2.root, "commit", "-qm", "base")
    big = placed(v2.root / H)
    with big.open("wb") as handle:
        handle.write(b"at: '" + b"x" * (8 * 1024 * 1024) + b"'\n")
    _git(v2.root, "add", "-A")
    _git(v2.root, "commit", "-qm", "big")
    big.unlink()
    placed(v2.root / H, "20250920T040000Z-000003-0badf00d.yaml").symlink_to("/etc/passwd")
    _git(v2.root, "add", "-A")
    _git(v2.root, "commit", "-qm", "link")
    read: list[int] = []
    real_run = subprocess.run

    def counting_run(*args: object, **kwargs: object) -> object:
        result = real_run(*args, **kwargs)  # type: ignore[call-overload]
        read.append(len(result.stdout or b""))
        return result

    monkeypatch.setattr(subprocess, "run", counting_run)
    out = fails(v2, "diff", "HEAD~2", "HEAD~1")
    assert "over the 1 MiB limit" in out
    assert max(read) < 2 * 1024 * 1024
    out = fails(v2, "diff", "HEAD")
    assert "not a history entry file" in out and "root:" not in out


# --- pathological documents --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        "{notes: [.nan, x]}",
        "{notes: [null, 1.0e+999]}",
        "{extra: [-.inf, 1]}",
        "{packs.Z: [null, {id: Z, weight: .NaN}]}",
    ],
)
def test_a_history_value_that_json_cannot_hold_is_refused_with_its_place(
    v2: Workspace, changes: str
) -> None:
    entry = f"at: '2025-09-20T03:00:00Z'\nby: a\naction: set-notes\nchanges: {changes}\nnotes: x\n"
    placed(v2.root / H).write_text(entry)
    for args in (["validate"], ["history", "--json"], ["build"], ["show", "--json"]):
        out = fails(v2, *args)
        assert "internal error" not in out
        assert f"{H}/{PLACE}:4: changes" in out, out
    placed(v2.root / H).unlink()
    data = small_manifest()
    data["history"][0]["changes"] = {"notes": [None, float("inf")]}
    v2.write(data)
    (v2.root / H).rename(v2.root / "old-history")
    out = fails(v2, "history", "--json")
    assert "internal error" not in out and "JSON-compatible" in out


# --- what reaches the page ---------------------------------------------------------------------

NONCHARACTERS = ["\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\U0005ffff"]


def test_no_noncharacter_from_a_history_value_reaches_the_page_or_the_feed(
    v2: Workspace,
) -> None:
    values = ", ".join(f'"v{c}"' for c in NONCHARACTERS)
    entry = (
        "at: '2025-09-20T03:00:00Z'\nby: a\naction: set-notes\n"
        f"changes: {{extra: [[{values}], {{}}], version: [{{{values}: 1}}, 1.0.0]}}\nnotes: x\n"
    )  # extra and the version end as the main file holds them: the history explains it
    placed(v2.root / H, entry_name(entry)).write_text(entry, encoding="utf-8")
    at(v2, 4, "build")
    site = v2.root / "site"
    for name in ("index.html", "history.html", "feed.xml"):
        text = (site / name).read_text(encoding="utf-8")
        assert "v\ufffd" in text or name == "index.html"
        assert not [c for c in NONCHARACTERS if c in text], name


# --- serve -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_rebuilds_when_a_history_file_comes_or_goes(v2: Workspace) -> None:
    import json
    import queue
    import subprocess
    import sys
    import threading

    from conftest import clean_env
    from test_serve import fetch

    process = subprocess.Popen(
        [sys.executable, "-m", "valhalla_status", "serve", "--port", "0"],
        cwd=v2.root,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if not line.startswith("127.0.0.1 "):
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert lines.get(timeout=60).startswith("site: ")
        url = lines.get(timeout=60).split(" at ")[1].split(" ")[0]

        def history() -> list[str]:
            return [e["by"] for e in json.loads(fetch(url + "history.json")[2])["history"]]

        assert history() == ["bob", "alice"]
        # The entry comes into a subfolder that holds one already (bob's): only that
        # subfolder changes, not the history folder itself.
        [_, bobs] = entry_files(v2.root / H).values()
        carols = (
            "at: '2025-09-20T03:00:00Z'\nby: carol\naction: set-notes\nchanges: {}\n"
            f"notes: x{n}\n"
            for n in range(100_000)
        )
        text = next(t for t in carols if entry_place(entry_name(t)).startswith(bobs.parent.name))
        entry = placed(v2.root / H, entry_name(text))
        assert entry.parent == bobs.parent
        temp = v2.root / "incoming.yaml"
        temp.write_text(text)
        os.replace(temp, entry)
        assert lines.get(timeout=60).startswith("site: built")
        assert history() == ["carol", "bob", "alice"]
        entry.unlink()
        assert lines.get(timeout=60).startswith("site: built")
        assert history() == ["bob", "alice"]
    finally:
        process.kill()
        process.wait()


def _v1_with_history(updated_at: str, *moments: str) -> dict:  # type: ignore[type-arg]
    data = small_manifest()
    data["system"]["updated_at"] = updated_at
    data["history"] = [
        {"at": moment, "by": f"u{i}", "action": "set-notes", "changes": {}, "notes": None}
        for i, moment in enumerate(moments)
    ]
    return data


def test_migrate_says_what_the_new_layout_cannot_keep_as_it_was(ws: Workspace) -> None:
    ws.write(
        _v1_with_history("2025-09-20T00:00:00Z", "2025-09-21T00:00:00Z", "2025-09-19T00:00:00Z")
    )
    said = at(ws, 0, "migrate")
    assert "updated_at was 2025-09-20T00:00:00Z" in said
    assert "2025-09-21T00:00:00Z" in said
    assert "out of time order" in said
    assert ws.run("validate").exit_code == 0


@pytest.mark.parametrize(
    "updated_at, moments, entries",
    [
        ("2025-09-20T00:00:00Z", [], 1),
        ("2025-09-22T00:00:00Z", ["2025-09-21T00:00:00Z"], 2),
        ("2025-09-21T00:00:00Z", ["2025-09-21T00:00:00Z", "2025-09-21T00:00:00Z"], 2),
    ],
)
def test_migrate_keeps_updated_at_when_the_history_allows_it(
    ws: Workspace, updated_at: str, moments: list[str], entries: int
) -> None:
    ws.write(_v1_with_history(updated_at, *moments))
    said = at(ws, 0, "migrate")
    assert "updated_at was" not in said and "out of time order" not in said
    shown = ws.run("show", "--json")
    assert f'"updated_at": "{updated_at}"' in shown.stdout
    folder = ws.root / H
    places = [path.relative_to(folder).as_posix() for path in entry_files(folder).values()]
    assert len(places) == entries
    assert sorted(snapshot(folder)) == sorted(places)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["pack", "set", "K", "--status", "installed", NB],
        ["fmt"],
        ["migrate"],
        ["init", "--force", NB],
        ["set-notes", "x", NB],
    ],
)
@pytest.mark.parametrize("pending", [True, False])
def test_a_fifo_in_place_of_the_manifest_is_refused_by_every_writer_never_waited_on(
    v2: Workspace, args: list[str], pending: bool
) -> None:
    import subprocess

    main = v2.root / M
    if pending:
        digest = hashlib.sha256(main.read_bytes()).hexdigest()
        (v2.root / H / f".pending-{digest[::-1]}-{ENTRY}").write_text("at: x\n")
    main.unlink()
    os.mkfifo(main)
    before = snapshot(v2.root / H)
    try:
        result = subprocess.run(
            tool_command(main, v2.root / "site", *args),
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args} waited on the FIFO")
    assert result.returncode == 1, result.stderr
    assert "FIFO" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(v2.root / H) == before
    assert main.is_fifo()


@pytest.mark.parametrize("name", [f".pending-{'0' * 64}-{ENTRY}", ".tmp-mine"])
def test_a_folder_with_a_scratch_name_in_the_history_is_named_and_kept(
    v2: Workspace, name: str
) -> None:
    folder = v2.root / H / name
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    out = fails(v2, "pack", "set", "K", "--status", "installed", NB)
    assert name in out
    assert (folder / "keep.txt").read_text() == "mine\n"
