"""What clients nobody here wrote see: a Statuspage exporter, feedparser, jsonschema, a robots.txt
parser, a static host's ``_headers`` rules. Each check runs on the plain small site and on a
site of hostile names (right-to-left, symbols, emoji, 60-character names)."""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import sys
import urllib.robotparser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import jsonschema
import pytest
from conftest import EPOCH2_TEXT, EPOCH_TEXT, Workspace, small_manifest
from status_server import serve

from valhalla_status.models import HistoryEntry
from valhalla_status.publishing.statuspage import group_id
from valhalla_status.publishing.textwidth import text_width
from valhalla_status.site import list_files
from valhalla_status.storage.canonical import entry_file_name

BASE = "https://status.example.com/valhalla/"
RTL_NAME = "שלום עולם"  # "hello world", right to left
RTL_GROUP = "مجموعة الأنظمة"  # "systems group"
LONG = "W" * 60
EMOJI = "🚀 Launch ✓ 👩‍💻"


def hostile_manifest() -> dict[str, Any]:
    """Names of every awkward kind: right-to-left, symbols, emoji, the longest allowed."""
    data = small_manifest()
    data["system"]["name"] = "Валгалла ★ " + RTL_NAME
    data["packs"] = [
        {"id": "H", "name": RTL_NAME, "group": RTL_GROUP, "status": "installed"},
        {"id": "I", "name": EMOJI, "group": "★☆ & <symbols> ☆★", "status": "pending"},
        {"id": "S", "name": LONG, "group": "W" * 60, "status": "deprecated"},
        {"id": "T", "name": "中文名称", "group": "专业", "status": "experimental"},
        {"id": "U", "name": "plain", "group": "Professional", "status": "installed"},
    ]
    return data


SITES = {"plain": small_manifest, "hostile": hostile_manifest}


def build(ws: Workspace, data: dict[str, Any], *args: str) -> Path:
    ws.write(data)
    result = ws.run("build", *args)
    assert result.exit_code == 0, result.output
    return ws.root / "site"


def read_json(site: Path, path: str) -> Any:
    return json.loads((site / path).read_text(encoding="utf-8"))


def with_history(data: dict[str, Any], count: int) -> dict[str, Any]:
    """``data`` with ``count`` more set-version entries after its first."""
    data = copy.deepcopy(data)
    data["history"] += [
        {
            "at": f"2025-09-21T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "by": "bot",
            "action": "set-version",
            "changes": {"version": [f"1.0.{n}", f"1.0.{n + 1}"]},
            "notes": None,
        }
        for n in range(count)
    ]
    data["system"]["version"] = f"1.0.{count}"
    data["system"]["updated_at"] = data["history"][-1]["at"]
    return data


def published(entry: dict[str, Any], seq: int) -> dict[str, Any]:
    """An inline history entry as the documents publish it: with the id its file would have at
    position ``seq``, landed at its own time (a schema_version 1 manifest has no entry files)."""
    read = HistoryEntry.model_validate(entry)
    ident = entry_file_name(read, seq).removesuffix(".yaml")
    return {**entry, "id": ident, "landed_at": read.model_dump(mode="json")["at"]}


# --- Statuspage ---------------------------------------------------------------------------


