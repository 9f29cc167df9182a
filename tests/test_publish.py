"""A change hands the manifest it wrote to the build; the build is always of the last write."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import Workspace, small_manifest

from valhalla_status.manifest import load_manifest
from valhalla_status.publishing.sitefolder import SITE_MARK
from valhalla_status.service import set_notes, set_pack
from valhalla_status.site import render_site
from valhalla_status.storage import transaction as transaction_module
from valhalla_status.storage.transaction import SiteOptions

CHANGES = [
    ("pack", "set", "I", "--status", "installed"),
    ("pack", "set", "h", "--notes", "Blocked on Heimdall"),
    ("pack", "add", "K", "--name", "Kappa", "--group", "New", "--status", "pending"),
    ("pack", "remove", "S"),
    ("set-version", "1.1.0"),
    ("set-notes", "Go-live Friday"),
    ("complete",),
    ("incomplete",),
]


def site_files(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and p.name != SITE_MARK
    }


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: " ".join(c[:2]))
def test_the_site_after_a_change_is_what_a_build_of_the_file_writes(
    ws: Workspace, change: tuple[str, ...]
) -> None:
    data = small_manifest()
    if change == ("complete",):  # a backend completes only while nothing is pending
        data["packs"][1]["status"] = "installed"
    ws.write(data)
    assert ws.run("build").exit_code == 0
    result = ws.run(*change, "--by", "bob")
    assert result.exit_code == 0, result.stderr
    assert site_files(ws.root / "site") == render_site(load_manifest(ws.manifest))
    assert ws.run("build").stderr.startswith("site: already up to date")


def test_a_change_reads_the_manifest_once_and_builds_what_it_wrote(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    reads: list[object] = []
    real = transaction_module.load_manifest

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(transaction_module, "load_manifest", counted)
    outcome = set_pack(
        ws.manifest, "I", status="installed", by="bob", site=SiteOptions(ws.root / "site")
    )
    assert (len(reads), outcome.site_error, outcome.build is not None) == (1, None, True)
    assert '"status": "installed"' in (ws.root / "site" / "packs" / "I.json").read_text()


def test_the_site_after_changes_made_at_once_is_the_build_of_the_last_write(
    ws: Workspace,
) -> None:
    """Each change builds under the lock it wrote with: no slower build can put back an older
    manifest's site."""
    ws.write(small_manifest())
    assert ws.run("migrate", "--by", "bob").exit_code == 0  # history entries in files
    site = SiteOptions(ws.root / "site")
    failures: list[BaseException] = []

    def change(text: str) -> None:
        try:
            outcome = set_notes(ws.manifest, text, by="bob", site=site)
            assert outcome.site_error is None, outcome.site_error
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=change, args=(f"note {n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(load_manifest(ws.manifest).history) == 1 + 1 + 6
    assert site_files(ws.root / "site") == render_site(load_manifest(ws.manifest))


# --- a change that changes nothing still brings a stale site up to date ------------------------

NOT_OURS = (
    "refusing to replace site: it is not empty and has no .valhalla-site mark, so it is not a "
    "site valhalla-status built; choose a new or empty folder"
)


def test_a_change_that_finds_the_site_stale_rebuilds_it_even_when_it_changes_nothing(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    site = ws.root / "site"
    site.mkdir()
    (site / "mine.txt").write_text("a folder the build may not replace")
    first = ws.run("pack", "set", "I", "--status", "installed", "--by", "bob")
    assert (first.exit_code, first.stderr) == (
        1,
        "Pack I: pending → installed\n"
        "error: the change is recorded in manifest/valhalla.yaml, but the site (site) was not "
        f"rebuilt: {NOT_OURS}; run `valhalla-status build` to finish\n",
    )
    retry = ws.run("pack", "set", "I", "--status", "installed", "--by", "bob")
    assert (retry.exit_code, retry.stderr) == (
        1,
        "No change: pack I is already like that\n"
        "error: the site (site) does not show manifest/valhalla.yaml and was not rebuilt: "
        f"{NOT_OURS}; run `valhalla-status build` to finish\n",
    )
    (site / "mine.txt").unlink()  # the cause, fixed
    fixed = ws.run("pack", "set", "I", "--status", "installed", "--by", "bob")
    assert (fixed.exit_code, fixed.stderr) == (
        0,
        "No change: pack I is already like that (site rebuilt)\n",
    )
    assert site_files(site) == render_site(load_manifest(ws.manifest))
    again = ws.run("pack", "set", "I", "--status", "installed", "--by", "bob")
    assert (again.exit_code, again.stderr) == (0, "No change: pack I is already like that\n")


def test_a_change_that_changes_nothing_builds_a_missing_site_unless_no_build(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    skipped = ws.run("set-notes", "--clear", "--by", "bob", "--no-build")
    assert (skipped.exit_code, skipped.stderr) == (0, "No change: the notes are already empty\n")
    assert not (ws.root / "site").exists()
    built = ws.run("set-notes", "--clear", "--by", "bob")
    assert (built.exit_code, built.stderr) == (
        0,
        "No change: the notes are already empty (site rebuilt)\n",
    )
    assert site_files(ws.root / "site") == render_site(load_manifest(ws.manifest))


def test_a_change_that_changes_nothing_rebuilds_a_site_left_behind_by_no_build(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    assert ws.run("set-version", "1.1.0", "--by", "bob", "--no-build").exit_code == 0
    result = ws.run("set-version", "1.1.0", "--by", "bob")
    assert (result.exit_code, result.stderr) == (
        0,
        "No change: the version is already 1.1.0 (site rebuilt)\n",
    )
    assert site_files(ws.root / "site") == render_site(load_manifest(ws.manifest))


def test_a_change_that_changes_nothing_leaves_a_current_site_untouched(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    folder = (ws.root / "site").stat().st_ino  # a rebuild swaps in a new folder
    before = site_files(ws.root / "site")
    result = ws.run("pack", "set", "I", "--status", "pending", "--by", "bob")
    assert (result.exit_code, result.stderr) == (0, "No change: pack I is already like that\n")
    assert (ws.root / "site").stat().st_ino == folder
    assert site_files(ws.root / "site") == before


def test_a_change_that_changes_nothing_rebuilds_a_site_built_with_other_options(
    ws: Workspace,
) -> None:
    """As after a change, the site is what the command builds: one built with another base
    URL is rebuilt without it."""
    ws.write(small_manifest())
    assert ws.run("build", "--base-url", "https://status.example.com").exit_code == 0
    result = ws.run("pack", "set", "I", "--status", "pending", "--by", "bob")
    assert (result.exit_code, result.stderr) == (
        0,
        "No change: pack I is already like that (site rebuilt)\n",
    )
    assert site_files(ws.root / "site") == render_site(load_manifest(ws.manifest))
