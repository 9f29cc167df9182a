"""The page, the feed and the badge: structure, accessibility, escaping, size, no outside URL."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import EPOCH2_TEXT, EPOCH_TEXT, Workspace, small_manifest

from valhalla_status.service import DEFAULT_PACKS

ATOM = "{http://www.w3.org/2005/Atom}"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>\"'&]]><img src=x onerror=alert(2)>"
VOID = {"meta", "link", "br", "img", "input", "hr", "area", "base", "col", "source", "wbr"}


class Page(HTMLParser):
    """A parsed page: every start tag with its attributes, the text, the <style> content."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.open: list[str] = []
        self.text: list[str] = []
        self.style = ""
        self.in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self.in_style = tag == "style"
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.style += data
        else:
            self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def build(ws: Workspace, data: dict[str, Any]) -> Path:
    ws.write(data)
    result = ws.run("build")
    assert result.exit_code == 0, result.output
    return ws.root / "site"


def page_of(site: Path, name: str = "index.html") -> Page:
    return Page((site / name).read_text(encoding="utf-8"))


def default_data() -> dict[str, Any]:
    """The 16 packs of the default manifest."""
    data = small_manifest()
    data["packs"] = [
        {"id": i, "name": n, "group": g, "status": "installed"} for i, n, g in DEFAULT_PACKS
    ]
    return data


def complete_data() -> dict[str, Any]:
    data = small_manifest()
    data["packs"][1]["status"] = "installed"
    data["system"].update(
        backend_complete=True, completed_at=EPOCH_TEXT, updated_at=EPOCH2_TEXT, notes="Passed"
    )
    data["history"].append(
        {
            "at": EPOCH2_TEXT,
            "by": "bob",
            "action": "complete",
            "changes": {
                "backend_complete": [False, True],
                "completed_at": [None, EPOCH_TEXT],
                "packs.I.status": ["pending", "installed"],
            },
            "notes": "Backend verification passed",
        }
    )
    return data


def test_page_is_well_formed_html5_and_ends_with_a_newline(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    text = (site / "index.html").read_text(encoding="utf-8")
    assert text.startswith('<!doctype html>\n<html lang="en">\n')
    assert text.endswith("</body>\n</html>\n")
    page = Page(text)
    assert page.open == []
    assert page.all("meta")[0] == {"charset": "utf-8"}
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.all(
        "meta"
    )


def test_readiness_in_development_comes_first(ws: Workspace) -> None:
    page = page_of(build(ws, small_manifest()))
    assert page.words.startswith(
        "Valhalla status Valhalla status Valhalla professional capital markets system "
        "Backend in development Version 1.0.0 · updated 2025-09-20 00:00 UTC "
        "Summary 3 packs 2 installed 1 pending 0 deprecated 0 experimental Packs"
    )


def test_readiness_complete_shows_since_when_in_a_time_element(ws: Workspace) -> None:
    site = build(ws, complete_data())
    text = (site / "index.html").read_text(encoding="utf-8")
    assert (
        '<p class="ready installed">Backend complete since '
        '<time datetime="2025-09-20T00:00:00Z">2025-09-20 00:00 UTC</time></p>'
    ) in text
    page = Page(text)
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["datetime"]) for t in page.all("time")
    )
    assert "Notes Passed" in page.words
    assert (
        # (user text is isolated in <bdi> elements, hence the space before the colon)
        "2025-09-21 00:00 UTC Backend marked complete by bob : Pack I: pending → installed "
        "Backend verification passed"
    ) in page.words


