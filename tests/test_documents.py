"""to_json: the published JSON format (UTF-8, 2-space indent, key order kept, a final newline)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valhalla_status.publishing.documents import to_json
from valhalla_status.rules.text import for_terminal


def test_to_json_keeps_key_order_and_escapes_strings() -> None:
    document = {"b": '</script>\u2028"é', "a": [1, 2.5, None, True, {}], "c": []}
    assert to_json(document) == (
        '{\n  "b": "</script>\\u2028\\"é",\n  "a": [\n    1,\n    2.5,\n    null,\n'
        '    true,\n    {}\n  ],\n  "c": []\n}\n'
    )


@pytest.mark.parametrize("bad", [{"x": object()}, [{"y": ValueError}]])
def test_to_json_refuses_objects_json_cannot_hold(bad: Any) -> None:
    # NaN and infinities never reach it: the models refuse them (see test_bad_input).
    with pytest.raises(ValueError):
        to_json(bad)


def test_to_json_writes_what_json_dumps_writes() -> None:
    document = {"a": [1, -2, 10**40, 0.1, 2.5e300, None, False], "é": {"k": ["\x00\x1f~"]}}
    assert to_json(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# Characters JSON encoders write raw and a terminal obeys: DEL, C1 (U+009B is CSI), bidi
# embeddings, overrides and isolates, marks, invisible format characters, line separators,
# tags beyond the first plane.
WRITTEN_ESCAPED = {
    "\x7f": "\\u007f",
    "\x85": "\\u0085",
    "\x9b": "\\u009b",
    "\xad": "\\u00ad",
    "\u061c": "\\u061c",
    "\u200b": "\\u200b",
    "\u200e": "\\u200e",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "\u202a": "\\u202a",
    "\u202e": "\\u202e",
    "\u2066": "\\u2066",
    "\u2069": "\\u2069",
    "\u2060": "\\u2060",
    "\ufeff": "\\ufeff",
    "\ufff9": "\\ufff9",
    "\U000110bd": "\\ud804\\udcbd",
    "\U0001d173": "\\ud834\\udd73",
    "\U000e0001": "\\udb40\\udc01",
    "\U000e0041": "\\udb40\\udc41",
}


@pytest.mark.parametrize(("char", "escape"), list(WRITTEN_ESCAPED.items()))
def test_to_json_writes_control_bidi_and_format_characters_as_escapes(
    char: str, escape: str
) -> None:
    document = {f"k{char}": [f"a{char}b", {"x": char}]}
    text = to_json(document)
    assert char not in text
    assert text == (
        f'{{\n  "k{escape}": [\n    "a{escape}b",\n    {{\n      "x": "{escape}"\n    }}\n  ]\n}}\n'
    )
    assert json.loads(text) == document


@pytest.mark.parametrize("text", ["é日עم", "👩\u200d💻", "क्\u200cष", "🇫🇷", "\U00020000", "\ue000"])
def test_to_json_writes_the_text_of_every_script_and_emoji_as_it_is(text: str) -> None:
    assert to_json({"t": text}) == f'{{\n  "t": "{text}"\n}}\n'


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**100), max_value=10**100)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"])), inner, max_size=4
        )
    ),
    max_leaves=20,
)


def _shown_raw(text: str) -> list[str]:
    """The characters of JSON ``text`` a terminal would obey or hide (line breaks between
    lines are the JSON's own)."""
    return [c for c in text if c != "\n" and for_terminal(c) != c]


@given(_JSON_VALUES)
def test_to_json_writes_json_dumps_text_for_any_json_without_floats(value: Any) -> None:
    """The same document, written as ``json.dumps`` writes it, except that no control, bidi
    or format character is left raw."""
    text = to_json(value)
    assert json.loads(text) == value
    assert _shown_raw(text) == []
    dumped = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    assert text == dumped or _shown_raw(dumped) != []
    assert json.loads(text) == json.loads(dumped)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_to_json_writes_every_float_so_that_it_reads_back_the_same(value: float) -> None:
    assert json.loads(to_json({"x": value})) == {"x": value}
