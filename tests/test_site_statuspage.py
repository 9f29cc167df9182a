"""``api/v2/*.json``: the status in the Statuspage v2 API's shape and vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EPOCH2_TEXT, EPOCH_TEXT, Workspace, small_manifest


def build(ws: Workspace, data: dict[str, Any]) -> Path:
    ws.write(data)
    assert ws.run("build").exit_code == 0
    return ws.root / "site"


def api(site: Path, name: str) -> Any:
    return json.loads((site / "api/v2" / name).read_text(encoding="utf-8"))


def with_status(**system: Any) -> dict[str, Any]:
    data = small_manifest()
    data["system"].update(system)
    return data


PAGE = {
    "id": "valhalla",
    "name": "Valhalla",
    "url": "../../",
    "time_zone": "Etc/UTC",
    "updated_at": EPOCH_TEXT,
}
PROFESSIONAL = "group-professional-19c73a5cdf"
INFRASTRUCTURE = "group-system-infrastructure-922a03d48b"


def test_status_document(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    assert api(site, "status.json") == {
        "$schema": "../../schema/api-v2-status.schema.json",
        "schema_version": 1,
        "page": PAGE,
        "status": {"indicator": "minor", "description": "1 pack pending; backend in development"},
    }


@pytest.mark.parametrize(
    ("complete", "pack_i", "indicator", "text"),
    [
        (False, "pending", "minor", "1 pack pending"),
        (False, "installed", "none", "All Systems Operational"),
        (True, "installed", "none", "All Systems Operational"),
        (True, "deprecated", "none", "All Systems Operational"),
    ],
)
def test_the_indicator_follows_the_pending_packs_never_the_backend_flag(
    ws: Workspace, complete: bool, pack_i: str, indicator: str, text: str
) -> None:
    # (a complete backend with a pending pack is an invalid manifest: never built)
    data = (
        with_status(backend_complete=True, completed_at=EPOCH_TEXT)
        if complete
        else small_manifest()
    )
    data["packs"][1]["status"] = pack_i
    backend = "complete" if complete else "in development"
    status = {"indicator": indicator, "description": f"{text}; backend {backend}"}
    site = build(ws, data)
    assert api(site, "status.json")["status"] == status
    assert api(site, "summary.json")["status"] == status


def test_components_map_packs_and_groups(ws: Workspace) -> None:
    data = small_manifest()
    data["packs"].append(
        {"id": "X", "name": "Old Thing", "group": "System infrastructure", "status": "deprecated"}
    )
    data["system"]["updated_at"] = EPOCH2_TEXT
    data["history"].append(
        {
            "at": EPOCH2_TEXT,
            "by": "bob",
            "action": "pack-add",
            "changes": {
                "packs.X": [
                    None,
                    {
                        "id": "X",
                        "name": "Old Thing",
                        "group": "System infrastructure",
                        "status": "deprecated",
                    },
                ]
            },
            "notes": None,
        }
    )
    site = build(ws, data)
    listed = api(site, "components.json")["components"]
    assert [(c["id"], c["status"], c["position"], c["group_id"]) for c in listed] == [
        (PROFESSIONAL, "under_maintenance", 1, None),
        ("H", "operational", 1, PROFESSIONAL),
        ("I", "under_maintenance", 2, PROFESSIONAL),
        (INFRASTRUCTURE, "operational", 2, None),
        ("S", "operational", 1, INFRASTRUCTURE),
        ("X", "operational", 2, INFRASTRUCTURE),
    ]
    assert listed[0] == {
        "id": PROFESSIONAL,
        "name": "Professional",
        "status": "under_maintenance",
        "created_at": EPOCH_TEXT,
        "updated_at": EPOCH_TEXT,
        "position": 1,
        "description": None,
        "showcase": True,
        "start_date": None,
        "group_id": None,
        "page_id": "valhalla",
        "group": True,
        "only_show_if_degraded": False,
        "components": ["H", "I"],
    }
    assert listed[5] == {
        "id": "X",
        "name": "Old Thing",
        "status": "operational",
        "created_at": EPOCH2_TEXT,
        "updated_at": EPOCH2_TEXT,
        "position": 2,
        "description": "Pack X (System infrastructure): deprecated",
        "showcase": True,
        "start_date": None,
        "group_id": INFRASTRUCTURE,
        "page_id": "valhalla",
        "group": False,
        "only_show_if_degraded": False,
    }
    assert listed[3]["updated_at"] == EPOCH2_TEXT


def test_summary_has_every_statuspage_section(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    summary = api(site, "summary.json")
    assert list(summary) == [
        "$schema",
        "schema_version",
        "page",
        "components",
        "incidents",
        "scheduled_maintenances",
        "status",
    ]
    assert summary["page"] == PAGE
    assert summary["components"] == api(site, "components.json")["components"]
    assert summary["incidents"] == summary["scheduled_maintenances"] == []


def test_no_pending_pack_is_operational(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    by_id = {c["id"]: c for c in api(site, "components.json")["components"]}
    assert by_id["I"]["status"] != "operational"