def exporter_reading(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What statuspage-prometheus-exporter (from PyPI) makes of the site's api/v2/summary.json,
    fetched over HTTP as it fetches Atlassian's."""
    services = tmp_path / "services.json"
    services.write_text("{}", encoding="utf-8")
    monkeypatch.setenv("SERVICES_JSON_PATH", str(services))
    monkeypatch.chdir(tmp_path)  # it keeps a cache folder in the working directory
    sys.modules.pop("statuspage_prometheus_exporter.service_checker", None)
    from statuspage_prometheus_exporter.service_checker import check_status_page_service

    with serve(site) as server:
        return check_status_page_service(
            "valhalla", {"url": server.url + "/api/v2/summary.json", "name": "Valhalla"}
        )


def all_installed(data: dict[str, Any]) -> dict[str, Any]:
    for pack in data["packs"]:
        pack["status"] = "installed"
    return data


@pytest.mark.parametrize("kind", SITES)
@pytest.mark.parametrize("complete", [False, True])
def test_every_pack_installed_reads_as_operational_whatever_the_backend_flag(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, complete: bool
) -> None:
    data = all_installed(SITES[kind]())
    if complete:
        data["system"].update(backend_complete=True, completed_at=EPOCH_TEXT)
    site = build(ws, data)
    status = read_json(site, "api/v2/status.json")["status"]
    flag = "complete" if complete else "in development"
    assert status == {
        "indicator": "none",
        "description": f"All Systems Operational; backend {flag}",
    }
    reading = exporter_reading(site, tmp_path, monkeypatch)
    assert reading["success"] is True
    assert (reading["status"], reading["status_text"], reading["raw_status"]) == (
        1,
        "Operational",
        "none",
    )
    assert all(c["status"] == "operational" for c in reading["component_metadata"])


@pytest.mark.parametrize("kind", SITES)
def test_a_pending_pack_is_never_operational(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    data = SITES[kind]()  # in development: a complete backend has no pending pack
    site = build(ws, data)
    assert read_json(site, "api/v2/status.json")["status"] == {
        "indicator": "minor",
        "description": "1 pack pending; backend in development",
    }
    pending = {p["name"] for p in data["packs"] if p["status"] == "pending"}
    components = read_json(site, "api/v2/components.json")["components"]
    for component in components:
        if component["name"] in pending and not component["group"]:
            assert component["status"] == "under_maintenance"
    reading = exporter_reading(site, tmp_path, monkeypatch)
    assert (reading["status"], reading["raw_status"]) == (0, "minor")
    seen = {c["name"]: c["status"] for c in reading["component_metadata"]}
    assert all(seen[name] == "under_maintenance" for name in pending)


@pytest.mark.parametrize("kind", SITES)
def test_every_public_v2_endpoint_is_published_in_its_shape(ws: Workspace, kind: str) -> None:
    site = build(ws, SITES[kind]())
    shapes = {
        "summary.json": ["page", "components", "incidents", "scheduled_maintenances", "status"],
        "status.json": ["page", "status"],
        "components.json": ["page", "components"],
        "incidents.json": ["page", "incidents"],
        "incidents/unresolved.json": ["page", "incidents"],
        "scheduled-maintenances.json": ["page", "scheduled_maintenances"],
        "scheduled-maintenances/upcoming.json": ["page", "scheduled_maintenances"],
        "scheduled-maintenances/active.json": ["page", "scheduled_maintenances"],
    }
    for name, keys in shapes.items():
        document = read_json(site, f"api/v2/{name}")
        assert list(document) == ["$schema", "schema_version", *keys], name
        for key in ("incidents", "scheduled_maintenances"):
            assert document.get(key, []) == []


@pytest.mark.parametrize("kind", SITES)
def test_page_url_is_always_a_string_that_leads_to_the_status_page(
    ws: Workspace, kind: str
) -> None:
    site = build(ws, SITES[kind]())
    for path in list_files(site):
        if path.startswith("api/v2/"):
            url = read_json(site, path)["page"]["url"]
            assert isinstance(url, str)
            # Relative to the document, it resolves to the site's root.
            assert urljoin("https://host/site/" + path, url) == "https://host/site/"
    site = build(ws, SITES[kind](), "--base-url", BASE)
    for path in list_files(site):
        if path.startswith("api/v2/"):
            assert read_json(site, path)["page"]["url"] == BASE


@pytest.mark.parametrize(
    "groups",
    [
        ["Professional", "System infrastructure", "Data"],
        ["Профессиональный", "专业", "★★★", "☆☆☆"],
        [RTL_GROUP, "مجموعة", "🚀🚀", "🚀 🚀", "W" * 60, "W" * 59 + "X"],
        ["A b", "a-b", "A  B", "a_b"],
    ],
)
def test_group_ids_depend_on_the_group_alone(ws: Workspace, groups: list[str]) -> None:
    def ids_of(chosen: list[str]) -> dict[str, str]:
        data = small_manifest()
        data["packs"] = [
            {"id": f"P{n}", "name": f"Pack {n}", "group": group, "status": "installed"}
            for n, group in enumerate(chosen)
        ]
        site = build(ws, data)
        listed = read_json(site, "api/v2/components.json")["components"]
        return {c["name"]: c["id"] for c in listed if c["group"]}

    every = ids_of(groups)
    assert len(set(every.values())) == len(groups)  # distinct, even where slugs agree
    assert all(re.fullmatch(r"group-[a-z0-9-]+", i) for i in every.values())
    for removed in groups:
        rest = [g for g in groups if g != removed]
        assert ids_of(rest) == {g: every[g] for g in rest}
    assert ids_of(groups[::-1]) == every  # nor on their order
    assert every == {g: group_id(g) for g in groups}


# --- schemas ------------------------------------------------------------------------------


def published_json(site: Path) -> list[str]:
    return [p for p in list_files(site) if p.endswith(".json") and not p.startswith("schema/")]


@pytest.mark.parametrize("kind", SITES)
def test_every_document_names_its_schema_and_version_and_validates(
    ws: Workspace, kind: str
) -> None:
    data = with_history(SITES[kind](), 60)
    site = build(ws, data)
    checked = 0
    for path in published_json(site):
        document = read_json(site, path)
        if path == "shields.json":  # shields.io's format: its version is schemaVersion
            assert document["schemaVersion"] == 1
            continue
        assert document["schema_version"] == 1
        schema_path = urljoin(path, document["$schema"])  # relative to the document
        schema = read_json(site, schema_path)
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
        checked += 1
    # packs/<ID>.json twice, status, summary, packs, two history pages, eight api/v2 files
    assert checked == len(data["packs"]) + 3 + 2 + 8


@pytest.mark.parametrize("kind", SITES)
def test_a_document_with_an_added_field_still_validates(ws: Workspace, kind: str) -> None:
    """A later tool may add fields within a schema_version; clients validating with today's
    schemas keep working (at the top and inside nested objects)."""
    site = build(ws, SITES[kind]())
    for path in published_json(site):
        document = read_json(site, path)
        schema = read_json(site, "schema/" + path_schema(path))
        grown = {**document, "added_later": {"any": [1, "thing"]}}
        if path == "shields.json":  # shields.io's format: it refuses keys it does not know
            with pytest.raises(jsonschema.ValidationError, match="added_later"):
                jsonschema.validate(grown, schema, cls=jsonschema.Draft202012Validator)
            continue
        for key in ("packs", "components", "history"):
            if grown.get(key):
                grown[key] = [{**grown[key][0], "added_later": True}, *grown[key][1:]]
        for key in ("page", "status", "summary"):
            if isinstance(grown.get(key), dict):
                grown[key] = {**grown[key], "added_later": 1}
        jsonschema.validate(grown, schema, cls=jsonschema.Draft202012Validator)


def path_schema(path: str) -> str:
    from valhalla_status.publishing.schemas import schema_for

    return schema_for(path)


def test_the_manifest_schema_stays_strict(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    schema = read_json(site, "schema/manifest.schema.json")
    data = small_manifest()
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    for grown in (
        {**data, "surprise": 1},
        {**data, "system": {**data["system"], "surprise": 1}},
        {**data, "packs": [{**data["packs"][0], "surprise": 1}]},
    ):
        with pytest.raises(jsonschema.ValidationError, match="surprise"):
            jsonschema.validate(grown, schema, cls=jsonschema.Draft202012Validator)


# --- history ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SITES)
@pytest.mark.parametrize("extra", [0, 49, 50, 120])
def test_all_history_is_reachable_from_history_json(ws: Workspace, kind: str, extra: int) -> None:
    data = with_history(SITES[kind](), extra)
    site = build(ws, data)
    total = extra + 1
    seen: list[dict[str, Any]] = []
    path, previous = "history.json", None
    while path:
        page = read_json(site, path)
        assert page["total"] == total
        assert page["prev"] == previous
        assert page["history"], path  # no empty page
        seen += page["history"]
        following = urljoin(path, page["next"]) if page["next"] else None
        if following:  # the next page links back here
            assert urljoin(following, read_json(site, following)["prev"]) == path
            previous = read_json(site, following)["prev"]
        path = following
    assert seen == [published(entry, seq) for seq, entry in enumerate(data["history"])][::-1]
    pages = [p for p in list_files(site) if re.fullmatch(r"history(/\d+)?\.json", p)]
    assert len(pages) == max(1, -(-total // 50))
    # The pages for people are the same pages.
    for json_page in pages:
        html = (site / json_page.replace(".json", ".html")).read_text(encoding="utf-8")
        assert html.count('<li id="change-') == len(read_json(site, json_page)["history"])


def test_history_json_holds_the_newest_50_and_numbered_pages_count_from_the_oldest(
    ws: Workspace,
) -> None:
    data = with_history(small_manifest(), 120)
    site = build(ws, data)
    newest_first = [published(entry, seq) for seq, entry in enumerate(data["history"])][::-1]
    pages = {p: read_json(site, p) for p in ("history.json", "history/1.json", "history/2.json")}
    assert [(p["page"], p["history"]) for p in pages.values()] == [
        (3, newest_first[:50]),
        (1, newest_first[-50:]),
        (2, newest_first[50:71]),
    ]
    assert not (site / "history/3.json").exists()


def test_an_entry_keeps_its_numbered_page_as_changes_land(ws: Workspace) -> None:
    def numbered_pages(extra: int) -> dict[str, list[str]]:
        site = build(ws, with_history(small_manifest(), extra))
        return {
            path: [entry["id"] for entry in read_json(site, path)["history"]]
            for path in list_files(site)
            if re.fullmatch(r"history/\d+\.json", path)
        }

    before = numbered_pages(120)
    after = numbered_pages(175)
    for path, ids in before.items():
        assert set(ids) <= set(after[path]), path
        if len(ids) == 50:  # a full page never changes its entries
            assert after[path] == ids, path
    html = (ws.root / "site" / "history" / "1.html").read_text(encoding="utf-8")
    assert all(f'id="change-{entry}"' in html for entry in after["history/1.json"])


def test_history_json_equals_the_cli_first_page(ws: Workspace) -> None:
    site = build(ws, with_history(small_manifest(), 70))
    result = ws.run("history", "--json", "--limit", "50")
    assert result.stdout == (site / "history.json").read_text(encoding="utf-8")
    shorter = json.loads(ws.run("history", "--json", "--limit", "5").stdout)
    assert (shorter["total"], len(shorter["history"]), shorter["next"]) == (71, 5, None)


# --- feed ---------------------------------------------------------------------------------


def parsed_feed(site: Path, url: str) -> Any:
    """feedparser's reading of feed.xml, served at ``url`` with the type ``_headers`` gives it."""
    rules = dict(header_rules((site / "_headers").read_text(encoding="utf-8")))
    headers = {"content-location": url, "content-type": dict(rules["/feed.xml"])["content-type"]}
    return feedparser.parse((site / "feed.xml").read_bytes(), response_headers=headers)


@pytest.mark.parametrize("kind", SITES)
def test_feed_parses_cleanly_with_a_self_link_and_linked_entries(ws: Workspace, kind: str) -> None:
    data = with_history(SITES[kind](), 3)
    data["history"].append(
        {
            "at": "2025-09-22T00:00:00Z",
            "by": RTL_NAME,
            "action": "pack-add",
            "changes": {
                "packs.X6": [
                    None,
                    {"id": "X6", "name": "Pack X6", "group": "G", "status": "pending"},
                ]
            },
            "notes": "Added for " + EMOJI,
        }
    )
    data["system"]["updated_at"] = "2025-09-22T00:00:00Z"
    for base in ("", BASE):
        site = build(ws, data, *(["--base-url", base] if base else []))
        where = base or "https://mirror.example.org/status/"
        feed = parsed_feed(site, where + "feed.xml")
        assert feed.bozo == 0, feed.get("bozo_exception")
        links = {link["rel"]: link["href"] for link in feed.feed.links}
        assert links["self"] == where + "feed.xml"
        assert len(feed.entries) == 5
        for entry in feed.entries:
            assert entry.link.startswith(where + "history.html#change-")
            anchor = entry.link.partition("#")[2]
            assert f'id="{anchor}"' in (site / "history.html").read_text(encoding="utf-8")
        newest = feed.entries[0]
        assert newest.title == "Pack X6 added: Pack X6 (G, pending)"
        assert newest.title.count("added") == 1
        assert feed.entries[1].title == "Version 1.0.2 → 1.0.3"


def test_feed_and_entry_ids_do_not_change_with_the_base_url(ws: Workspace) -> None:
    data = with_history(small_manifest(), 5)
    identities = []
    for args in ([], ["--base-url", BASE], ["--base-url", "https://elsewhere.example.net/"]):
        site = build(ws, data, *args)
        feed = parsed_feed(site, "https://x.example/feed.xml")
        identities.append((feed.feed.id, [e.id for e in feed.entries]))
    assert identities[0] == identities[1] == identities[2]
    assert identities[0][0].startswith("urn:uuid:")
    assert len(set(identities[0][1])) == 6


def test_entry_ids_stay_as_the_history_grows(ws: Workspace) -> None:
    first = parsed_feed(build(ws, with_history(small_manifest(), 5)), "https://x/feed.xml")
    later = parsed_feed(build(ws, with_history(small_manifest(), 9)), "https://x/feed.xml")
    assert [e.id for e in later.entries][-6:] == [e.id for e in first.entries]
    assert later.feed.id == first.feed.id


# --- badge --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "message", "width"),
    # Widths of badges shields.io draws (flat style), e.g. the familiar "build | passing", and
    # of labels outside ASCII, measured with shields' Verdana table (Cyrillic 53 px, Greek 49
    # px, not as wide as "m" each).
    [
        ("build", "passing", 88),
        ("license", "MIT", 78),
        ("Валгалла", "complete", 53 + 10 + 51 + 10),
        ("Ελληνικά", "MIT", 49 + 10 + 21 + 10),
    ],
)
def test_badge_text_is_measured_as_shields_measures_it(
    label: str, message: str, width: int
) -> None:
    assert text_width(label) + 10 + text_width(message) + 10 == width


def test_characters_outside_the_table_count_as_wide_as_m_and_control_characters_nothing() -> None:
    assert text_width("m") == 11  # 10.7 px
    assert text_width("中文名称") == 45  # 11 px each, from the table
    assert text_width("😀🚀") == 21  # 2 x 10.7 = 21.4 px: not in the table
    assert text_width("\x00\x1fmm\x7f") == text_width("mm") == 21
    assert text_width("\x85") == 11  # C1 controls are not in the table either


@pytest.mark.parametrize("name", ["Valhalla", LONG, "i" * 60, RTL_NAME, EMOJI, "中文名称"])
def test_the_badge_holds_its_label_whatever_its_length(ws: Workspace, name: str) -> None:
    data = small_manifest()
    data["system"]["name"] = name
    site = build(ws, data)
    svg = (site / "badge.svg").read_text(encoding="utf-8")
    left = int(re.search(r'<rect width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert left == text_width(name) + 10
    assert left >= 5 + 3 * len(name)  # never the old 7 px guess's clipping of wide text
    shields = read_json(site, "shields.json")
    assert f'fill="#{shields["color"]}"' in svg
    assert f'textLength="{text_width(name)}"' in svg


# --- page, robots, headers ----------------------------------------------------------------


class Isolation(HTMLParser):
    """Where each piece of text sits: whether an element isolating its direction holds it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []
        self.texts: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("meta", "link", "br", "img"):
            return
        isolated = tag in ("bdi", "td") or dict(attrs).get("dir") == "auto"
        self.stack.append(isolated or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        inside = bool(self.stack) and self.stack[-1]
        # Plain text (a <title>) isolates with FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE.
        unfenced = re.sub("\u2068[^\u2069]*\u2069", "", data)
        self.texts.append((data, inside or not re.search("[\u0590-\u08ff]", unfenced)))


@pytest.mark.parametrize("page", ["index.html", "history.html", "404.html"])
def test_right_to_left_names_are_isolated_from_the_text_around_them(
    ws: Workspace, page: str
) -> None:
    data = hostile_manifest()
    data["history"][0]["by"] = RTL_NAME
    site = build(ws, data)
    parser = Isolation()
    parser.feed((site / page).read_text(encoding="utf-8"))
    holding = [(text, isolated) for text, isolated in parser.texts if "של" in text or "مج" in text]
    assert holding
    assert all(isolated for _, isolated in holding), holding


@pytest.mark.parametrize("kind", SITES)
def test_robots_txt_lets_every_crawler_read_the_site(ws: Workspace, kind: str) -> None:
    site = build(ws, SITES[kind]())
    robots = urllib.robotparser.RobotFileParser()
    robots.parse((site / "robots.txt").read_text(encoding="utf-8").splitlines())
    for path in ("/", "/index.html", "/status.json", "/feed.xml", "/api/v2/summary.json"):
        assert robots.can_fetch("AnyBot", path)


def header_rules(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """``_headers`` as Netlify and Cloudflare Pages read it: a path line, indented headers."""
    rules: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        if line and not line[0].isspace():
            rules.append((line.strip(), []))
        elif line.strip():
            name, _, value = line.strip().partition(":")
            rules[-1][1].append((name.strip().lower(), value.strip()))
    return rules


# How hosts match a ``_headers`` path rule differs, and a host joins the values of every rule a
# request matches (``Access-Control-Allow-Origin: *, *`` is refused by browsers): so each
# header must be set at most once under every reading at once, and each needed one at least
# once under each reading.


def glob_matches(rule: str, url: str) -> bool:
    """A ``*`` matches any characters, ``/`` included (Cloudflare Pages' splat)."""
    return fnmatch.fnmatchcase(url, rule)


def netlify_matches(rule: str, url: str) -> bool:
    """Netlify's reading (its CLI's copy of the production rule): any case; ``/x/*`` also
    matches ``/x`` and ``/x/``; a literal part may have a ``/`` after it."""
    parts = [part for part in rule.split("/") if part]
    pattern = "^" if parts else "^/$"
    for part in parts:
        if part == "*":
            if pattern == "^":
                pattern += "/?(.*)/?"
            else:
                pattern = pattern.removesuffix("/?") + "(?:|/|/(.*)/?)"
        elif "*" in part:
            pattern += "/" + part.replace("*", "(.*)")
        else:
            pattern += "/" + re.escape(part) + "/?"
    return re.match(pattern + "$", url, re.IGNORECASE) is not None


def prefix_matches(rule: str, url: str) -> bool:
    """The loosest reading reported: ``/x/*`` matches whatever starts with ``/x`` (``/x``,
    ``/x.json``, ``/x/y``)."""
    return url == rule or (rule.endswith("/*") and url.startswith(rule[:-2]))


MATCHERS = {"glob": glob_matches, "netlify": netlify_matches, "prefix": prefix_matches}


def test_the_matchers_read_rules_as_the_hosts_do() -> None:
    assert glob_matches("/packs/*", "/packs/H.json") and not glob_matches("/packs/*", "/packs")
    assert netlify_matches("/packs/*", "/packs") and netlify_matches("/packs/*", "/PACKS/h.json")
    assert not netlify_matches("/packs/*", "/packs.json")
    assert prefix_matches("/packs/*", "/packs.json") and prefix_matches("/history/*", "/history")
    for matches in MATCHERS.values():
        assert matches("/*", "/") and matches("/*", "/api/v2/summary.json")
        assert matches("/feed.xml", "/feed.xml") and not matches("/feed.xml", "/status.json")


def requested(site: Path) -> list[str]:
    """Every URL a reader may ask for: each file, each folder with and without its ``/``,
    and each file without its extension (hosts serve ``/x`` from ``x.html``)."""
    files = ["/" + path for path in list_files(site)]
    folders = {url.rsplit("/", 1)[0] for url in files if url.count("/") > 1}
    bare = {url.rsplit(".", 1)[0] for url in files if "." in url.rsplit("/", 1)[1]}
    return sorted({"/", *files, *folders, *(f + "/" for f in folders), *bare})


@pytest.mark.parametrize("kind", [*SITES, "long history"])
def test_every_file_gets_each_header_once_however_a_host_matches_paths(
    ws: Workspace, kind: str
) -> None:
    data = with_history(hostile_manifest(), 55) if kind == "long history" else SITES[kind]()
    site = build(ws, data)
    rules = header_rules((site / "_headers").read_text(encoding="utf-8"))
    urls = requested(site)
    assert {"/history.json", "/packs.json", "/packs", "/packs/H.json"} <= set(urls)
    assert ("/history/1.json" in urls) is (kind == "long history")
    for url in urls:
        matched = [
            h for rule, hs in rules if any(m(rule, url) for m in MATCHERS.values()) for h in hs
        ]
        names = [name for name, _ in matched]
        assert len(names) == len(set(names)), (url, names)
        for matches in MATCHERS.values():
            headers = dict(h for rule, hs in rules if matches(rule, url) for h in hs)
            directives = {d.strip() for d in headers["cache-control"].split(",")}
            assert {"max-age=0", "must-revalidate", "s-maxage=60"} <= directives, url
            assert headers["access-control-allow-origin"] == "*", url
            assert headers["x-content-type-options"] == "nosniff", url


# --- the same bytes -----------------------------------------------------------------------


def test_the_hostile_site_builds_to_the_same_bytes_twice(ws: Workspace) -> None:
    data = with_history(hostile_manifest(), 55)
    first = build(ws, data)
    snapshot = {p: (first / p).read_bytes() for p in list_files(first)}
    (ws.root / "site").rename(ws.root / "first")
    second = build(ws, data)
    assert {p: (second / p).read_bytes() for p in list_files(second)} == snapshot


def test_a_pack_added_later_keeps_its_own_created_at(ws: Workspace) -> None:
    data = small_manifest()
    data["packs"].append({"id": "X", "name": "New", "group": "Data", "status": "installed"})
    data["system"]["updated_at"] = EPOCH2_TEXT
    data["history"].append(
        {
            "at": EPOCH2_TEXT,
            "by": "bob",
            "action": "pack-add",
            "changes": {
                "packs.X": [
                    None,
                    {"id": "X", "name": "New", "group": "Data", "status": "installed"},
                ]
            },
            "notes": None,
        }
    )
    site = build(ws, data)
    by_id = {c["id"]: c for c in read_json(site, "api/v2/components.json")["components"]}
    assert by_id["X"]["created_at"] == EPOCH2_TEXT
    assert by_id[group_id("Data")]["created_at"] == EPOCH2_TEXT
    assert by_id["H"]["created_at"] == EPOCH_TEXT
