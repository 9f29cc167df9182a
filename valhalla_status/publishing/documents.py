"""The published JSON documents (status.json and friends).

``status_document`` and ``history_document`` are built from a validated manifest; the pack
documents and their counts from the packs. ``show --json`` and friends print exactly these, so
the CLI and the site never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from pydantic_core import to_json as _encode

from ..rules.formats import summary_of
from ..rules.history import pack_since
from ..rules.text import for_json, json_text

if TYPE_CHECKING:
    from ..models import Manifest, Pack

HISTORY_FEED_LENGTH = 50
HISTORY_PAGE_SIZE = HISTORY_FEED_LENGTH
# The version of every published document's shape; additions keep it, removals and changes of
# meaning raise it.
SCHEMA_VERSION = 1
# The documents' JSON Schemas, generated from the models
# (``python -m valhalla_status.publishing.schemas``) and shipped in the package.
SCHEMA_FOLDER = Path(__file__).parent.parent / "schema"


def to_json(document: Any) -> str:
    """UTF-8 text, 2-space indent, keys in the order built, trailing newline.

    pydantic-core's encoder writes what ``json.dumps(indent=2, ensure_ascii=False)`` writes,
    floats aside (``0.00001`` and ``1e-7``, not ``1e-05`` and ``1e-07``): the published files
    have always held its text. Documents never hold NaN or infinities: the models refuse them.

    Both encoders escape only C0 controls; DEL, C1 controls, bidi and other format characters
    are then written as ``\\uXXXX`` escapes too (:func:`valhalla_status.rules.text.for_json`, the
    rule the terminal output follows), so no published file and no ``--json`` output carries
    one raw. The text decodes to the same document.

    pydantic-core stops at a nesting depth of 255, and ``extra`` and history values the models
    accept may sit deeper in a document: those documents are written by
    :func:`valhalla_status.rules.text.json_text`, the standard library's form of the same text.
    """
    try:
        data = _encode(document, indent=2)
    except PydanticSerializationError as exc:
        try:
            return json_text(document, default=_model_data)
        except (TypeError, ValueError, RecursionError):
            raise exc from None
    return for_json(data.decode()) + "\n"


def _model_data(value: Any) -> Any:
    """A model in a document, as the standard library's encoder writes it."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON")


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


def pack_documents(manifest: Manifest, since: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every pack's document, in display order (``since``: each pack's, when known already)."""
    since = pack_since(manifest) if since is None else since
    return [pack_document(p, since.get(p.id)) for p in manifest.packs]


def pack_file_document(pack: dict[str, Any]) -> dict[str, Any]:
    """``packs/<ID>.json``: one pack document, with its schema."""
    return described(f"packs/{pack['id']}.json", pack)


def summary_counts(packs: Iterable[Pack | dict[str, Any]]) -> dict[str, int]:
    """Counts per status of packs (models or pack documents)."""
    return summary_of(pack["status"] if isinstance(pack, dict) else pack.status for pack in packs)


def packs_document(packs: Iterable[Pack | dict[str, Any]]) -> dict[str, Any]:
    """``packs.json``: the packs (models or pack documents) and their counts."""
    listed = [p if isinstance(p, dict) else pack_document(p) for p in packs]
    return described("packs.json", {"packs": listed, "summary": summary_counts(listed)})


def summary_document(manifest: Manifest) -> dict[str, Any]:
    return described(
        "summary.json",
        {**summary_counts(manifest.packs), "description": manifest.system.description},
    )


def status_document(manifest: Manifest, since: dict[str, str] | None = None) -> dict[str, Any]:
    from ..models import format_timestamp

    system = manifest.system
    packs = pack_documents(manifest, since)
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


class HistoryPage(NamedTuple):
    """Where one page of the history is published and which entries it holds: ``start`` and
    ``end`` index the whole history, newest first."""

    path: str
    number: int
    start: int
    end: int


def history_layout(total: int) -> list[HistoryPage]:
    """The pages of a history of ``total`` entries, newest first.

    ``history.json`` holds the newest 50; the older entries are numbered from the oldest:
    ``history/1.json`` holds the oldest 50, ``history/2.json`` the next 50, and so on, the
    newest of them partly filled. So a page, once full, never changes its entries, and an
    entry that has left ``history.json`` stays on the same numbered page as changes land.
    ``history.json`` has the number after the newest numbered page.
    """
    older = max(0, total - HISTORY_PAGE_SIZE)
    numbered = -(-older // HISTORY_PAGE_SIZE)
    pages = [HistoryPage("history.json", numbered + 1, 0, min(total, HISTORY_PAGE_SIZE))]
    for number in range(numbered, 0, -1):
        oldest_first = min(number * HISTORY_PAGE_SIZE, older)
        pages.append(
            HistoryPage(
                f"history/{number}.json",
                number,
                total - oldest_first,
                total - (number - 1) * HISTORY_PAGE_SIZE,
            )
        )
    return pages


def _history_page(
    entries: list[Any], pages: list[HistoryPage], index: int, total: int
) -> dict[str, Any]:
    """Page ``pages[index]`` of ``entries`` (the history, newest first, as far as that page),
    linked to its neighbours relative to itself: ``prev`` the newer page, ``next`` the older
    (null at either end)."""
    page = pages[index]
    root = relative_root(page.path).removeprefix("./")
    newer = pages[index - 1].path if index > 0 else None
    older = pages[index + 1].path if index + 1 < len(pages) else None
    return described(
        page.path,
        {
            "total": total,
            "page": page.number,
            "prev": root + newer if newer else None,
            "next": root + older if older else None,
            "history": entries[page.start : page.end],
        },
    )


def history_entries(manifest: Manifest) -> list[dict[str, Any]]:
    """Every history entry as published (with its id and landing time), newest first."""
    from ..storage.canonical import with_ids

    return [entry.model_dump(mode="json") for entry in with_ids(manifest).history[::-1]]


def history_pages(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """``history.json`` and ``history/<N>.json``: all of the history, each entry on one page.

    The pages hold the entries' models, which :func:`to_json` writes as they are published
    (the text of :func:`history_entries`' data, without building that data first)."""
    from ..storage.canonical import with_ids

    entries: list[Any] = with_ids(manifest).history[::-1]
    pages = history_layout(len(entries))
    return {
        page.path: _history_page(entries, pages, index, len(entries))
        for index, page in enumerate(pages)
    }


def history_document(
    manifest: Manifest, limit: int | None = HISTORY_FEED_LENGTH, total: int | None = None
) -> dict[str, Any]:
    """The ``limit`` most recent entries (all with None), newest first: ``history.json`` for
    the published size; another size is no page of the site, so it links to none. ``total``:
    the number of entries when ``manifest`` holds only the newest ones."""
    entries = history_entries(manifest)
    total = len(entries) if total is None else total
    pages = history_layout(total)
    if limit == HISTORY_PAGE_SIZE:
        return _history_page(entries, pages, 0, total)
    return described(
        "history.json",
        {
            "total": total,
            "page": pages[0].number,
            "prev": None,
            "next": None,
            "history": entries if limit is None else entries[:limit],
        },
    )
