"""``migrate``: a schema_version 1 manifest moves to schema_version 2 losing nothing."""

from __future__ import annotations

import os
import random
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import EPOCH_TEXT, Workspace, entry_files, other_files, small_manifest, snapshot

from valhalla_status import service
from valhalla_status.manifest import write_manifest
from valhalla_status.models import Manifest
from valhalla_status.storage.layout import entry_place

M = "manifest/valhalla.yaml"
H = "manifest/valhalla.history"
START = datetime(2025, 9, 20, tzinfo=timezone.utc)


def long_history_manifest(changes: int, seed: int = 7) -> Manifest:
    """A schema_version 1 manifest after ``changes`` varied changes (notes, authors, packs)."""
    rng = random.Random(seed)
    manifest = service.default_manifest(by="alice", now=START)
    manifest = manifest.model_copy(update={"schema_version": 1})
    moment = START
    authors = ["alice", "bob", "Zoë Ö'Brien", "ci-bot"]
    for index in range(changes):
        # Several changes share a second; some carry microseconds.
        moment += timedelta(seconds=rng.choice([0, 0, 1, 60, 3600]))
        if rng.random() < 0.1:
            moment += timedelta(microseconds=rng.randrange(1, 999_999))
        by = rng.choice(authors)
        pack = rng.choice(manifest.packs).id
        kind = index % 7
        complete = manifest.system.backend_complete
        pending = [p.id for p in manifest.packs if p.status == "pending"]
        if kind == 0:
            # a complete backend has no pending pack
            status = rng.choice(["installed", "pending", "deprecated", "experimental"])
            status = "installed" if complete and status == "pending" else status
            notes = rng.choice([None, f"why {index}", f"line one {index}\nline two"])
            outcome = service.set_pack(
                manifest, pack, status=status, notes=notes, by=by, now=moment
            )
        elif kind == 1:
            outcome = service.set_notes(manifest, f"notes {index}: #{index}", by=by, now=moment)
        elif kind == 2:
            version = f"1.{index}.0"
            outcome = service.update_version(
                manifest, version, notes=f"release {index}", by=by, now=moment
            )
        elif kind == 3 and pending and not complete:  # settle one, so it may complete later
            outcome = service.set_pack(manifest, pending[0], status="installed", by=by, now=moment)
        elif kind == 3:
            outcome = service.set_backend_complete(manifest, not complete, by=by, now=moment)
        elif kind == 4:
            new_id = f"X{index}"
            outcome = service.add_pack(
                manifest,
                new_id,
                f"Pack {index}",
                "Extra",
                "experimental" if complete else "pending",
                notes="trial",
                by=by,
                now=moment,
            )
        elif kind == 5:
            extra = [p.id for p in manifest.packs if p.id.startswith("X")]
            if extra:
                outcome = service.remove_pack(
                    manifest, extra[0], notes="trial over", by=by, now=moment
                )
            else:
                outcome = service.set_notes(manifest, None, by=by, now=moment)
        else:
            outcome = service.set_pack(manifest, pack, name=f"Renamed {index}", by=by, now=moment)
        manifest = outcome.manifest
    return manifest


def outputs(ws: Workspace) -> tuple[bytes, bytes, bytes]:
    results = [
        ws.run("show", "--json"),
        ws.run("history", "--json", "--limit", "100000"),
        ws.run("pack", "list", "--json"),
    ]
    for result in results:
        assert result.exit_code == 0, result.output
    return tuple(result.stdout_bytes for result in results)  # type: ignore[return-value]


@pytest.mark.slow
def test_migrating_a_long_history_loses_nothing(ws: Workspace) -> None:
    manifest = long_history_manifest(400)
    assert len(manifest.history) > 300
    ws.manifest.parent.mkdir()
    write_manifest(ws.manifest, manifest)
    assert ws.read()["schema_version"] == 1
    before = outputs(ws)

    result = ws.run("migrate", "--by", "migrator")
    assert result.exit_code == 0, result.output
    count = len(manifest.history)
    assert result.stderr == (
        f"Migrated {M} to schema_version 2: {count} history entries in {H}/\n"
        ".gitignore: added the site folder, lock files and scratch files (7 patterns)\n"
    )
    assert ws.read()["schema_version"] == 2
    assert len(entry_files(ws.root / H)) == count
    assert other_files(ws.root / H) == []
    assert outputs(ws) == before
    assert ws.run("validate").exit_code == 0
    assert ws.run("fmt", "--check").exit_code == 0


