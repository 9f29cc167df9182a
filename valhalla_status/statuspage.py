"""The status in the public Statuspage v2 API's shape (``api/v2/*.json``).

Mapping (documented in docs/SITE.md):

- pack ``installed``, ``experimental``, ``deprecated`` -> component ``operational`` (the
  pack works; its status is in the component's description); ``pending`` ->
  ``under_maintenance`` (not operational: it is being installed).
- each pack group is a group component whose status is the worst of its packs.
- page indicator: backend complete and nothing pending -> ``none`` "All Systems Operational";
  backend complete with pending packs -> ``minor``; backend in development -> ``major``.
  ``critical`` is never emitted: no manifest state means an outage.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .models import Manifest, format_timestamp

COMPONENT_STATUS = {
    "installed": "operational",
    "experimental": "operational",
    "deprecated": "operational",
    "pending": "under_maintenance",
}
# Least to most severe, for a group's roll-up.
SEVERITY = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def page_status(manifest: Manifest) -> dict[str, str]:
    """The page's ``status``: indicator and description."""
    pending = sum(1 for p in manifest.packs if p.status == "pending")
    if not manifest.system.backend_complete:
        return {"indicator": "major", "description": "Backend in development"}
    if pending:
        noun = "pack" if pending == 1 else "packs"
        return {"indicator": "minor", "description": f"Backend complete; {pending} {noun} pending"}
    return {"indicator": "none", "description": "All Systems Operational"}


def _pack_times(manifest: Manifest) -> dict[str, tuple[datetime, datetime]]:
    """Each pack's (created_at, updated_at), from the history where it says."""
    start = manifest.history[0].at if manifest.history else manifest.system.updated_at
    created: dict[str, datetime] = {}
    updated: dict[str, datetime] = {}
    for entry in manifest.history:
        for field, (old, _new) in entry.changes.items():
            if field.startswith("packs."):
                pack_id, _, attribute = field[6:].partition(".")
                if not attribute and old is None:
                    created[pack_id] = entry.at
                updated[pack_id] = entry.at
    times = {}
    for pack in manifest.packs:
        born = created.get(pack.id, start)
        times[pack.id] = (born, updated.get(pack.id, born))
    return times


def components(manifest: Manifest, page_id: str) -> list[dict[str, Any]]:
    """Group components, each followed by its packs' components."""
    times = _pack_times(manifest)
    groups: dict[str, list[dict[str, Any]]] = {}
    group_ids: dict[str, str] = {}
    for pack in manifest.packs:
        if pack.group not in group_ids:
            slug = f"group-{_slug(pack.group)}"
            while slug in group_ids.values():
                slug += "-2"
            group_ids[pack.group] = slug
        members = groups.setdefault(pack.group, [])
        created, updated = times[pack.id]
        members.append(
            {
                "id": pack.id,
                "name": pack.name,
                "status": COMPONENT_STATUS[pack.status],
                "created_at": format_timestamp(created),
                "updated_at": format_timestamp(updated),
                "position": len(members) + 1,
                "description": f"Pack {pack.id} ({pack.group}): {pack.status}",
                "showcase": True,
                "start_date": None,
                "group_id": group_ids[pack.group],
                "page_id": page_id,
                "group": False,
                "only_show_if_degraded": False,
            }
        )
    result: list[dict[str, Any]] = []
    for position, (group, members) in enumerate(groups.items(), start=1):
        spans = [times[m["id"]] for m in members]
        result.append(
            {
                "id": group_ids[group],
                "name": group,
                "status": max((m["status"] for m in members), key=SEVERITY.index),
                "created_at": format_timestamp(min(born for born, _ in spans)),
                "updated_at": format_timestamp(max(changed for _, changed in spans)),
                "position": position,
                "description": None,
                "showcase": True,
                "start_date": None,
                "group_id": None,
                "page_id": page_id,
                "group": True,
                "only_show_if_degraded": False,
                "components": [m["id"] for m in members],
            }
        )
        result.extend(members)
    return result


def statuspage_documents(manifest: Manifest, base_url: str) -> dict[str, dict[str, Any]]:
    """``api/v2/summary.json``, ``status.json`` and ``components.json``, keyed by site path."""
    system = manifest.system
    page = {
        "id": _slug(system.name),
        "name": system.name,
        "url": base_url or None,
        "time_zone": "Etc/UTC",
        "updated_at": format_timestamp(system.updated_at),
    }
    status = page_status(manifest)
    listed = components(manifest, _slug(system.name))
    return {
        "api/v2/summary.json": {
            "page": page,
            "components": listed,
            "incidents": [],
            "scheduled_maintenances": [],
            "status": status,
        },
        "api/v2/status.json": {"page": page, "status": status},
        "api/v2/components.json": {"page": page, "components": listed},
    }
