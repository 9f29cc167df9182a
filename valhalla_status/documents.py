"""The published JSON documents (status.json and friends).

``status_document`` and ``history_document`` are built from a validated manifest; the pack
documents and their counts from the packs. ``show --json`` and friends print exactly these, so
the CLI and the site never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError
from pydantic_core import to_json as _encode

from .formats import STATUSES
from .text import for_json

if TYPE_CHECKING:
    from .models import Manifest, Pack

HISTORY_FEED_LENGTH = 50
HISTORY_PAGE_SIZE = HISTORY_FEED_LENGTH
# The version of every published document's shape; additions keep it, removals and changes of
# meaning raise it.
SCHEMA_VERSION = 1
# The documents' JSON Schemas, generated from the models (``python -m valhalla_status.schemas``)
# and shipped in the package.
SCHEMA_FOLDER = Path(__file__).parent / "schema"


def to_json(document: Any) -> str:
    """UTF-8 text, 2-space indent, keys in the order built, trailing newline.

    pydantic-core's encoder writes what ``json.dumps(indent=2, ensure_ascii=False)`` writes
    (floats aside: ``1e-7``, not ``1e-07``), several times faster. Documents never hold NaN or
    infinities: the models refuse them.

    Both encoders escape only C0 controls; DEL, C1 controls, bidi and other format characters
    are then written as ``\\uXXXX`` escapes too (:func:`valhalla_status.text.for_json`, the
    rule the terminal output follows), so no published file and no ``--json`` output carries
    one raw. The text decodes to the same document.

    pydantic-core stops at a nesting depth of 255, and ``extra`` and history values the models
    accept may sit deeper in a document: those documents are written by ``json.dumps``.
    """
    try:
        data = _encode(document, indent=2)
    except PydanticSerializationError as exc:
        import json

        try:
            text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise exc from None
        return for_json(text) + "\n"
    return for_json(data.decode(), utf8=data) + "\n"


def schema_file_for(path: str) -> str:
    """The schema file (under ``schema/``) describing the published JSON file at ``path``."""
    if path.startswith("packs/"):
        return "pack.schema.json"
    if path.startswith("history/"):
        return "history.schema.json"
    return path.removesuffix(".json").replace("/", "-") + ".schema.json"


def relative_root(path: str) -> str:
    """The site's root as a reference relative to the file at ``path`` (``./``, ``../``…)."""
    depth = path.count("/")
    return "../" * depth if depth else "./"