def test_migrating_again_changes_nothing_and_says_so(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("migrate").exit_code == 0
    before = snapshot(ws.root)
    result = ws.run("migrate")
    assert (result.exit_code, result.stderr) == (
        0,
        f"No change: {M} is already schema_version 2\n",
    )
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("history", ["none", "older than updated_at"])
def test_migrating_keeps_an_updated_at_newer_than_the_history(ws: Workspace, history: str) -> None:
    data = small_manifest()
    data["system"]["updated_at"] = "2025-10-01T12:00:00Z"
    if history == "none":
        data["history"] = []
    ws.write(data)
    before = outputs(ws)
    result = ws.run("migrate", "--by", "migrator")
    assert result.exit_code == 0, result.output
    assert outputs(ws)[0] == before[0]  # show --json, updated_at included
    newest = ws.run("history", "--json").stdout
    assert '"action": "migrate"' in newest
    assert '"at": "2025-10-01T12:00:00Z"' in newest
    assert '"by": "migrator"' in newest


def test_a_migrated_manifest_takes_changes_in_the_new_layout(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("migrate").exit_code == 0
    result = ws.run(
        "pack", "set", "I", "--status", "installed", "--no-build",
        env={"SOURCE_DATE_EPOCH": "1758330000"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # init, the migrate entry recording what the history did not explain, the change
    assert len(entry_files(ws.root / H)) == 3
    assert other_files(ws.root / H) == []
    show = ws.run("show", "--json").stdout
    assert '"updated_at": "2025-09-20T01:00:00Z"' in show
    assert EPOCH_TEXT in ws.run("history", "--json").stdout


def test_migrate_of_an_invalid_or_missing_manifest_writes_nothing(ws: Workspace) -> None:
    result = ws.run("migrate")
    assert result.exit_code == 1
    assert "run `valhalla-status init`" in result.stderr
    ws.write("schema_version: 1\nsystem: [\n")
    before = snapshot(ws.root)
    result = ws.run("migrate")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{M}:")
    assert snapshot(ws.root) == before
    assert not (ws.root / H).exists()


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_migrate_sets_up_the_gitignore_as_init_does(ws: Workspace) -> None:
    """A repository from before the lock files were ignored: after `migrate` and `git add -A`,
    the lock file is ignored, not staged."""
    git(ws.root, "init", "-q", "-b", "main")
    ws.write(small_manifest())  # schema_version 1, committed by hand, no .gitignore
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-qm", "status")
    result = ws.run("migrate", "--by", "migrator")
    assert (result.exit_code, result.stderr) == (
        0,
        f"Migrated {M} to schema_version 2: 2 history entries in {H}/\n"
        ".gitignore: added the site folder, lock files and scratch files (7 patterns)\n",
    )
    git(ws.root, "add", "-A")
    status = git(ws.root, "status", "--porcelain", "--ignored").splitlines()
    assert "!! manifest/.valhalla.yaml.lock" in status
    staged = git(ws.root, "diff", "--cached", "--name-only").splitlines()
    folder = ws.root / H
    entries = sorted(f"{H}/{entry_place(name)}" for name in entry_files(folder))
    assert len(entries) == 2  # the init entry, and migrate's record of what it found
    assert other_files(folder) == []
    assert staged == [".gitignore", *entries, M]
    ignored = (ws.root / ".gitignore").read_bytes()
    again = ws.run("migrate")
    assert (again.exit_code, again.stderr) == (0, f"No change: {M} is already schema_version 2\n")
    assert (ws.root / ".gitignore").read_bytes() == ignored


def test_migrate_keeps_the_gitignore_lines_there_are(ws: Workspace) -> None:
    """Only the patterns missing are added, after the user's own lines."""
    git(ws.root, "init", "-q", "-b", "main")
    ws.write(small_manifest())
    (ws.root / ".gitignore").write_text("*.pyc\n.*.lock\n!/site/\n")
    result = ws.run("migrate", "--by", "migrator")
    assert result.exit_code == 0, result.output
    assert result.stderr.endswith(
        ".gitignore: added the site folder, lock files and scratch files (6 patterns)\n"
    )
    assert (ws.root / ".gitignore").read_text() == (
        "*.pyc\n.*.lock\n!/site/\n\n"
        "# valhalla-status: the built site, lock files and the build's scratch files\n"
        "/.site.lock\n.*.valhalla-*\n/manifest/.*.lock\n/manifest/.*.tmp-*\n"
        "/manifest/*.history/.tmp-*\n/manifest/*.history/.pending-*\n"
    )
