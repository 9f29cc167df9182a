"""The library API: the service names, on a path or on a loaded manifest."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import EPOCH2_TEXT, EPOCH_TEXT, dump, small_manifest

import valhalla_status
from valhalla_status.errors import (
    ManifestError,
    NotFoundError,
    RefusedError,
    UnavailableError,
    ValhallaError,
)
from valhalla_status.manifest import dump_manifest, load_manifest
from valhalla_status.models import HistoryEntry, Manifest, Pack
from valhalla_status.publishing.documents import status_document, summary_document
from valhalla_status.service import (
    add_pack,
    count_packs_by_status,
    ensure_system_metadata,
    get_pack_by_id,
    get_packs,
    get_system_metadata,
    get_system_status,
    get_system_summary,
    remove_pack,
    set_backend_complete,
    set_notes,
    set_pack,
    update_version,
)
from valhalla_status.storage.canonical import entry_file_name

LATER = datetime(2025, 9, 21, tzinfo=timezone.utc)
SERVICE_NAMES = [
    "get_system_metadata",
    "ensure_system_metadata",
    "get_packs",
    "get_system_status",
    "set_backend_complete",
    "update_version",
    "get_pack_by_id",
    "count_packs_by_status",
    "get_system_summary",
]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "valhalla.yaml"
    target.write_text(dump(small_manifest()), encoding="utf-8")
    return target


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_service_names_are_importable_from_the_package(name: str) -> None:
    from valhalla_status import service

    assert getattr(valhalla_status, name) is getattr(service, name)


@pytest.mark.parametrize("loaded", [False, True], ids=["path", "manifest"])
def test_readers_take_a_path_or_a_manifest(path: Path, loaded: bool) -> None:
    source: Path | Manifest = load_manifest(path) if loaded else path
    assert get_system_metadata(source).version == "1.0.0"
    assert [p.id for p in get_packs(source)] == ["H", "I", "S"]
    assert [p.id for p in get_packs(source, status="pending")] == ["I"]
    assert [p.id for p in get_packs(source, group="PROFESSIONAL")] == ["H", "I"]
    assert [p.id for p in get_packs(source, status="installed", group="professional")] == ["H"]
    assert get_pack_by_id(source, "s") == Pack(
        id="S", name="Rollout Manager", group="System infrastructure", status="installed"
    )
    assert get_pack_by_id(source, "zz") is None
    assert get_pack_by_id(source, "ı") is None  # 'ı'.upper() == 'I', but it is no ASCII id
    assert count_packs_by_status(source) == {
        "installed": 2,
        "pending": 1,
        "deprecated": 0,
        "experimental": 0,
    }
    manifest = load_manifest(path)
    assert get_system_summary(source) == summary_document(manifest)
    assert get_system_status(source) == status_document(manifest)
    assert get_system_status(source)["updated_at"] == EPOCH_TEXT


def test_a_mutation_on_a_manifest_returns_a_copy_and_writes_nothing(path: Path) -> None:
    data = small_manifest()
    data["packs"][1]["status"] = "installed"  # nothing pending: the backend may complete
    path.write_text(dump(data), encoding="utf-8")
    before = path.read_bytes()
    manifest = load_manifest(path)
    outcome = set_backend_complete(manifest, True, by="lib", now=LATER)
    assert outcome.changed
    assert outcome.message == "Backend marked complete at 2025-09-21 00:00 UTC"
    assert outcome.manifest.system.backend_complete is True
    assert outcome.manifest.system.completed_at == LATER
    assert outcome.manifest.system.updated_at == LATER
    assert manifest.system.backend_complete is False  # the input is untouched
    assert path.read_bytes() == before
    assert outcome.entry is not None
    recorded = {
        "at": EPOCH2_TEXT,
        "by": "lib",
        "action": "complete",
        "changes": {"backend_complete": [False, True], "completed_at": [None, EPOCH2_TEXT]},
        "notes": None,
    }
    # The entry's id is the name its file gets as the second entry; it lands at its own time.
    ident = entry_file_name(HistoryEntry.model_validate(recorded), 1).removesuffix(".yaml")
    assert ident.startswith("20250921T000000Z-000001-")
    assert outcome.entry.model_dump(mode="json") == {
        **recorded,
        "id": ident,
        "landed_at": EPOCH2_TEXT,
    }
    assert outcome.manifest.history[-1] == outcome.entry


def test_a_mutation_on_a_path_writes_the_canonical_file(path: Path) -> None:
    outcome = update_version(path, "1.2.0", notes="Release", by="lib", now=LATER)
    assert outcome.changed and outcome.message == "Version 1.0.0 → 1.2.0"
    assert load_manifest(path) == outcome.manifest
    assert path.read_text(encoding="utf-8") == dump_manifest(outcome.manifest)
    assert outcome.manifest.system.notes == "Release"


def test_guards_raise_refused_errors(path: Path) -> None:
    before = path.read_bytes()
    with pytest.raises(RefusedError, match=r"1 pack is pending \(I Reporter Premium\)"):
        set_backend_complete(path, True, by="lib", now=LATER)
    with pytest.raises(RefusedError, match=r"1 pack is pending \(I Reporter Premium\)"):
        set_backend_complete(path, True, force=True, by="lib", now=LATER)  # overrides nothing
    with pytest.raises(
        RefusedError, match=re.escape("not lowering the version from 1.0.0 to 0.9.0")
    ):
        update_version(path, "0.9.0", by="lib", now=LATER)
    with pytest.raises(RefusedError, match="pack H already exists"):
        add_pack(path, "h", "Dup", "G", by="lib", now=LATER)
    with pytest.raises(NotFoundError, match="no pack ZZ"):
        set_pack(path, "zz", status="installed", by="lib", now=LATER)
    with pytest.raises(NotFoundError, match="no pack ZZ"):
        remove_pack(path, "zz", by="lib", now=LATER)
    with pytest.raises(ValhallaError, match=re.escape("'1.0' is not a SemVer 2.0.0 version")):
        update_version(path, "1.0", by="lib", now=LATER)
    with pytest.raises(ValhallaError, match="is not a valid pack id"):
        add_pack(path, "K\u0130", "N", "G", by="lib", now=LATER)  # 'Kİ'
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["valhalla.yaml"]  # refused before any lock
    assert update_version(path, "0.9.0", force=True, by="lib", now=LATER).changed


def test_pack_mutations_and_their_history(path: Path) -> None:
    added = add_pack(path, "n1", "New", "Extras", by="lib", now=LATER)
    assert added.manifest.packs[-1] == Pack(id="N1", name="New", group="Extras", status="pending")
    changed = set_pack(path, "N1", status="installed", group="Core", by="lib", now=LATER)
    assert changed.entry is not None
    assert changed.entry.changes == {
        "packs.N1.group": ["Extras", "Core"],
        "packs.N1.status": ["pending", "installed"],
    }
    removed = remove_pack(path, "n1", by="lib", now=LATER)
    assert removed.entry is not None
    assert removed.entry.changes == {
        "packs.N1": [{"id": "N1", "name": "New", "group": "Core", "status": "installed"}, None]
    }
    history = load_manifest(path).history
    assert [e.action for e in history] == ["init", "pack-add", "pack-set", "pack-remove"]
    assert [p.id for p in load_manifest(path).packs] == ["H", "I", "S"]


def test_a_status_change_clears_the_packs_note_unless_keep_notes(path: Path) -> None:
    noted = set_pack(path, "I", notes="vendor ticket 42", by="lib", now=LATER)
    kept = set_pack(noted.manifest, "I", status="installed", keep_notes=True, by="lib", now=LATER)
    assert (kept.manifest.packs[1].status, kept.manifest.packs[1].notes) == (
        "installed",
        "vendor ticket 42",
    )
    cleared = set_pack(path, "I", status="installed", by="lib", now=LATER)
    assert cleared.message == "Pack I: pending → installed; note cleared"
    assert cleared.entry is not None
    assert cleared.entry.changes == {
        "packs.I.status": ["pending", "installed"],
        "packs.I.notes": ["vendor ticket 42", None],
    }
    assert load_manifest(path).packs[1].notes is None
    with pytest.raises(ValhallaError, match=r"^give a new note or keep the old one, not both$"):
        set_pack(path, "I", status="pending", notes="x", keep_notes=True, by="lib", now=LATER)


def test_no_change_outcome(path: Path) -> None:
    before = path.read_bytes()
    outcome = set_notes(path, None, by="lib", now=LATER)
    assert not outcome.changed
    assert outcome.entry is None
    assert outcome.message == "No change: the notes are already empty"
    assert outcome.manifest == load_manifest(path)
    assert path.read_bytes() == before


def test_ensure_system_metadata(tmp_path: Path) -> None:
    target = tmp_path / "new" / "valhalla.yaml"
    created = ensure_system_metadata(target, by="lib", now=LATER)
    assert created.changed
    assert created.message == f"Created {target} with 16 packs"
    assert load_manifest(target) == created.manifest
    assert [p.id for p in created.manifest.packs] == list("HIJKLMNOPQRSTUVW")
    again = ensure_system_metadata(target, by="other", now=datetime.now(timezone.utc))
    assert not again.changed
    assert again.manifest == created.manifest
    set_notes(target, "x", by="lib", now=LATER)
    replaced = ensure_system_metadata(target, force=True, by="lib", now=LATER)
    assert replaced.manifest == created.manifest
    assert load_manifest(target) == created.manifest


def test_errors_and_exit_codes() -> None:
    assert ValhallaError("x").exit_code == 1
    assert RefusedError("x").exit_code == 1
    assert NotFoundError("x").exit_code == 1
    assert UnavailableError("x").exit_code == 3
    error = ManifestError(["a.yaml:1: x: bad", "a.yaml:2: y: bad"])
    assert error.exit_code == 1
    assert error.format_message() == "a.yaml:1: x: bad\na.yaml:2: y: bad"
    assert ValhallaError("boom").format_message() == "error: boom"


@pytest.mark.parametrize("loaded", [False, True], ids=["path", "manifest"])
def test_no_change_makes_a_pack_pending_under_a_complete_backend(path: Path, loaded: bool) -> None:
    set_pack(path, "I", status="installed", by="lib", now=LATER)
    set_backend_complete(path, True, by="lib", now=LATER)
    before = path.read_bytes()
    source: Path | Manifest = load_manifest(path) if loaded else path
    refused = "the backend is complete; run `valhalla-status incomplete` first, or choose another"
    with pytest.raises(RefusedError) as caught:
        set_pack(source, "h", status="pending", by="lib", now=LATER)
    assert caught.value.message == f"not setting pack H pending: {refused} status"
    with pytest.raises(RefusedError) as caught:
        add_pack(source, "x", "Ex", "G", by="lib", now=LATER)  # pending, the default
    assert caught.value.message == (
        f"not adding pack X as pending: {refused} status (--status; pending is the default)"
    )
    assert path.read_bytes() == before
    assert add_pack(source, "x", "Ex", "G", "experimental", by="lib", now=LATER).changed
