"""``metrics.txt``: the status in Prometheus' text exposition format (version 0.0.4).

Every series is a gauge, written in a fixed order (the packs in the manifest's order, the
statuses in theirs), so the same manifest gives the same bytes. Label values are escaped as the
format asks (backslash, double quote, line feed); so is help text (backslash, line feed).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..models import Manifest
from ..rules.formats import STATUSES, parse_timestamp
from ..rules.history import pack_since

Sample = tuple[dict[str, str], float | int]


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _family(name: str, text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {_help(text)}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        shown = ",".join(f'{key}="{_label_value(v)}"' for key, v in labels.items())
        lines.append(f"{name}{{{shown}}} {_number(value)}" if shown else f"{name} {_number(value)}")
    return lines


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def backend_since(manifest: Manifest) -> datetime | None:
    """When the backend got its current readiness: the landing of the newest entry that changed
    it, else of the newest ``init``; None when neither is in the history."""
    since: datetime | None = None
    for entry in manifest.history:
        landed: datetime = getattr(entry, "landed_at", entry.at)
        if entry.action == "init" or (
            entry.action != "migrate" and "backend_complete" in entry.changes
        ):
            since = landed
    if since is None and manifest.system.completed_at is not None:
        return manifest.system.completed_at
    return since


def metrics_text(manifest: Manifest, since: dict[str, str] | None = None) -> str:
    """The text of ``metrics.txt`` (``since``: each pack's, when known already)."""
    system = manifest.system
    counts = dict.fromkeys(STATUSES, 0)
    for pack in manifest.packs:
        counts[pack.status] += 1
    since = pack_since(manifest) if since is None else since
    backend = backend_since(manifest)
    lines = [
        *_family(
            "valhalla_info",
            "The system's name and version; always 1.",
            [({"name": system.name, "version": system.version}, 1)],
        ),
        *_family(
            "valhalla_backend_complete",
            "Whether the backend is complete (1) or in development (0).",
            [({}, int(system.backend_complete))],
        ),
        *_family(
            "valhalla_backend_status_since_timestamp_seconds",
            "When the backend's readiness last changed to what it is now (Unix time).",
            [({}, _seconds(backend))] if backend else [],
        ),
        *_family(
            "valhalla_updated_timestamp_seconds",
            "When the status last changed (Unix time).",
            [({}, _seconds(system.updated_at))],
        ),
        *_family(
            "valhalla_packs",
            "The number of packs with each status.",
            [({"status": status}, count) for status, count in counts.items()],
        ),
        *_family(
            "valhalla_pack_status",
            "Each pack's status: 1 for the status it has, 0 for the others.",
            [
                ({"pack": pack.id, "status": status}, int(pack.status == status))
                for pack in manifest.packs
                for status in STATUSES
            ],
        ),
        *_family(
            "valhalla_pack_status_since_timestamp_seconds",
            "When each pack got the status it has (Unix time).",
            [
                ({"pack": pack.id}, _seconds(parse_timestamp(since[pack.id])))
                for pack in manifest.packs
                if pack.id in since
            ],
        ),
    ]
    return "\n".join(lines) + "\n"
