"""The canonical dump's fast path writes exactly the bytes of one PyYAML call over the document.

The reference below is the dump as it was before the fast path: the whole document through
PyYAML's emitter at once. Every manifest, however hostile its text, must dump to the same bytes,
because `fmt --check` compares files to the canonical text byte for byte and repositories hold
files written by the reference.

Examples per test: ``VALHALLA_HYPOTHESIS_PROFILE=ci`` (default, short) or ``long``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from valhalla_status import canonical
from valhalla_status.manifest import dump_manifest
from valhalla_status.models import ACTIONS, PACK_ID_PATTERN, STATUSES, HistoryEntry, Manifest, Pack
from valhalla_status.models import SystemMetadata as System

PROFILES = {"ci": 300, "long": 5_000}  # examples per property
PROFILE = os.environ.get("VALHALLA_HYPOTHESIS_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"VALHALLA_HYPOTHESIS_PROFILE={PROFILE!r}: use one of ci, long")
PROPERTY = settings(
    max_examples=PROFILES[PROFILE],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# --- hostile text ---------------------------------------------------------------------------

WORDS = [
    "Component", "Group", "17", "P0", "installed", "pending", "R&D", "(EU)", "a/b", "x+y",
    "v1.2", "e.g.", "-", "_x", "Normal", "Nullable", "Online", "Yesterday", "Trueblue",
]  # fmt: skip
KEYWORDS = [
    "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
    "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N", "null", "Null", "NULL", "~",
    ".inf", ".Inf", "-.INF", "+.inf", ".nan", ".NaN", "NaN", "inf", "1e3", "1.5e-3", "0x1F",
    "0o17", "0b101", "1_000", "012", "-1", "+1", "1.", ".5", "1:30", "190:20:30", "2025-09-20",
    "2025-09-20T00:00:00Z", "2001-12-14 21:59:43.10 -5", "<<", "=", "", " ",
]  # fmt: skip
HOSTILE = [
    "- a", "-a", "-", "--", "---", "...", "? a", "?a", "[a]", "]", "{a}", "}", "*a", "&a", "!a",
    "!!str", "%a", "@a", "`a`", "'a'", "'", '"a"', '"', "a: b", "a:b", "a:", ":a", "a #b", "a#b",
    "#a", "a,b", "|", "|-", "> a", ">", "a\tb", "\ta", "a\\b", "😀", "𝐀bc", "🚀 Rocket",
    "Zürich", "日本語", "\u00a0a", "a\u00a0", "a\u200db", "\ufffd", "\U0001f600\U0001f3fb",
    "a\x85b", "\x85", "a\x07", "\x1b[31m", "a\u2028b", "\ufeff", "\n", "a\n", "a\n\n", "\na",
    "a\n b", "a\n\n\nb", "  a", "a  ", "a  b", " a", "a ",
]  # fmt: skip
NEAR = ["a:", "a:b", "x#y", "#y", "Yes:", "-x", "No.", "?", "'s", "[1]", "e\u0301", "é"]
NEAR_SEPARATORS = [" "] * 8 + [": ", " #", "  ", ":", "#", ", "]
PIECES = st.sampled_from(WORDS + KEYWORDS + HOSTILE) | st.text(
    st.characters(exclude_categories=("Cs",)), max_size=4
)
SEPARATORS = st.sampled_from([" ", " ", "", "\n", "  ", ": ", " #"])


@st.composite
def hostile_text(draw: Any, max_size: int) -> str:
    """Text of up to ``max_size`` characters: mostly plain words, often something PyYAML must
    quote or write as a block, sometimes long (over 80 and 120 characters), sometimes ending in
    a blank line (a ``|+`` block)."""
    kind = draw(st.integers(0, 9))
    if kind < 4:  # plain-looking words, the fast path's own ground, and near misses
        words = draw(st.lists(st.sampled_from(WORDS + KEYWORDS + NEAR), min_size=1, max_size=4))
        text = "".join(w + draw(st.sampled_from(NEAR_SEPARATORS)) for w in words)[:-1]
    elif kind < 6:
        text = draw(st.sampled_from(KEYWORDS + HOSTILE))
    elif kind < 9:
        pieces = draw(st.lists(PIECES, min_size=1, max_size=6))
        text = "".join(p + draw(SEPARATORS) for p in pieces)
    else:  # long, near and over the widths an emitter might fold at
        word = draw(st.sampled_from(WORDS + HOSTILE))
        text = draw(SEPARATORS).join([word] * draw(st.integers(10, 150)))
    return text[:max_size] if draw(st.integers(0, 3)) else text[: max_size - 2] + "\n\n"


def field_text(model: Any, field: str, max_size: int) -> st.SearchStrategy[str]:
    """Hostile text the model accepts for ``field``."""
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[str, model.model_fields[field]], config={"strict": True}
    )

    def valid(value: str) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True

    return hostile_text(max_size).filter(valid)


IDS = st.from_regex(PACK_ID_PATTERN, fullmatch=True) | st.sampled_from(
    ["YES", "NO", "ON", "OFF", "TRUE", "FALSE", "NULL", "Y", "N", "E1", "P0", "A-1", "X_"]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text(40)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text(10), inner),
    max_leaves=8,
)
MOMENT = st.sampled_from(["2025-09-20T00:00:00Z", "2026-01-02T03:04:05.123456Z"])


@st.composite
def manifests(draw: Any) -> Manifest:
    packs = []
    for pack_id in draw(st.lists(IDS, max_size=12, unique=True)):
        pack = {
            "id": pack_id,
            "name": draw(field_text(Pack, "name", 100)),
            "group": draw(field_text(Pack, "group", 60)),
            "status": draw(st.sampled_from(STATUSES)),
        }
        if draw(st.booleans()):
            pack["notes"] = draw(field_text(Pack, "notes", 2000))
        packs.append(pack)
    system: dict[str, Any] = {
        "name": draw(field_text(System, "name", 100)),
        "description": draw(field_text(System, "description", 500)),
        "version": draw(st.sampled_from(["1.0.0", "0.1.0-rc.1+build.5"])),
        "backend_complete": False,
        "notes": draw(st.none() | field_text(System, "notes", 2000)),
        "updated_at": draw(MOMENT),
        "completed_at": None,
        "extra": draw(st.dictionaries(hostile_text(10), JSON, max_size=3)),
    }
    if draw(st.booleans()):
        system["base_url"] = draw(
            st.sampled_from(["https://status.example.com", "https://x.org/a:b#c?d='e'"])
        )
    history = [
        {
            "at": draw(MOMENT),
            "by": draw(field_text(HistoryEntry, "by", 100)),
            "action": draw(st.sampled_from(ACTIONS)),
            "changes": draw(st.dictionaries(hostile_text(30), st.tuples(JSON, JSON).map(list))),
            "notes": draw(st.none() | field_text(HistoryEntry, "notes", 2000)),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    return Manifest.model_validate(
        {
            "schema_version": draw(st.sampled_from([1, 2])),
            "system": system,
            "packs": packs,
            "history": history,
        }
    )


@pytest.mark.slow
@PROPERTY
@given(manifest=manifests())
def test_the_canonical_dump_is_byte_for_byte_what_pyyaml_writes(manifest: Manifest) -> None:
    assert dump_manifest(manifest) == canonical.pyyaml_dump(manifest)


ASCII_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
NEAR_PLAIN = st.one_of(
    st.tuples(st.sampled_from(WORDS[:3] + NEAR), ASCII_TEXT).map("".join),
    st.lists(
        st.tuples(st.sampled_from(WORDS + KEYWORDS + NEAR), st.sampled_from(NEAR_SEPARATORS)),
        min_size=1,
        max_size=4,
    ).map(lambda pairs: "".join(w + sep for w, sep in pairs).rstrip(" ")),
)


@PROPERTY
@given(
    names=st.lists(st.tuples(NEAR_PLAIN, NEAR_PLAIN), min_size=1, max_size=6),
    schema_version=st.sampled_from([1, 2]),
)
def test_names_at_the_edge_of_the_plain_style_dump_as_pyyaml_writes_them(
    names: list[tuple[str, str]], schema_version: int
) -> None:
    """Names and groups of printable ASCII, and words beside ':', '#', ',' and YAML's keywords:
    where a rule of the fast path would go wrong if it were any looser."""
    packs = [
        {"id": f"P{i}", "name": name.strip() or "x", "group": group[:60].strip() or "x"}
        for i, (name, group) in enumerate(names)
    ]
    data = small(schema_version)
    data["packs"] = [{**pack, "status": "pending"} for pack in packs]
    manifest = Manifest.model_validate(data)
    assert dump_manifest(manifest) == canonical.pyyaml_dump(manifest)


# --- the joins, one by one ------------------------------------------------------------------


def small(schema_version: int) -> dict[str, Any]:
    return {
        "schema_version": schema_version,
        "system": {
            "name": "Valhalla",
            "description": "Valhalla professional capital markets system",
            "version": "1.0.0",
            "backend_complete": False,
            "notes": None,
            "updated_at": "2025-09-20T00:00:00Z",
            "completed_at": None,
        },
        "packs": [
            {"id": "H", "name": "Analyst Essentials", "group": "Pro", "status": "installed"},
            {"id": "I", "name": "Reporter: Premium", "group": "Pro", "status": "pending"},
            {"id": "S", "name": "Rollout Manager", "group": "System", "status": "deprecated"},
        ],
        "history": [{"at": "2025-09-20T00:00:00Z", "by": "a", "action": "init", "notes": None}],
    }


def kept_blank_line(where: str, schema_version: int) -> dict[str, Any]:
    """A manifest whose one ``|+`` scalar (text ending in a blank line) sits at ``where``."""
    data = small(schema_version)
    notes = "kept trailing blank line\n\n"
    if where == "system":
        data["system"]["notes"] = notes
    elif where == "no packs":
        data["system"]["notes"] = notes
        data["packs"] = []
    elif where == "history":
        data["history"][-1]["notes"] = notes
    else:
        data["packs"][int(where)]["notes"] = notes
    return data


@pytest.mark.parametrize("schema_version", [1, 2])
@pytest.mark.parametrize("where", ["system", "no packs", "history", "0", "1", "2"])
def test_a_block_scalar_keeping_its_blank_line_ends_the_document_as_pyyaml_does(
    where: str, schema_version: int
) -> None:
    """PyYAML marks the end ('...') of a document whose last scalar is a '|+' block, and only
    then: a pack or section written on its own must not carry the mark into the middle."""
    manifest = Manifest.model_validate(kept_blank_line(where, schema_version))
    text = dump_manifest(manifest)
    assert text == canonical.pyyaml_dump(manifest)
    # The one place PyYAML writes the mark: after the last history entry's notes, which end
    # the one-file layout. (A pack's notes are its last key there, so each pack written on its
    # own ends open, but the history follows the packs.)
    assert text.endswith("\n...\n") is (schema_version == 1 and where == "history")


@pytest.mark.parametrize(
    "names",
    [
        ["Yes", "No", "NULL"],  # all quoted: one run of PyYAML-written packs
        ["Plain", "Yes", "Plain"],  # fast, PyYAML, fast
        ["'quoted'", "Plain", "line one\nline two"],  # PyYAML, fast, PyYAML
        ["a: b", "a #b", "- a"],
    ],
)
@pytest.mark.parametrize("schema_version", [1, 2])
def test_packs_written_fast_and_packs_written_by_pyyaml_join_seamlessly(
    names: list[str], schema_version: int
) -> None:
    data = small(schema_version)
    for pack, name in zip(data["packs"], names, strict=True):
        if "\n" in name:
            pack["notes"] = name
        else:
            pack["name"] = name
    manifest = Manifest.model_validate(data)
    text = dump_manifest(manifest)
    assert text == canonical.pyyaml_dump(manifest)


@pytest.mark.parametrize(
    "value",
    ["YES", "NO", "ON", "OFF", "TRUE", "FALSE", "NULL", "Yes", "no", "Null", "on", "True"],
)
def test_a_pack_id_or_name_that_yaml_reads_as_a_boolean_or_null_stays_quoted(value: str) -> None:
    data = small(2)
    data["packs"][0]["id"] = value.upper()
    data["packs"][1]["name"] = value
    data["packs"][2]["group"] = value
    manifest = Manifest.model_validate(data)
    text = dump_manifest(manifest)
    assert text == canonical.pyyaml_dump(manifest)
    assert f"- id: '{value.upper()}'\n" in text
    assert f"  name: '{value}'\n" in text
    assert f"  group: '{value}'\n" in text
