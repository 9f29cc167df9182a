"""Pydantic models of every JSON document the site publishes, and their JSON Schemas.

The schemas are generated from these models into ``valhalla_status/schema/`` and shipped with
the package, so a build copies files instead of generating them each time. After changing a
model, regenerate them with ``python -m valhalla_status.publishing.schemas``; a test fails
until then.

The documents themselves are built by :mod:`valhalla_status.publishing.documents` and
:mod:`valhalla_status.publishing.statuspage`; these models only describe them, so the schemas in
``site/schema/`` say exactly what a client may rely on (tests validate every file against them).

Compatibility: a document may gain fields within a ``schema_version``, so the document schemas
allow properties they do not name (a client that validates keeps working after an addition);
removing or changing a field raises the version. The manifest is input, and its schema stays
strict: an unknown key there is a typo. So does ``shields.json``'s: shields.io refuses a key it
does not know.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, JsonValue, RootModel, create_model

from ..models import (
    MAX_PACKS,
    LandedEntry,
    Manifest,
    Pack,
    StrictModel,
    SystemMetadata,
    Timestamp,
)
from .documents import SCHEMA_FOLDER, schema_file_for

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Described(StrictModel):
    """What every published document of this site starts with."""

    schema_: str = Field(
        alias="$schema",
        description="This document's JSON Schema, as a reference relative to the document.",
    )
    schema_version: Literal[1] = Field(
        description="Raised only when a field is removed or changes meaning; fields may be "
        "added within a version."
    )


class Summary(StrictModel):
    """Pack counts per status."""

    total_packs: int = Field(ge=0)
    installed_packs: int = Field(ge=0)
    pending_packs: int = Field(ge=0)
    deprecated_packs: int = Field(ge=0)
    experimental_packs: int = Field(ge=0)


class SummaryDocument(Described, Summary):
    """``summary.json``: the counts and the system's description."""

    description: str


class PackEntry(Pack):
    """A pack as published: in ``packs.json``, ``status.json`` and ``packs/<ID>.json``."""

    notes: str | None = Field(
        description="Why the pack has its status (set with --notes), or null when there is none."
    )
    since: Timestamp | None = Field(
        description="When the pack got its status: the newest history entry that set it "
        "(its status change, its addition, or the init). Null when the history does not say."
    )


class PackDocument(Described, PackEntry):
    """``packs/<ID>.json``: one pack."""


class PacksDocument(Described):
    """``packs.json``: every pack, in display order, and the counts."""

    packs: list[PackEntry]
    summary: Summary


class StatusDocument(Described):
    """``status.json``: the full status."""

    name: str
    description: str
    version: str
    backend_complete: bool
    notes: str | None
    updated_at: Timestamp
    completed_at: Timestamp | None
    packs: list[PackEntry]
    summary: Summary
    extra: dict[str, JsonValue]


class HistoryDocument(Described):
    """``history.json`` (the 50 most recent changes, newest first) and ``history/<N>.json``
    (the older changes, 50 a page numbered from the oldest, so a page keeps its entries as
    changes land): every change is on one page, and the pages are linked."""

    total: int = Field(ge=0, description="The number of changes on all pages together.")
    page: int = Field(
        ge=1,
        description="history/<N>.json is page N, page 1 holding the oldest changes; "
        "history.json, the newest, has the number after the highest numbered page.",
    )
    prev: str | None = Field(
        description="The newer page, relative to this one; null on history.json."
    )
    next: str | None = Field(description="The older page, relative to this one; null on page 1.")
    history: list[LandedEntry]


class ShieldsDocument(StrictModel):
    """``shields.json``: a shields.io endpoint badge (https://shields.io/badges/endpoint-badge)."""

    schemaVersion: Literal[1]
    label: str
    message: str
    color: str
    cacheSeconds: int = Field(ge=0)


ComponentStatus = Literal[
    "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
]


class StatuspagePage(StrictModel):
    """Statuspage v2 ``page`` object."""

    id: str
    name: str
    url: str = Field(description="The status page: the base URL, else relative to the document.")
    time_zone: str
    updated_at: Timestamp


class StatuspageStatus(StrictModel):
    """Statuspage v2 ``status`` object: the page's overall indicator."""

    indicator: Literal["none", "minor", "major", "critical"]
    description: str


class StatuspageComponent(StrictModel):
    """Statuspage v2 component: a pack, or a group of packs (``group`` true)."""

    id: str
    name: str
    status: ComponentStatus
    created_at: Timestamp
    updated_at: Timestamp
    position: int = Field(ge=1)
    description: str | None
    showcase: bool
    start_date: None
    group_id: str | None
    page_id: str
    group: bool
    only_show_if_degraded: bool
    components: list[str] | None = Field(
        default=None, description="Ids of a group's components (groups only)."
    )


class StatuspageStatusDocument(Described):
    """``api/v2/status.json``."""

    page: StatuspagePage
    status: StatuspageStatus


class StatuspageComponentsDocument(Described):
    """``api/v2/components.json``."""

    page: StatuspagePage
    components: list[StatuspageComponent]


class StatuspageSummaryDocument(Described):
    """``api/v2/summary.json``."""

    page: StatuspagePage
    components: list[StatuspageComponent]
    incidents: list[dict[str, JsonValue]]
    scheduled_maintenances: list[dict[str, JsonValue]]
    status: StatuspageStatus


