"""Read commands read in proportion to what they show, and show what a whole read shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EPOCH, Workspace, entry_files, git

from valhalla_status.manifest import load_manifest
from valhalla_status.publishing.documents import (
    history_document,
    status_document,
    to_json,
)
from valhalla_status.rules.history import pack_since
from valhalla_status.storage import layout, recent


def change(ws: Workspace, *args: str, hour: int) -> None:
    result = ws.run(
        *args, "--no-build", "--by", "t", env={"SOURCE_DATE_EPOCH": str(EPOCH + hour * 3600)}
    )
    assert result.exit_code == 0, result.output


@pytest.fixture
def team_repo(ws: Workspace) -> Workspace:
    """A git repository with a history of committed changes, one landed late, and one change
    not committed yet."""
    git(ws.root, "init", "-q", "-b", "main")
    change(ws, "init", hour=0)
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-qm", "init", hour=0)
    git(ws.root, "checkout", "-q", "-b", "late")
    change(ws, "pack", "set", "K", "--status", "pending", "--notes", "vendor", hour=1)
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-qm", "K", hour=1)
    git(ws.root, "checkout", "-q", "main")
    for hour in (2, 3, 4):
        change(ws, "set-version", f"1.{hour}.0", hour=hour)
        git(ws.root, "add", "-A")
        git(ws.root, "commit", "-qm", f"{hour}", hour=hour)
    git(ws.root, "merge", "-q", "--no-ff", "--no-edit", "late", hour=5)
    change(ws, "pack", "set", "L", "--status", "deprecated", hour=6)  # not committed
    return ws


def whole(ws: Workspace) -> Any:
    return load_manifest(ws.manifest)


def test_the_read_commands_print_what_a_whole_read_gives(team_repo: Workspace) -> None:
    ws = team_repo
    manifest = whole(ws)
    assert ws.run("show", "--json").stdout == to_json(status_document(manifest))
    assert ws.run("history", "--json", "--limit", "50").stdout == to_json(
        history_document(manifest, 50)
    )
    assert ws.run("history", "--json", "--limit", "2").stdout == to_json(
        history_document(manifest, 2)
    )
    since = pack_since(manifest)
    shown = json.loads(ws.run("pack", "show", "K", "--json").stdout)
    assert shown["since"] == since["K"] == "2025-09-20T05:00:00Z"  # when it landed, not made
    assert json.loads(ws.run("pack", "show", "L", "--json").stdout)["since"] == since["L"]


def test_a_read_opens_only_the_entries_it_prints_once_the_effects_are_kept(
    team_repo: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = team_repo
    store = ws.root / ".git" / "valhalla-status"
    for snapshot in store.glob("recent-*.json"):  # without the snapshot (test_snapshot.py)
        snapshot.unlink()
    recent.read_recent(ws.manifest)  # the first read keeps what each entry does
    for snapshot in store.glob("recent-*.json"):
        snapshot.unlink()
    kept = list(store.glob("effects-*.json"))
    assert len(kept) == 1
    assert not list(ws.root.glob("manifest/**/effects-*"))  # never in the work tree
    opened: list[str] = []
    real = layout.read_entry_file

    def counted(path: Path) -> bytes | None:
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(recent, "read_entry_file", counted)
    read = recent.read_recent(ws.manifest, newest=2)
    newest = [entry.id + ".yaml" for entry in whole(ws).history[-2:]]
    assert sorted(opened) == sorted(newest)
    assert [entry.id + ".yaml" for entry in read.manifest.history] == newest
    assert read.total == len(whole(ws).history)


def test_an_entry_a_read_needs_that_is_not_valid_is_named(ws: Workspace) -> None:
    change(ws, "init", hour=0)
    change(ws, "set-version", "1.1.0", hour=1)
    folder = ws.manifest.with_name("valhalla.history")
    [*_, (name, newest)] = entry_files(folder).items()
    assert newest == folder / layout.entry_place(name)
    newest.write_text(newest.read_text(encoding="utf-8").replace("by: t", "by: ''"), "utf-8")
    result = ws.run("show")
    assert result.exit_code == 1, result.output
    assert f"manifest/valhalla.history/{layout.entry_place(name)}:2: by:" in result.stderr
    assert "Traceback" not in result.output