def test_packs_are_grouped_in_captioned_tables_with_scoped_headers(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    text = (site / "index.html").read_text(encoding="utf-8")
    page = Page(text)
    assert [t for t, _ in page.tags if t in ("table", "caption")] == ["table", "caption"] * 2
    assert [a["scope"] for a in page.all("th")] == ["col"] * 3 + ["row"] * 2 + ["col"] * 3 + ["row"]
    assert "<caption><bdi>Professional</bdi> <small>(2)</small></caption>" in text
    assert "<caption><bdi>System infrastructure</bdi> <small>(1)</small></caption>" in text
    # Status as text, not by colour alone.
    assert (
        '<tr><th scope="row"><a href="packs/I.json">I</a></th><td dir="auto">Reporter Premium</td>'
        '<td class="pending">pending since <time datetime="2025-09-20T00:00:00Z">'
        "2025-09-20 00:00 UTC</time></td></tr>"
    ) in text


def test_a_packs_status_reads_since_when_and_why_with_the_note_isolated(ws: Workspace) -> None:
    data = small_manifest()
    data["packs"][1]["notes"] = "\u05d1\u05d3\u05d9\u05e7\u05d4 waiting <for> vendor"
    text = (build(ws, data) / "index.html").read_text(encoding="utf-8")
    assert (
        '<td class="pending">pending since <time datetime="2025-09-20T00:00:00Z">'
        "2025-09-20 00:00 UTC</time>"
        " — <bdi>\u05d1\u05d3\u05d9\u05e7\u05d4 waiting &lt;for&gt; vendor</bdi></td>"
    ) in text


def test_page_has_landmarks_and_links_to_every_published_file(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    page = page_of(site)
    names = [t for t, _ in page.tags]
    for landmark in ("header", "main", "nav", "footer"):
        assert names.count(landmark) == 1
    linked = {a["href"] for a in page.all("a")}
    published = {
        p.relative_to(site).as_posix()
        for p in site.rglob("*")
        if p.is_file()
        and p.suffix in (".json", ".xml", ".svg")
        and not re.fullmatch(r"packs/[a-z].*", p.relative_to(site).as_posix())
    }
    assert published <= linked
    alternates = {(a["type"], a["href"]) for a in page.all("link") if a["rel"] == "alternate"}
    assert alternates == {("application/json", "status.json"), ("application/atom+xml", "feed.xml")}


def test_page_has_no_script_no_outside_url_and_a_restrictive_csp(ws: Workspace) -> None:
    site = build(ws, small_manifest())
    text = (site / "index.html").read_text(encoding="utf-8")
    page = Page(text)
    assert "script" not in {t for t, _ in page.tags}
    for _, attrs in page.tags:
        assert "style" not in attrs
        assert not any(k.startswith("on") for k in attrs)
        for key in ("href", "src", "action"):
            if key in attrs:
                assert not re.match(r"[a-z][a-z0-9+.-]*:|//", attrs[key]), attrs[key]
    assert not re.search(r"https?:|url\(", text)
    (csp,) = [m["content"] for m in page.all("meta") if m.get("http-equiv")]
    digest = base64.b64encode(hashlib.sha256(page.style.encode()).digest()).decode()
    assert csp == (
        f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    headers = (site / "_headers").read_text(encoding="utf-8")
    assert f"  Content-Security-Policy: {csp}; frame-ancestors 'none'\n" in headers


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def test_text_colours_contrast_at_least_4_5_to_1_in_light_and_dark(ws: Workspace) -> None:
    style = page_of(build(ws, small_manifest())).style
    light_css, dark_css = re.findall(r":root\{([^}]*)\}", style)[:2]
    assert "prefers-color-scheme:dark" in style
    for css in (light_css, dark_css):
        colours = dict(re.findall(r"--([a-z]+):(#[0-9a-f]{6})", css))
        texts = ["fg", "mu", "a", "installed", "pending", "deprecated", "experimental"]
        assert set(texts) | {"bg", "ln"} == set(colours)
        for name in texts:
            assert contrast(colours[name], colours["bg"]) >= 4.5, (name, css)


def test_page_for_16_packs_is_under_4_kb_gzipped(ws: Workspace) -> None:
    site = build(ws, default_data())
    data = (site / "index.html").read_bytes()
    assert data.count(b'<td class="installed">installed since <time datetime=') == 16
    assert len(gzip.compress(data, compresslevel=9, mtime=0)) < 4096


def hostile_data() -> dict[str, Any]:
    data = small_manifest()
    data["system"]["name"] = HOSTILE
    data["system"]["notes"] = HOSTILE + "\nsecond line"
    data["packs"][0]["name"] = HOSTILE
    data["packs"][0]["group"] = HOSTILE
    data["history"][0]["by"] = HOSTILE
    data["history"][0]["notes"] = HOSTILE
    return data


@pytest.mark.parametrize("name", ["index.html", "404.html"])
def test_hostile_strings_are_escaped_in_the_pages(ws: Workspace, name: str) -> None:
    site = build(ws, hostile_data())
    text = (site / name).read_text(encoding="utf-8")
    page = Page(text)
    assert "script" not in {t for t, _ in page.tags}
    assert "img" not in {t for t, _ in page.tags}
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;]]&gt;&lt;img src=x" in text
    assert HOSTILE in page.words


def test_hostile_strings_are_exact_in_the_json(ws: Workspace) -> None:
    site = build(ws, hostile_data())
    status = json.loads((site / "status.json").read_text(encoding="utf-8"))
    assert status["name"] == HOSTILE
    assert status["packs"][0]["name"] == HOSTILE
    history = json.loads((site / "history.json").read_text(encoding="utf-8"))
    assert history["history"][0]["by"] == HOSTILE
    shields = json.loads((site / "shields.json").read_text(encoding="utf-8"))
    assert shields["label"] == HOSTILE


def test_feed_is_atom_with_hostile_strings_escaped(ws: Workspace) -> None:
    site = build(ws, hostile_data())
    root = ET.parse(site / "feed.xml").getroot()
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}title") == f"{HOSTILE} status changes"
    (entry,) = root.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == HOSTILE
    assert entry.findtext(f"{ATOM}updated") == EPOCH_TEXT
    assert entry.findtext(f"{ATOM}content") == f"Manifest created by {HOSTILE}\n\n{HOSTILE}"
    assert entry.findtext(f"{ATOM}id", "").startswith("urn:uuid:")


