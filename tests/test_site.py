"""``build``: every published file, equal to the CLI's documents, valid against its schema,
deterministic, atomic, current (``--check``), and never outside the site folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import EPOCH_TEXT, Workspace, clean_env, small_manifest, snapshot

from valhalla_status.errors import ValhallaError
from valhalla_status.manifest import parse_manifest
from valhalla_status.models import Manifest, Pack
from valhalla_status.publishing.schemas import schema_for
from valhalla_status.site import build_site, list_files, render_site

SCHEMAS = [
    "api-v2-components",
    "api-v2-incidents",
    "api-v2-incidents-unresolved",
    "api-v2-scheduled-maintenances",
    "api-v2-scheduled-maintenances-active",
    "api-v2-scheduled-maintenances-upcoming",
    "api-v2-status",
    "api-v2-summary",
    "history",
    "manifest",
    "pack",
    "packs",
    "shields",
    "status",
    "summary",
]
# Every file of the site, for the small manifest (packs H, I, S).
EXPECTED_FILES = sorted(
    [
        "404.html",
        "_headers",
        "api/v2/components.json",
        "api/v2/incidents.json",
        "api/v2/incidents/unresolved.json",
        "api/v2/scheduled-maintenances.json",
        "api/v2/scheduled-maintenances/active.json",
        "api/v2/scheduled-maintenances/upcoming.json",
        "api/v2/status.json",
        "api/v2/summary.json",
        "badge.svg",
        "feed.xml",
        "history.html",
        "history.json",
        "index.html",
        "metrics.txt",
        "packs.json",
        "robots.txt",
        "shields.json",
        "status.json",
        "summary.json",
    ]
    + [f"packs/{i}.json" for i in ("H", "I", "S")]
    + [f"schema/{name}.schema.json" for name in SCHEMAS]
)


def built(ws: Workspace, data: dict[str, Any] | None = None, *args: str) -> Path:
    """Write the manifest (default: the small one), run ``build ARGS``, return the site."""
    ws.write(data or small_manifest())
    result = ws.run("build", *args)
    assert result.exit_code == 0, result.output
    return ws.root / "site"


def beside(folder: Path) -> list[str]:
    """What is in ``folder``, but the lock file a build takes (``.site.lock``, git-ignored)."""
    return sorted(p.name for p in folder.iterdir() if p.name != ".site.lock")


def site_json(site: Path, path: str) -> Any:
    return json.loads((site / path).read_text(encoding="utf-8"))


def test_build_writes_every_file_of_the_site(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("build")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"site: built ({len(EXPECTED_FILES)} files)\n"
    assert list_files(ws.root / "site") == EXPECTED_FILES


def test_second_build_changes_nothing(ws: Workspace) -> None:
    site = built(ws)
    before = {p: (site / p).stat().st_mtime_ns for p in list_files(site)}
    result = ws.run("build")
    assert result.stderr == f"site: already up to date ({len(EXPECTED_FILES)} files)\n"
    assert {p: (site / p).stat().st_mtime_ns for p in list_files(site)} == before


@pytest.mark.parametrize(
    ("path", "command"),
    [
        ("status.json", ["show", "--json"]),
        ("summary.json", ["summary", "--json"]),
        ("packs.json", ["pack", "list", "--json"]),
        ("packs/I.json", ["pack", "show", "I", "--json"]),
        ("packs/I.json", ["pack", "show", "i", "--json"]),
        ("history.json", ["history", "--json", "--limit", "50"]),
    ],
)
def test_json_files_equal_the_cli_documents(ws: Workspace, path: str, command: list[str]) -> None:
    site = built(ws)
    result = ws.run(*command)
    assert result.exit_code == 0
    assert (site / path).read_text(encoding="utf-8") == result.stdout


def test_json_values_match_the_manifest(ws: Workspace) -> None:
    site = built(ws)
    status = site_json(site, "status.json")
    assert list(status) == [
        "$schema",
        "schema_version",
        "name",
        "description",
        "version",
        "backend_complete",
        "notes",
        "updated_at",
        "completed_at",
        "packs",
        "summary",
        "extra",
    ]
    assert status["updated_at"] == EPOCH_TEXT
    assert status["packs"][1] == {
        "id": "I",
        "name": "Reporter Premium",
        "group": "Professional",
        "status": "pending",
        "notes": None,
        "since": EPOCH_TEXT,
    }
    assert site_json(site, "summary.json") == {
        "$schema": "schema/summary.schema.json",
        "schema_version": 1,
        "total_packs": 3,
        "installed_packs": 2,
        "pending_packs": 1,
        "deprecated_packs": 0,
        "experimental_packs": 0,
        "description": "Valhalla professional capital markets system",
    }
    assert site_json(site, "shields.json") == {
        "schemaVersion": 1,
        "label": "Valhalla",
        "message": "in development",
        "color": "9a6700",
        "cacheSeconds": 300,
    }
    text = (site / "status.json").read_bytes()
    assert text.startswith(b'{\n  "$schema": "schema/status.schema.json",\n')
    assert b'\n  "schema_version": 1,\n  "name": ' in text
    assert text.endswith(b"}\n")


def test_every_json_file_validates_against_its_published_schema(ws: Workspace) -> None:
    data = small_manifest()
    data["system"]["extra"] = {"region": "eu", "nested": {"list": [1, 2.5, None, True]}}
    data["system"]["base_url"] = "https://status.example.com"
    site = built(ws, data)
    checked = []
    for path in list_files(site):
        if path.endswith(".json") and not path.startswith("schema/"):
            schema = site_json(site, f"schema/{schema_for(path)}")
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.validate(site_json(site, path), schema, jsonschema.Draft202012Validator)
            checked.append(path)
    assert len(checked) == 16
    manifest_schema = site_json(site, "schema/manifest.schema.json")
    jsonschema.validate(ws.read(), manifest_schema, jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("status.json", {"backend_complete": "yes"}),
        ("status.json", {"schema_version": 2}),
        ("packs/H.json", {"status": "broken"}),
        ("history.json", {"total": -1}),
        ("summary.json", {"total_packs": -1}),
        ("api/v2/status.json", {"status": {"indicator": "red", "description": "x"}}),
    ],
)
def test_schemas_reject_a_wrong_document(ws: Workspace, path: str, change: dict[str, Any]) -> None:
    site = built(ws)
    schema = site_json(site, f"schema/{schema_for(path)}")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**site_json(site, path), **change}, schema)


def test_each_pack_has_one_file_named_by_its_upper_case_id(ws: Workspace) -> None:
    site = built(ws)
    assert sorted(p.name for p in (site / "packs").iterdir()) == ["H.json", "I.json", "S.json"]
    for pack_id in ("H", "I", "S"):
        assert site_json(site, f"packs/{pack_id}.json")["id"] == pack_id
    listed = [pack["id"] for pack in site_json(site, "packs.json")["packs"]]
    assert sorted(listed) == ["H", "I", "S"]


def test_two_builds_at_different_times_and_places_are_byte_identical(ws: Workspace) -> None:
    site = built(ws)
    other = ws.root / "elsewhere"
    env = clean_env(TZ="Asia/Kolkata", SOURCE_DATE_EPOCH="86400", LC_ALL="C")
    subprocess.run(
        [sys.executable, "-m", "valhalla_status", "--site", str(other), "build"],
        cwd=ws.root,
        env=env,
        check=True,
        capture_output=True,
    )
    assert snapshot(other) == snapshot(site)


def test_removed_pack_files_disappear(ws: Workspace) -> None:
    site = built(ws)
    result = ws.run("pack", "remove", "I", "--by", "bob")
    assert result.exit_code == 0
    assert not (site / "packs/I.json").exists()
    assert [p["id"] for p in site_json(site, "status.json")["packs"]] == ["H", "S"]


def test_a_mutation_rebuilds_the_site_unless_no_build(ws: Workspace) -> None:
    site = built(ws)
    ws.run("pack", "set", "i", "--status", "installed", "--by", "bob", "--no-build")
    assert site_json(site, "packs/I.json")["status"] == "pending"
    ws.run("set-notes", "Go-live Friday", "--by", "bob")
    assert site_json(site, "packs/I.json")["status"] == "installed"
    assert site_json(site, "status.json")["notes"] == "Go-live Friday"
    assert ws.run("build", "--check").exit_code == 0


def test_check_passes_when_current(ws: Workspace) -> None:
    built(ws)
    result = ws.run("build", "--check")
    assert (result.exit_code, result.stderr) == (0, "site: up to date\n")


def test_check_lists_every_differing_file(ws: Workspace) -> None:
    site = built(ws)
    (site / "status.json").write_text("{}\n")
    (site / "packs/H.json").unlink()
    (site / "packs/ZZ.json").write_text("{}\n")
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: site is stale (3 files differ); run `valhalla-status build`\n"
        "  missing: packs/H.json\n"
        "  extra: packs/ZZ.json\n"
        "  changed: status.json\n"
    )


def test_check_fails_when_the_manifest_changed(ws: Workspace) -> None:
    built(ws)
    assert ws.run("pack", "set", "I", "--status", "installed", "--no-build").exit_code == 0
    assert ws.run("complete", "--by", "bob", "--no-build").exit_code == 0
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    assert "  changed: status.json\n" in result.stderr
    assert "  changed: index.html\n" in result.stderr


def test_check_of_a_missing_site_fails(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("--site", "nowhere", "build", "--check")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: nowhere is stale ({len(EXPECTED_FILES) + 1} files differ)"
    )
    assert not (ws.root / "nowhere").exists()


def test_build_refuses_a_folder_that_is_not_a_site(ws: Workspace) -> None:
    ws.write(small_manifest())
    (ws.root / "docs").mkdir()
    (ws.root / "docs" / "notes.txt").write_text("keep me\n")
    result = ws.run("--site", "docs", "build")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: refusing to replace docs: it is not empty and has no .valhalla-site mark, "
        "so it is not a site valhalla-status built; choose a new or empty folder\n"
    )
    assert snapshot(ws.root / "docs") == {"notes.txt": b"keep me\n"}


def test_build_refuses_the_working_folder(ws: Workspace) -> None:
    ws.write(small_manifest())
    before = snapshot(ws.root)
    result = ws.run("--site", ".", "build")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: refusing to replace .:")
    assert snapshot(ws.root) == before


def test_a_failed_build_leaves_the_old_site_untouched(ws: Workspace) -> None:
    site = built(ws)
    before = snapshot(site)
    custom = ws.root / "custom"
    custom.mkdir()
    (custom / "_summary.html").write_text("{{ no_such_variable }}\n")
    result = ws.run("build", "--templates", "custom")
    assert result.exit_code == 1
    where = custom / "_summary.html"
    assert (
        result.stderr
        == f"error: {where}:1: cannot render index.html: 'no_such_variable' is undefined\n"
    )
    assert snapshot(site) == before
    assert beside(ws.root) == ["custom", "manifest", "site"]


def test_a_template_syntax_error_is_located(ws: Workspace) -> None:
    ws.write(small_manifest())
    custom = ws.root / "custom"
    custom.mkdir()
    (custom / "404.html").write_text("line one\n{% if %}\n")
    result = ws.run("build", "--templates", "custom")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {custom / '404.html'}:2: Expected an expression, got 'end of statement block'\n"
    )


@pytest.mark.parametrize(
    ("template", "line", "reason"),
    [
        ("{{ 1 / 0 }}", 2, "ZeroDivisionError: division by zero"),
        ('{{ "%d" % "x" }}', 2, "TypeError: %d format: a real number is required, not str"),
        ('{{ "%d"|format("x") }}', 2, "TypeError: %d format: a real number is required, not str"),
        ('{{ "a".encode("nope") }}', 2, "LookupError: unknown encoding: nope"),
        ("{{ [1][5] }}", 2, "list object has no element 5"),
        ("{{ nothing.here }}", 2, "'nothing' is undefined"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", 2, "RecursionError: maximum"),
        ('{% include "_footer.html" %}', 2, "RecursionError: maximum"),
        ('{% include "missing.html" %}', 2, "template 'missing.html' not found"),
    ],
)
def test_a_template_that_fails_while_rendering_is_located_and_nothing_is_written(
    ws: Workspace, template: str, line: int, reason: str
) -> None:
    ws.write(small_manifest())
    custom = ws.root / "custom"
    custom.mkdir()
    (custom / "_footer.html").write_text(f"<footer>\n{template}\n</footer>\n")

    result = ws.run("build", "--templates", "custom")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {custom / '_footer.html'}:{line}: cannot render index.html: {reason}"
    ), result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr
    assert not (ws.root / "site").exists()


def test_custom_templates_replace_the_built_in_ones(ws: Workspace) -> None:
    ws.write(small_manifest())
    custom = ws.root / "custom"
    custom.mkdir()
    (custom / "_footer.html").write_text("<footer><p>Ops: {{ system.name }}</p></footer>\n")
    result = ws.run("build", "--templates", "custom")
    assert result.exit_code == 0
    page = (ws.root / "site/index.html").read_text(encoding="utf-8")
    assert "<footer><p>Ops: Valhalla</p></footer>\n</body>\n</html>\n" in page
    assert "<h1><bdi>Valhalla</bdi> status</h1>" in page
    assert ws.run("build", "--templates", "custom", "--check").exit_code == 0
    assert ws.run("build", "--check").exit_code == 1


def test_missing_templates_folder_is_an_error(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("build", "--templates", "nope")
    assert (result.exit_code, result.stderr) == (1, "error: templates folder nope does not exist\n")


def test_base_url_makes_links_absolute(ws: Workspace) -> None:
    site = built(ws, None, "--base-url", "https://status.example.com/valhalla")
    page = (site / "index.html").read_text(encoding="utf-8")
    assert '<link rel="canonical" href="https://status.example.com/valhalla/">' in page
    assert 'href="https://status.example.com/valhalla/feed.xml"' in page
    feed = (site / "feed.xml").read_text(encoding="utf-8")
    assert (
        '<link rel="self" type="application/atom+xml" '
        'href="https://status.example.com/valhalla/feed.xml"/>'
    ) in feed
    assert site_json(site, "api/v2/status.json")["page"]["url"] == (
        "https://status.example.com/valhalla/"
    )


def test_a_bad_base_url_is_refused(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("build", "--base-url", "http://insecure.example.com")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: --base-url: 'http://insecure.example.com' is not an absolute https URL "
        "(https://host/path)\n"
    )
    assert not (ws.root / "site").exists()


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://[::1]/status/", True),
        ("https://status.example:65535/", True),
        ("https://[::1", False),
        ("https://status.example:65536/", False),
        ("https://status.example:/", False),
        ("https://user:secret@status.example/", False),
        ("https://status.example:0/", False),
        ("https://status.example:00443/", True),
        ("https://status.example/status?v=1", False),
        ("https://status.example/status#top", False),
        ("https://status.example?v=1", False),
        ("HTTPS://STATUS.EXAMPLE/", True),
    ],
)
def test_the_base_url_is_a_url_a_browser_opens_and_publishes_no_password(
    ws: Workspace, url: str, accepted: bool
) -> None:
    ws.write(small_manifest())
    result = ws.run("build", "--base-url", url)
    assert result.exit_code == (0 if accepted else 1), result.stderr
    if accepted:
        assert f'href="{url}history.html"' in (ws.root / "site" / "index.html").read_text()
    else:
        assert result.stderr.startswith(f"error: --base-url: {url!r} ")
        assert result.stderr.count("\n") == 1
        assert not (ws.root / "site").exists()


def test_a_pack_id_never_becomes_a_path_outside_the_site(tmp_path: Path) -> None:
    manifest = parse_manifest(yaml.safe_dump(small_manifest(), sort_keys=False))
    evil = Pack.model_construct(id="../../evil", name="Evil", group="G", status="installed")
    hostile = Manifest.model_construct(**{**dict(manifest), "packs": [evil]})
    with pytest.raises(ValhallaError, match=r"pack id '\.\./\.\./evil' cannot be a file name"):
        build_site(hostile, tmp_path / "site")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_build_are_cleared(ws: Workspace) -> None:
    site = built(ws)
    staging = ws.root / ".site.valhalla-staging-0123456789abcdef"
    staging.mkdir()
    (staging / ".valhalla-site").write_bytes((site / ".valhalla-site").read_bytes())
    (staging / "status.json").write_text("{")
    # Killed between the two renames of the fallback swap: the old site waits beside.
    site.rename(ws.root / ".site.valhalla-old-0123456789abcdef")
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    result = ws.run("build")
    assert result.exit_code == 0
    assert result.stderr == f"site: already up to date ({len(EXPECTED_FILES)} files)\n"
    assert beside(ws.root) == ["manifest", "site"]


def test_render_is_pure(ws: Workspace) -> None:
    manifest = parse_manifest(yaml.safe_dump(small_manifest(), sort_keys=False))
    first = render_site(manifest)
    assert render_site(manifest) == first
    assert list(first) == list(render_site(manifest))


def test_a_rebuild_after_a_change_or_a_tampered_file_writes_the_whole_site(ws: Workspace) -> None:
    site = built(ws)
    (site / "packs/S.json").write_text("tampered\n")
    (site / "stray.txt").write_text("stray\n")
    result = ws.run("pack", "set", "I", "--status", "installed", "--by", "bob")
    assert result.exit_code == 0
    assert json.loads((site / "packs/S.json").read_text())["id"] == "S"
    assert not (site / "stray.txt").exists()
    assert ws.run("build", "--check").exit_code == 0


@pytest.mark.parametrize("tamper", ["status.json", "index.html", "packs/S.json", "schema"])
def test_a_build_over_a_touched_site_puts_every_file_back(ws: Workspace, tamper: str) -> None:
    site = built(ws)
    before = {p: (site / p).read_bytes() for p in list_files(site)}
    if tamper == "schema":
        (site / "schema" / "extra.schema.json").write_text("{}\n")
    else:
        (site / tamper).write_bytes(before[tamper][:-2] + b" \n")
    assert ws.run("build").stderr == f"site: built ({len(EXPECTED_FILES)} files)\n"
    assert {p: (site / p).read_bytes() for p in list_files(site)} == before
    assert ws.run("build").stderr == f"site: already up to date ({len(EXPECTED_FILES)} files)\n"


def test_a_build_leaves_nothing_outside_the_site_and_the_lock_files(ws: Workspace) -> None:
    ws.write(small_manifest())
    for _ in range(2):
        assert ws.run("show", "--json").exit_code == 0
        assert ws.run("build").exit_code == 0
        assert ws.run("pack", "set", "I", "--status", "installed", "--by", "bob").exit_code == 0
    assert sorted(p.name for p in ws.root.iterdir()) == [".site.lock", "manifest", "site"]


@pytest.mark.parametrize("pack_id", ["A\n", "a", "A/B", "A.json", ""])
def test_only_plain_pack_ids_become_file_names(tmp_path: Path, pack_id: str) -> None:
    manifest = parse_manifest(yaml.safe_dump(small_manifest(), sort_keys=False))
    odd = Pack.model_construct(id=pack_id, name="Odd", group="G", status="installed")
    with pytest.raises(ValhallaError, match="cannot be a file name"):
        render_site(Manifest.model_construct(**{**dict(manifest), "packs": [odd]}))


def test_words_keep_exactly_the_characters_xml_and_html_both_allow() -> None:
    from valhalla_status.rules.text import NONCHARACTERS
    from valhalla_status.site import _NOT_XML

    every = "".join(map(chr, range(0x110000)))
    replaced = set(_NOT_XML.findall(every))
    # Not XML 1.0 Char: C0 but tab, LF and CR; the surrogates; U+FFFE and U+FFFF. DEL and C1
    # are an HTML parse error, as Unicode's noncharacters are.
    banned = [*range(0x9), 0xB, 0xC, *range(0xE, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]
    expected = {chr(code) for code in banned} | set(re.findall(f"[{NONCHARACTERS}]", every))
    assert len(expected) == 62 + 2048 + 66
    assert replaced == expected