def described(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as published at ``path``: first its schema (a reference relative to the
    document, as every link in a document is) and the schema version, then the body."""
    return {
        "$schema": relative_root(path).removeprefix("./") + "schema/" + schema_file_for(path),
        "schema_version": SCHEMA_VERSION,
        **body,
    }


def pack_document(pack: Pack, since: str | None = None) -> dict[str, Any]:
    """A pack's document: its fields, its note and since when it has had its status."""
    return {
        "id": pack.id,
        "name": pack.name,
        "group": pack.group,
        "status": pack.status,
        "notes": pack.notes,
        "since": since,
    }


def pack_since(manifest: Manifest) -> dict[str, str]:
    """Pack id -> the time the newest history entry that set its status landed.

    That is a ``packs.<ID>.status`` change, the pack's addition, or (for packs it does not
    name) the newest ``init`` entry; a pack none of these covers is absent (unknown). A
    ``migrate`` entry records the values it found, not a change: it sets no ``since``.
    """
    from .models import format_timestamp

    since: dict[str, str] = {}
    init: str | None = None
    for entry in manifest.history:
        landed = format_timestamp(getattr(entry, "landed_at", entry.at))
        if entry.action == "init":
            since.clear()
            init = landed
        for field, (_, new) in entry.changes.items():
            if entry.action == "migrate" or not field.startswith("packs."):
                continue
            rest = field[len("packs.") :]
            if rest.endswith(".status"):
                since[rest[: -len(".status")]] = landed
            elif "." not in rest and new is not None:
                since[rest] = landed
    if init is not None:
        for pack in manifest.packs:
            since.setdefault(pack.id, init)
    return since


def pack_documents(manifest: Manifest) -> list[dict[str, Any]]:
    """Every pack's document, in display order."""
    since = pack_since(manifest)
    return [pack_document(p, since.get(p.id)) for p in manifest.packs]


def pack_file_document(pack: dict[str, Any]) -> dict[str, Any]:
    """``packs/<ID>.json``: one pack document, with its schema."""
    return described(f"packs/{pack['id']}.json", pack)


def summary_counts(packs: Iterable[Pack | dict[str, Any]]) -> dict[str, int]:
    """Counts per status of packs (models or pack documents)."""
    counts = dict.fromkeys(STATUSES, 0)
    total = 0
    for pack in packs:
        counts[pack["status"] if isinstance(pack, dict) else pack.status] += 1
        total += 1
    return {
        "total_packs": total,
        "installed_packs": counts["installed"],
        "pending_packs": counts["pending"],
        "deprecated_packs": counts["deprecated"],
        "experimental_packs": counts["experimental"],
    }


def packs_document(packs: Iterable[Pack | dict[str, Any]]) -> dict[str, Any]:
    """``packs.json``: the packs (models or pack documents) and their counts."""
    listed = [p if isinstance(p, dict) else pack_document(p) for p in packs]
    return described("packs.json", {"packs": listed, "summary": summary_counts(listed)})


def summary_document(manifest: Manifest) -> dict[str, Any]:
    return described(
        "summary.json",
        {**summary_counts(manifest.packs), "description": manifest.system.description},
    )


def status_document(manifest: Manifest) -> dict[str, Any]:
    from .models import format_timestamp

    system = manifest.system
    packs = pack_documents(manifest)
    return described(
        "status.json",
        {
            "name": system.name,
            "description": system.description,
            "version": system.version,
            "backend_complete": system.backend_complete,
            "notes": system.notes,
            "updated_at": format_timestamp(system.updated_at),
            "completed_at": format_timestamp(system.completed_at) if system.completed_at else None,
            "packs": packs,
            "summary": summary_counts(packs),
            "extra": system.extra,
        },
    )


def history_path(page: int) -> str:
    """Where page ``page`` of the history is published: ``history.json``, ``history/2.json``…"""
    return "history.json" if page == 1 else f"history/{page}.json"


def history_page_count(total: int) -> int:
    return max(1, -(-total // HISTORY_PAGE_SIZE))


def history_page(
    entries: list[dict[str, Any]], page: int = 1, per_page: int | None = HISTORY_PAGE_SIZE
) -> dict[str, Any]:
    """One page of the history (``entries``: all of it, newest first).

    ``total`` counts every entry; ``prev`` and ``next`` link the neighbouring pages (relative
    to this one; null at either end). Only pages of the published size are linked: a page of
    another size (``history --json --limit N``) has no neighbours on the site.
    """
    path = history_path(page)
    first = 0 if per_page is None else (page - 1) * per_page
    shown = entries[first:] if per_page is None else entries[first : first + per_page]
    linked = per_page == HISTORY_PAGE_SIZE
    last = history_page_count(len(entries))
    root = relative_root(path).removeprefix("./")
    return described(
        path,
        {
            "total": len(entries),
            "page": page,
            "prev": root + history_path(page - 1) if linked and page > 1 else None,
            "next": root + history_path(page + 1) if linked and page < last else None,
            "history": shown,
        },
    )


def history_entries(manifest: Manifest) -> list[dict[str, Any]]:
    """Every history entry as published (with its id and landing time), newest first."""
    from .canonical import with_ids

    return [entry.model_dump(mode="json") for entry in with_ids(manifest).history[::-1]]


def history_pages(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """``history.json`` and ``history/<N>.json``: all of the history, 50 entries a page."""
    entries = history_entries(manifest)
    return {
        history_path(page): history_page(entries, page)
        for page in range(1, history_page_count(len(entries)) + 1)
    }


def history_document(manifest: Manifest, limit: int | None = HISTORY_FEED_LENGTH) -> dict[str, Any]:
    """The ``limit`` most recent entries (all with None), newest first, as ``history.json``."""
    return history_page(history_entries(manifest), 1, limit)
