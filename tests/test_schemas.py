"""The JSON Schemas ship with the package, generated from the models; a build publishes them."""

from __future__ import annotations

from pathlib import Path

from conftest import Workspace, small_manifest

from valhalla_status import client
from valhalla_status.publishing import schemas
from valhalla_status.publishing.documents import SCHEMA_FOLDER, summary_counts
from valhalla_status.publishing.schemas import SCHEMA_MODELS, schema_files, write_schema_files
from valhalla_status.rules.formats import STATUSES


def test_the_shipped_schemas_are_the_ones_the_models_generate() -> None:
    shipped = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_FOLDER.iterdir()}
    assert shipped == schema_files(), (
        "regenerate them: python -m valhalla_status.publishing.schemas"
    )
    assert sorted(shipped) == sorted(SCHEMA_MODELS)


def test_write_schema_files_writes_every_schema_and_removes_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "gone.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("kept\n", encoding="utf-8")
    (tmp_path / "status.schema.json").write_text("{}\n", encoding="utf-8")

    written = write_schema_files(tmp_path)

    assert written == sorted(SCHEMA_MODELS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*SCHEMA_MODELS, "notes.txt"])
    for name, text in schema_files().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text


def test_a_build_publishes_exactly_the_shipped_schemas(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("build")
    assert result.exit_code == 0, result.output
    site = ws.root / "site"

    published = {path.name: path.read_bytes() for path in (site / "schema").iterdir()}
    assert published == {path.name: path.read_bytes() for path in SCHEMA_FOLDER.iterdir()}
    footer = (site / "index.html").read_text(encoding="utf-8")
    assert footer.index('href="schema/manifest.schema.json"') < footer.index(
        'href="schema/api-v2-summary.schema.json"'
    )


def test_every_summary_counts_each_pack_status_once_in_the_order_of_the_type() -> None:
    """The statuses are one ``Literal``; the typed summaries spelled out beside it (the
    published schema's and the client's) must name exactly its counts, in its order."""
    assert STATUSES == ("installed", "pending", "deprecated", "experimental")
    keys = ["total_packs", *(f"{status}_packs" for status in STATUSES)]
    assert list(summary_counts([])) == keys
    assert list(schemas.Summary.model_fields) == keys
    assert list(client.Summary.__dataclass_fields__) == keys
