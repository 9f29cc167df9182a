"""Promises of the documented contract, checked the way an outside user meets them."""

from __future__ import annotations

import pytest
from conftest import EPOCH, Workspace

# The one-file layout written by hand, exactly as the manifest format is documented: key order,
# block style, 2-space indent, history inline, no header comment.
HAND_WRITTEN = """\
schema_version: 1
system:
  name: Valhalla
  description: Valhalla professional capital markets system
  version: 1.0.0
  backend_complete: true
  notes: Backend verification passed
  updated_at: '2025-09-20T00:00:00Z'
  completed_at: '2025-09-20T00:00:00Z'
  extra: {}
packs:
- id: H
  name: Analyst Essentials
  group: Professional
  status: installed
- id: S
  name: Rollout Manager
  group: System infrastructure
  status: installed
history:
- at: '2025-09-20T00:00:00Z'
  by: alice
  action: complete
  changes:
    backend_complete: [false, true]
    completed_at: [null, '2025-09-20T00:00:00Z']
    notes: [null, Backend verification passed]
  notes: Backend verification passed
"""

IN_DEVELOPMENT = (
    HAND_WRITTEN.replace("backend_complete: true", "backend_complete: false")
    .replace("  notes: Backend verification passed\n  updated_at", "  notes: null\n  updated_at")
    .replace("  completed_at: '2025-09-20T00:00:00Z'\n  extra", "  completed_at: null\n  extra")
    .split("history:\n")[0]
    + "history:\n- at: '2025-09-20T00:00:00Z'\n  by: alice\n  action: init\n  changes: {}\n"
    + "  notes: null\n"
)
VARIANTS = {
    "as documented": HAND_WRITTEN,
    # base_url sits after description.
    "with base_url": HAND_WRITTEN.replace(
        "  description: Valhalla professional capital markets system\n",
        "  description: Valhalla professional capital markets system\n"
        "  base_url: https://status.example.com\n",
    ),
    "in development": IN_DEVELOPMENT,
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_hand_written_manifest_in_canonical_form_is_canonical(ws: Workspace, name: str) -> None:
    text = VARIANTS[name]
    ws.write(text)
    assert ws.run("validate").exit_code == 0
    checked = ws.run("fmt", "--check")
    assert checked.exit_code == 0, checked.stderr
    # fmt adds the writer's header comment and changes nothing else.
    formatted = ws.run("fmt")
    assert formatted.exit_code == 0, formatted.stderr
    written = ws.manifest.read_text(encoding="utf-8")
    assert written.endswith(text)
    assert all(line.startswith("# ") for line in written.removesuffix(text).splitlines())
    assert ws.run("fmt", "--check").exit_code == 0


def test_a_hand_written_manifest_out_of_canonical_form_is_still_reported(ws: Workspace) -> None:
    for text in (
        HAND_WRITTEN.replace("  status: installed\n", "  status: 'installed'\n", 1),
        HAND_WRITTEN.replace("version: 1.0.0\n  backend", "version: '1.0.0'\n  backend"),
        "# my own comment\n" + HAND_WRITTEN,
        HAND_WRITTEN.replace(
            "backend_complete: [false, true]", "backend_complete:\n    - false\n    - true"
        ),
    ):
        ws.write(text)
        assert ws.run("fmt", "--check").exit_code == 1, text


def test_a_hand_written_manifest_accepts_mutations(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH + 3600))
    ws.write(HAND_WRITTEN)
    for args in (
        ("incomplete", "--notes", "regressed", "--by", "bob"),
        ("pack", "set", "h", "--status", "pending", "--by", "bob"),
        ("set-version", "1.1.0", "--by", "bob"),
        ("pack", "add", "x", "--name", "Risk", "--group", "Professional", "--by", "bob"),
        ("pack", "remove", "X", "--by", "bob"),
        ("pack", "set", "h", "--status", "installed", "--by", "bob"),
        ("complete", "--force", "--by", "bob"),  # still accepted: nothing is pending
    ):
        result = ws.run(*args, "--no-build")
        assert result.exit_code == 0, (args, result.stderr)
        assert result.stdout == ""
    assert ws.run("validate").exit_code == 0
    assert ws.run("fmt", "--check").exit_code == 0
    data = ws.read()
    assert data["schema_version"] == 1
    assert [entry["action"] for entry in data["history"]] == [
        "complete",
        "incomplete",
        "pack-set",
        "set-version",
        "pack-add",
        "pack-remove",
        "pack-set",
        "complete",
    ]
    assert data["system"]["version"] == "1.1.0"


def test_the_library_functions_take_a_manifest_path_or_a_loaded_manifest(
    ws: Workspace, epoch: int
) -> None:
    import valhalla_status as api
    from valhalla_status.manifest import load_manifest

    assert ws.run("init", "--no-build").exit_code == 0
    before = ws.manifest.read_bytes()
    loaded = load_manifest(ws.manifest)
    for source in (ws.manifest, str(ws.manifest), loaded):
        assert api.get_system_metadata(source).version == "1.0.0"
        assert len(api.get_packs(source)) == 16
        assert api.get_pack_by_id(source, "k") is not None
        assert api.get_pack_by_id(source, "ZZ") is None
        assert api.count_packs_by_status(source)["installed"] == 16
        assert api.get_system_summary(source)["total_packs"] == 16
        assert api.get_system_status(source)["version"] == "1.0.0"
    for source in (ws.manifest, str(ws.manifest), loaded):
        assert not api.ensure_system_metadata(source).changed
    assert ws.manifest.read_bytes() == before
    # On a loaded manifest a change is made in memory only.
    assert api.ensure_system_metadata(loaded, force=True).manifest.system.version == "1.0.0"
    assert api.update_version(loaded, "2.0.0").manifest.system.version == "2.0.0"
    assert api.set_backend_complete(loaded, True).manifest.system.backend_complete
    assert ws.manifest.read_bytes() == before


def test_every_date_on_the_page_reads_as_a_utc_minute_in_a_time_element(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    assert ws.run("init").exit_code == 0
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH + 3661))
    assert ws.run("pack", "set", "K", "--status", "experimental", "--notes", "trial").exit_code == 0
    assert ws.run("complete").exit_code == 0
    page = (ws.root / "site/index.html").read_text(encoding="utf-8")
    assert page.endswith("</html>\n")
    times = re.findall(r'<time datetime="([^"]+)">([^<]*)</time>', page)
    assert len(times) >= 18  # updated, complete since, 16 packs since, recent changes
    for stamp, shown in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", shown), shown
        assert shown == f"{stamp[:10]} {stamp[11:16]} UTC"
    assert "Backend complete since <time" in page
    assert "experimental since <time" in page
