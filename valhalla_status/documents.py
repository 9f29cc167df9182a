"""The published JSON documents (status.json and friends), built from a manifest.

``show --json`` and the others print exactly these, so the CLI and the site never disagree.
"""

from __future__ import annotations

import json
from typing import Any

from .models import STATUSES, Manifest, Pack, format_timestamp

HISTORY_FEED_LENGTH = 50


def to_json(document: Any) -> str:
    """UTF-8 text, 2-space indent, keys in the order built, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def pack_document(pack: Pack) -> dict[str, Any]:
    return {"id": pack.id, "name": pack.name, "group": pack.group, "status": pack.status}


def summary_counts(packs: list[Pack]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for pack in packs:
        counts[pack.status] += 1
    return {
        "total_packs": len(packs),
        "installed_packs": counts["installed"],
        "pending_packs": counts["pending"],
        "deprecated_packs": counts["deprecated"],
        "experimental_packs": counts["experimental"],
    }


def summary_document(manifest: Manifest) -> dict[str, Any]:
    return {**summary_counts(manifest.packs), "description": manifest.system.description}


def packs_document(packs: list[Pack]) -> dict[str, Any]:
    return {"packs": [pack_document(p) for p in packs], "summary": summary_counts(packs)}


def status_document(manifest: Manifest) -> dict[str, Any]:
    system = manifest.system
    return {
        "schema_version": manifest.schema_version,
        "name": system.name,
        "description": system.description,
        "version": system.version,
        "backend_complete": system.backend_complete,
        "notes": system.notes,
        "updated_at": format_timestamp(system.updated_at),
        "completed_at": format_timestamp(system.completed_at) if system.completed_at else None,
        "packs": [pack_document(p) for p in manifest.packs],
        "summary": summary_counts(manifest.packs),
        "extra": system.extra,
    }


def history_document(manifest: Manifest, limit: int = HISTORY_FEED_LENGTH) -> dict[str, Any]:
    entries = manifest.history[::-1][:limit]
    return {"history": [entry.model_dump(mode="json") for entry in entries]}
