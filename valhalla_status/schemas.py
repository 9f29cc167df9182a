"""Pydantic models of every JSON document the site publishes, and their JSON Schemas.

The documents themselves are built by :mod:`valhalla_status.documents` and
:mod:`valhalla_status.statuspage`; these models only describe them, so the schemas in
``site/schema/`` say exactly what a client may rely on (tests validate every file against them).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, JsonValue, RootModel, create_model

from .models import (
    MAX_PACKS,
    HistoryEntry,
    Manifest,
    Pack,
    StrictModel,
    SystemMetadata,
    Timestamp,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Summary(StrictModel):
    """Pack counts per status."""

    total_packs: int = Field(ge=0)
    installed_packs: int = Field(ge=0)
    pending_packs: int = Field(ge=0)
    deprecated_packs: int = Field(ge=0)
    experimental_packs: int = Field(ge=0)


class SummaryDocument(Summary):
    """``summary.json``: the counts and the system's description."""

    description: str


class PackDocument(Pack):
    """``packs/<ID>.json`` and each pack of ``packs.json`` and ``status.json``."""

    notes: str | None = Field(
        description="Why the pack has its status (set with --notes), or null when there is none."
    )
    since: Timestamp | None = Field(
        description="When the pack got its status: the newest history entry that set it "
        "(its status change, its addition, or the init). Null when the history does not say."
    )


class PacksDocument(StrictModel):
    """``packs.json``: every pack, in display order, and the counts."""

    packs: list[PackDocument]
    summary: Summary


class StatusDocument(StrictModel):
    """``status.json``: the full status."""

    schema_version: Literal[1]
    name: str
    description: str
    version: str
    backend_complete: bool
    notes: str | None
    updated_at: Timestamp
    completed_at: Timestamp | None
    packs: list[PackDocument]
    summary: Summary
    extra: dict[str, JsonValue]


class HistoryDocument(StrictModel):
    """``history.json``: the 50 most recent changes, newest first."""

    history: list[HistoryEntry]


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
    url: str | None
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


class StatuspageStatusDocument(StrictModel):
    """``api/v2/status.json``."""

    page: StatuspagePage
    status: StatuspageStatus


class StatuspageComponentsDocument(StrictModel):
    """``api/v2/components.json``."""

    page: StatuspagePage
    components: list[StatuspageComponent]


class StatuspageSummaryDocument(StrictModel):
    """``api/v2/summary.json``."""

    page: StatuspagePage
    components: list[StatuspageComponent]
    incidents: list[Any] = Field(max_length=0)
    scheduled_maintenances: list[Any] = Field(max_length=0)
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

    root: Annotated[ManifestLayout1 | ManifestLayout2, Field(discriminator="schema_version")]


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
}


def schema_for(path: str) -> str:
    """The schema file describing the published JSON file at ``path`` (site-relative)."""
    if path.startswith("packs/"):
        return "pack.schema.json"
    return path.removesuffix(".json").replace("/", "-") + ".schema.json"


@functools.lru_cache(maxsize=1)
def schema_documents() -> dict[str, dict[str, Any]]:
    """Every schema, keyed by file name (generated once per process)."""
    return {
        name: {
            "$schema": JSON_SCHEMA_DIALECT,
            # The manifest is input; the documents are output.
            **model.model_json_schema(
                mode="validation" if model is ManifestFile else "serialization"
            ),
        }
        for name, model in SCHEMA_MODELS.items()
    }
