"""A change hands the manifest it wrote to the build; the build is always of the last write."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import Workspace, small_manifest

from valhalla_status import site as site_module
from valhalla_status.manifest import load_manifest
from valhalla_status.publish import publish_site
from valhalla_status.service import set_notes, set_pack
from valhalla_status.site import render_site
from valhalla_status.sitefolder import SITE_MARK

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


def test_a_change_builds_the_manifest_it_wrote_without_reading_it_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    outcome = set_pack(ws.manifest, "I", status="installed", by="bob")
    loads: list[object] = []
    monkeypatch.setattr("valhalla_status.manifest.load_manifest", loads.append)
    publish_site(ws.manifest, ws.root / "site", manifest=outcome.manifest)
    assert loads == []
    status = (ws.root / "site" / "packs" / "I.json").read_text()
    assert '"status": "installed"' in status


@pytest.mark.parametrize("other", ["another change", "a hand edit", "a removed history entry"])
def test_a_manifest_changed_after_the_write_is_read_again_before_the_build(
    ws: Workspace, other: str
) -> None:
    """Two changes at once: the slower one's build must not put back the older manifest."""
    ws.write(small_manifest())
    assert ws.run("migrate", "--by", "bob").exit_code == 0  # history entries in files
    first = set_pack(ws.manifest, "I", status="installed", by="bob")
    if other == "another change":  # by another thread (or process)
        second = threading.Thread(target=set_notes, args=(ws.manifest, "Second"), daemon=True)
        second.start()
        second.join()
        assert load_manifest(ws.manifest).system.notes == "Second"
    elif other == "a hand edit":
        text = ws.manifest.read_text()
        ws.manifest.write_text(text.replace("Rollout Manager", "Rollout Boss"))
    else:
        entries = sorted(ws.manifest.with_name("valhalla.history").iterdir())
        entries[-1].unlink()
    publish_site(ws.manifest, ws.root / "site", manifest=first.manifest)
    assert site_files(ws.root / "site") == render_site(load_manifest(ws.manifest))


def test_a_manifest_not_written_by_this_process_is_read(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write(small_manifest())
    stale = load_manifest(ws.manifest)
    data = small_manifest()
    data["system"]["version"] = "3.0.0"
    ws.write(data)
    built: list[str] = []
    real = site_module.build_site

    def spy(manifest: object, *args: object, **kwargs: object) -> object:
        built.append(manifest.system.version)  # type: ignore[attr-defined]
        return real(manifest, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(site_module, "build_site", spy)
    publish_site(ws.manifest, ws.root / "site", manifest=stale)
    assert built == ["3.0.0"]
