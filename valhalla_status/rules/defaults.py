"""The default manifest's values: what ``init`` writes, and what an ``init`` entry with no
changes stands for when the history is replayed."""

from __future__ import annotations

from typing import Any

DEFAULT_PACKS: tuple[tuple[str, str, str], ...] = (
    ("H", "Analyst Essentials", "Professional"),
    ("I", "Reporter Premium", "Professional"),
    ("J", "Dashboard Master", "Professional"),
    ("K", "Executor Pro", "Professional"),
    ("L", "Verifier Suite", "Professional"),
    ("M", "Tracker Manager", "Professional"),
    ("N", "Forecaster Analytics", "Professional"),
    ("O", "Forecaster Pro", "Professional"),
    ("P", "Supervisor Manager", "Professional"),
    ("Q", "Supervisor Insight", "Professional"),
    ("R", "Analyst Enterprise", "Professional"),
    ("S", "Rollout Manager", "System infrastructure"),
    ("T", "Security Protocol", "System infrastructure"),
    ("U", "Debug Suite", "System infrastructure"),
    ("V", "Deployment Checklist", "System infrastructure"),
    ("W", "System Completion Metadata", "System infrastructure"),
)

DEFAULT_SYSTEM: dict[str, Any] = {
    "name": "Valhalla",
    "description": "Valhalla professional capital markets system",
    "base_url": None,
    "version": "1.0.0",
    "backend_complete": False,
    "completed_at": None,
    "extra": {},
    "notes": None,
}


def default_packs() -> list[dict[str, Any]]:
    """The default packs as the history records a pack (no ``notes`` key: none is set)."""
    return [
        {"id": pack_id, "name": name, "group": group, "status": "installed"}
        for pack_id, name, group in DEFAULT_PACKS
    ]