class ManifestLayout1(Manifest):
    """A schema_version 1 manifest file: everything, the history included, in one file."""

    schema_version: Literal[1] = Field(description="1: the history and updated_at are here.")


_SYSTEM_FIELDS: dict[str, Any] = {
    name: (field.annotation, field)
    for name, field in SystemMetadata.model_fields.items()
    if name != "updated_at"
}
SystemLayout2: Any = create_model(
    "SystemLayout2",
    __base__=StrictModel,
    __doc__="The system-wide status; updated_at is the newest history entry's time.",
    **_SYSTEM_FIELDS,
)


class ManifestLayout2(StrictModel):
    """The main file of a schema_version 2 manifest; the history is one file per change in the
    folder beside it (``<name>.history/``), each a history entry (see history.schema.json)."""

    schema_version: Literal[2] = Field(description="2: the history is in the folder beside.")
    system: SystemLayout2 = Field(description="System-wide status.")
    packs: list[Pack] = Field(max_length=MAX_PACKS, description="The packs, in display order.")


class ManifestFile(RootModel[ManifestLayout1 | ManifestLayout2]):
    """A manifest's main file, in either layout."""

    root: ManifestLayout1 | ManifestLayout2


class StatuspageIncidentsDocument(Described):
    """``api/v2/incidents.json`` and ``api/v2/incidents/unresolved.json`` (none recorded)."""

    page: StatuspagePage
    incidents: list[dict[str, JsonValue]]


class StatuspageMaintenancesDocument(Described):
    """``api/v2/scheduled-maintenances.json`` and its ``upcoming`` and ``active`` (none
    recorded)."""

    page: StatuspagePage
    scheduled_maintenances: list[dict[str, JsonValue]]


# Schema file (under schema/) -> the model it is generated from.
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "manifest.schema.json": ManifestFile,
    "status.schema.json": StatusDocument,
    "summary.schema.json": SummaryDocument,
    "packs.schema.json": PacksDocument,
    "pack.schema.json": PackDocument,
    "history.schema.json": HistoryDocument,
    "shields.schema.json": ShieldsDocument,
    "api-v2-summary.schema.json": StatuspageSummaryDocument,
    "api-v2-status.schema.json": StatuspageStatusDocument,
    "api-v2-components.schema.json": StatuspageComponentsDocument,
    "api-v2-incidents.schema.json": StatuspageIncidentsDocument,
    "api-v2-incidents-unresolved.schema.json": StatuspageIncidentsDocument,
    "api-v2-scheduled-maintenances.schema.json": StatuspageMaintenancesDocument,
    "api-v2-scheduled-maintenances-upcoming.schema.json": StatuspageMaintenancesDocument,
    "api-v2-scheduled-maintenances-active.schema.json": StatuspageMaintenancesDocument,
}


def schema_for(path: str) -> str:
    """The schema file describing the published JSON file at ``path`` (site-relative)."""
    return schema_file_for(path)


def _open(schema: Any) -> Any:
    """``schema`` with every ``additionalProperties: false`` dropped (documents may grow)."""
    if isinstance(schema, dict):
        return {
            key: _open(value)
            for key, value in schema.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(schema, list):
        return [_open(item) for item in schema]
    return schema


def _by_layout(schema: dict[str, Any]) -> dict[str, Any]:
    """Choose the layout's schema by ``schema_version`` (if/then/else, not oneOf), so that a
    validator reports what is wrong within the layout the file says it has."""
    refs = {ref["$ref"] for ref in schema.pop("anyOf")}
    assert refs == {"#/$defs/ManifestLayout1", "#/$defs/ManifestLayout2"}
    return {
        **schema,
        "if": {"properties": {"schema_version": {"const": 1}}, "required": ["schema_version"]},
        "then": {"$ref": "#/$defs/ManifestLayout1"},
        "else": {"$ref": "#/$defs/ManifestLayout2"},
    }


def schema_documents() -> dict[str, dict[str, Any]]:
    """Every schema, keyed by file name."""
    documents = {}
    for name, model in SCHEMA_MODELS.items():
        if model is ManifestFile:  # input: strict
            schema = _by_layout(model.model_json_schema(mode="validation"))
        elif model is ShieldsDocument:  # shields.io's format, which refuses unknown keys
            schema = model.model_json_schema(mode="serialization")
        else:  # ours: open to additions
            schema = _open(model.model_json_schema(mode="serialization"))
        documents[name] = {"$schema": JSON_SCHEMA_DIALECT, **schema}
    return documents


def schema_files() -> dict[str, str]:
    """Every schema file's text, keyed by file name, as generated from the models."""
    from .documents import to_json

    return {name: to_json(document) for name, document in schema_documents().items()}


def write_schema_files(folder: str | os.PathLike[str] = SCHEMA_FOLDER) -> list[str]:
    """Write the schema files into ``folder`` (removing stale ones); the names written."""
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    files = schema_files()
    for stale in folder.glob("*.schema.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return sorted(files)


if __name__ == "__main__":
    for written in write_schema_files():
        print(SCHEMA_FOLDER / written)
