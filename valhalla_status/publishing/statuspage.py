"""The status in the public Statuspage v2 API's shape (``api/v2/*.json``).

Mapping (the table is in docs/SITE.md):

- pack ``installed``, ``experimental``, ``deprecated`` -> component ``operational`` (the
  pack works; its status is in the component's description); ``pending`` ->
  ``under_maintenance``: it is not available yet, by plan rather than by failure.
- each pack group is a group component whose status is the worst of its packs.
- page indicator: ``none`` while no pack is pending, ``minor`` while any is. The backend flag
  never raises the indicator (a backend still in development is not an outage); it is named
  in the description. ``major`` and ``critical`` are never emitted: no manifest state is an
  outage.
- incidents and scheduled maintenances: none are recorded, so those lists are empty.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from ..models import Manifest, format_timestamp
from ..rules.formats import STATUSES, split_pack_change_key
from .documents import described, relative_root

COMPONENT_STATUS = {
    status: "under_maintenance" if status == "pending" else "operational" for status in STATUSES
}
# Least to most severe, for a group's roll-up.
SEVERITY = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
# Every path of the public read API, with the sections each one lists.
API_PATHS = (
    "api/v2/summary.json",
    "api/v2/status.json",
    "api/v2/components.json",
    "api/v2/incidents.json",
    "api/v2/incidents/unresolved.json",
    "api/v2/scheduled-maintenances.json",
    "api/v2/scheduled-maintenances/upcoming.json",
    "api/v2/scheduled-maintenances/active.json",
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def page_id(name: str) -> str:
    """The page's id: the slug of the system name, or a digest of it when nothing is left."""
    return _slug(name) or _digest(name)


def group_id(group: str) -> str:
    """A group component's id, from the group's name alone: a readable slug (at most 24
    characters, possibly empty) and a digest of the exact name, so two names never share an
    id and removing one group never renames another."""
    slug = _slug(group)[:24].strip("-")
    return f"group-{slug}-{_digest(group)}" if slug else f"group-{_digest(group)}"


def page_status(manifest: Manifest) -> dict[str, str]:
    """The page's ``status``: indicator and description."""
    pending = sum(1 for p in manifest.packs if p.status == "pending")
    backend = "complete" if manifest.system.backend_complete else "in development"
    if pending:
        noun = "pack" if pending == 1 else "packs"
        return {
            "indicator": "minor",
            "description": f"{pending} {noun} pending; backend {backend}",
        }
    return {"indicator": "none", "description": f"All Systems Operational; backend {backend}"}


def _pack_times(manifest: Manifest) -> dict[str, tuple[datetime, datetime]]:
    """Each pack's (created_at, updated_at), from the history where it says."""
    start = manifest.history[0].at if manifest.history else manifest.system.updated_at
    created: dict[str, datetime] = {}
    updated: dict[str, datetime] = {}
    for entry in manifest.history:
        for key, (old, _new) in entry.changes.items():
            about = split_pack_change_key(key)
            if about is not None:
                pack_id, attribute = about
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
    texts: dict[datetime, str] = {}  # most packs share a few moments: format each once
    for moment in {moment for span in times.values() for moment in span}:
        texts[moment] = format_timestamp(moment)
    groups: dict[str, list[dict[str, Any]]] = {}
    group_ids: dict[str, str] = {}
    for pack in manifest.packs:
        if pack.group not in group_ids:
            group_ids[pack.group] = group_id(pack.group)
        members = groups.setdefault(pack.group, [])
        created, updated = times[pack.id]
        members.append(
            {
                "id": pack.id,
                "name": pack.name,
                "status": COMPONENT_STATUS[pack.status],
                "created_at": texts[created],
                "updated_at": texts[updated],
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
    """Every ``api/v2/*.json`` document, keyed by site path.

    ``page.url`` is the status page: ``base_url`` when set, else the site's root relative to
    the document (``../../`` from ``api/v2/status.json``), so it is always a string.
    """
    system = manifest.system
    identity = page_id(system.name)
    status = page_status(manifest)
    listed = components(manifest, identity)

    def page(path: str) -> dict[str, Any]:
        return {
            "id": identity,
            "name": system.name,
            "url": base_url or relative_root(path),
            "time_zone": "Etc/UTC",
            "updated_at": format_timestamp(system.updated_at),
        }

    bodies: dict[str, dict[str, Any]] = {
        "api/v2/summary.json": {
            "components": listed,
            "incidents": [],
            "scheduled_maintenances": [],
            "status": status,
        },
        "api/v2/status.json": {"status": status},
        "api/v2/components.json": {"components": listed},
        "api/v2/incidents.json": {"incidents": []},
        "api/v2/incidents/unresolved.json": {"incidents": []},
        "api/v2/scheduled-maintenances.json": {"scheduled_maintenances": []},
        "api/v2/scheduled-maintenances/upcoming.json": {"scheduled_maintenances": []},
        "api/v2/scheduled-maintenances/active.json": {"scheduled_maintenances": []},
    }
    return {path: described(path, {"page": page(path), **bodies[path]}) for path in API_PATHS}