def test_feed_lists_the_50_most_recent_changes_newest_first(ws: Workspace) -> None:
    data = small_manifest()
    data["history"] += [
        {
            "at": f"2025-09-21T00:{n // 60:02d}:{n % 60:02d}Z",
            "by": "bot",
            "action": "set-version",
            "changes": {"version": [f"1.0.{n}", f"1.0.{n + 1}"]},
            "notes": None,
        }
        for n in range(60)
    ]
    data["system"]["version"] = "1.0.60"
    data["system"]["updated_at"] = "2025-09-21T00:00:59Z"  # the newest change
    site = build(ws, data)
    root = ET.parse(site / "feed.xml").getroot()
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 50
    assert entries[0].findtext(f"{ATOM}title") == "Version 1.0.59 → 1.0.60"
    assert entries[-1].findtext(f"{ATOM}title") == "Version 1.0.10 → 1.0.11"
    assert root.findtext(f"{ATOM}updated") == "2025-09-21T00:00:59Z"
    assert entries[0].findtext(f"{ATOM}updated") == "2025-09-21T00:00:59Z"
    assert entries[-1].findtext(f"{ATOM}updated") == "2025-09-21T00:00:10Z"
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == 50
    page = page_of(site)
    assert page.words.count("by bot") == 10


def test_badge_is_svg_with_hostile_strings_escaped(ws: Workspace) -> None:
    site = build(ws, hostile_data())
    root = ET.parse(site / "badge.svg").getroot()
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.findtext(f"{SVG}title") == f"{HOSTILE}: in development"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    # Each text twice, as shields.io draws it: a shadow, then the text.
    assert texts == [HOSTILE, HOSTILE, "in development", "in development"]


def test_badge_colour_follows_readiness(ws: Workspace) -> None:
    site = build(ws, complete_data())
    root = ET.parse(site / "badge.svg").getroot()
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert fills == ["#555", "#1a7f37"]
    assert contrast("#ffffff", "#1a7f37") >= 4.5 and contrast("#ffffff", "#9a6700") >= 4.5
    shields = json.loads((site / "shields.json").read_text(encoding="utf-8"))
    # shields.io draws the same colour (a hex colour without "#" is how it takes one).
    assert (shields["message"], shields["color"]) == ("complete", "1a7f37")


def test_404_page_links_home(ws: Workspace) -> None:
    page = page_of(build(ws, small_manifest()), "404.html")
    assert (
        page.words
        == "Not found · Valhalla status Not found There is nothing at this address. Valhalla status"
    )
    assert page.all("a") == [{"href": "/"}]


def test_feed_entry_content_lists_the_changes(ws: Workspace) -> None:
    site = build(ws, complete_data())
    root = ET.parse(site / "feed.xml").getroot()
    newest = root.findall(f"{ATOM}entry")[0]
    assert newest.findtext(f"{ATOM}content") == (
        "Backend marked complete by bob\n"
        "- Pack I: pending → installed\n\n"
        "Backend verification passed"
    )


def test_history_values_of_any_shape_are_described(ws: Workspace) -> None:
    data = small_manifest()
    data["history"][0]["changes"] = {
        "packs.X": [None, "not a pack"],
        "packs.Y": [{"id": "Y"}, None],
        "packs.H.name": ["Old", "New"],
        "extra": [{"a": 1}, [1, 2]],
    }
    page = page_of(build(ws, data))
    assert (
        'Manifest created by alice : extra: {"a": 1} → [1, 2]; Pack X added; Pack Y removed; '
        "Pack H: name Old → New"
    ) in page.words
