"""The site's URL (``system.base_url``, ``build --base-url``): one rule for both, and whatever it
admits keeps every page and the feed well-formed.

The URL is written as it is into every page, the feed and the Statuspage view, so a character
that no text field may hold (controls, DEL, C1, bidi controls, noncharacters) is refused in it
too, in the manifest and on the command line alike, with the same located words.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest
from conftest import Workspace, dump, edit, small_manifest, snapshot
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from valhalla_status.errors import ValhallaError
from valhalla_status.models import FORBIDDEN_CHAR, FORBIDDEN_CHAR_MULTILINE, Manifest
from valhalla_status.site import render_site

M = "manifest/valhalla.yaml"
BASE = "https://status.example.com/valhalla/"

# (the character, how the message names it)
REFUSED = [
    ("\x00", "the control character U+0000"),
    ("\x1b", "the control character U+001B"),
    ("\x7f", "the control character U+007F"),
    ("\x85", "the control character U+0085"),
    ("\x9b", "the control character U+009B"),
    ("\u061c", "the control character U+061C"),
    ("\u200b", "the control character U+200B"),
    ("\u200f", "the control character U+200F"),
    ("\u202a", "the control character U+202A"),
    ("\u202e", "the control character U+202E"),
    ("\u2066", "the control character U+2066"),
    ("\u2069", "the control character U+2069"),
    ("\ufeff", "the control character U+FEFF"),
    ("\ufffe", "the noncharacter U+FFFE"),
    ("\U0001fffe", "the noncharacter U+1FFFE"),
]


def with_base_url(url: str) -> str:
    """The small manifest with ``base_url`` on its line 5, written as YAML escapes it."""
    text = dump(small_manifest())
    quoted = url.encode("unicode_escape").decode().replace('"', '\\"')
    return edit(text, "  version: 1.0.0\n", f'  base_url: "{quoted}"\n  version: 1.0.0\n')


@pytest.mark.parametrize("where", ["host", "path"])
@pytest.mark.parametrize(("char", "kind"), REFUSED)
def test_a_control_or_bidi_character_in_the_manifests_base_url_is_refused_located(
    ws: Workspace, char: str, kind: str, where: str
) -> None:
    url = f"https://status{char}.example/" if where == "host" else f"{BASE}a{char}b/"
    ws.write(with_base_url(url))
    before = snapshot(ws.root)
    for command in (["validate"], ["build"], ["show", "--json"]):
        result = ws.run(*command)
        assert result.exit_code == 1, (command, result.output)
        [line] = result.stderr.splitlines()
        assert line.startswith(f"{M}:5: system.base_url: '")
        assert line.endswith(f"' contains {kind}, which is not allowed in a URL")
    assert snapshot(ws.root) == before
    assert not (ws.root / "site").exists()


@pytest.mark.parametrize(("char", "kind"), REFUSED)
def test_the_same_character_in_build_base_url_is_refused_in_the_same_words(
    ws: Workspace, char: str, kind: str
) -> None:
    ws.write(small_manifest())
    before = snapshot(ws.root)
    result = ws.run("build", "--base-url", f"{BASE}a{char}b/")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --base-url: 'https://status.example.com/valhalla/a")
    assert line.endswith(f"b/' contains {kind}, which is not allowed in a URL")
    assert snapshot(ws.root) == before


def test_a_long_base_url_is_named_by_its_length_not_quoted_whole(ws: Workspace) -> None:
    ws.write(small_manifest())
    result = ws.run("build", "--base-url", BASE + "x" * 3000)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: --base-url: is 3,036 characters; the limit is 2,000\n",
    )


# --- whatever is admitted keeps the site well-formed ---------------------------------------

_MANIFEST = Manifest.model_validate(small_manifest())


def _site(url: str, *, in_manifest: bool) -> dict[str, bytes]:
    if in_manifest:
        system = {**_MANIFEST.system.model_dump(), "base_url": url}
        manifest = Manifest.model_validate({**_MANIFEST.model_dump(), "system": system})
        return render_site(manifest)
    return render_site(_MANIFEST, base_url=url)


def _check_site(files: dict[str, bytes], url: str) -> None:
    base = url.rstrip("/") + "/"
    feed = ElementTree.fromstring(files["feed.xml"])  # well-formed whatever the URL holds
    hrefs = [e.attrib["href"] for e in feed.iter() if "href" in e.attrib]
    assert f"{base}index.html" in hrefs or f"{base}" in hrefs, hrefs
    ElementTree.fromstring(files["badge.svg"])
    for path, data in files.items():
        if path.endswith((".html", ".xml", ".svg", ".json")) and not path.startswith("schema/"):
            found = FORBIDDEN_CHAR_MULTILINE.search(data.decode("utf-8"))
            assert found is None, (path, found)


URL_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]) | st.sampled_from([c for c, _ in REFUSED]),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(host=URL_TEXT.filter(bool), path=URL_TEXT, in_manifest=st.booleans())
@example(host="0", path=" ", in_manifest=True)  # white space in the path, refused by the model
def test_any_base_url_is_refused_or_keeps_the_feed_and_pages_well_formed(
    host: str, path: str, in_manifest: bool
) -> None:
    url = f"https://{host}/{path}"
    try:
        files = _site(url, in_manifest=in_manifest)
    except (ValidationError, ValhallaError) as exc:
        # A host with a user, a port or brackets is refused unless it is one a browser opens.
        refused_for = FORBIDDEN_CHAR.search(url) or re.search(r"[\s/?#@:\[\]]", host)
        # No white space anywhere, and no query or fragment: links are the URL and a path.
        refused_for = refused_for or re.search(r"[\s?#]", path)
        assert refused_for is not None or "https URL" in str(exc), (url, str(exc))
        return
    assert FORBIDDEN_CHAR.search(url) is None
    _check_site(files, url)


@pytest.mark.parametrize(
    "url",
    [
        "https://status.example.com/a\"'><script>alert(1)</script>/",
        "https://xn--bcher-kva.example/ü/&amp;/<![CDATA[x]]>/",
        "https://例え.テスト/状態/",
        "https://status.example.com/%1b%5b2J/\u00ad\u2061/",
        "https://h/\U0001f680/\U000e0041/",
    ],
)
def test_an_admitted_base_url_with_markup_or_any_script_stays_well_formed(url: str) -> None:
    for in_manifest in (True, False):
        _check_site(_site(url, in_manifest=in_manifest), url)
