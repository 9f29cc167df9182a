"""to_json: the published JSON format (UTF-8, 2-space indent, key order kept, a final newline)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valhalla_status.documents import to_json


def test_to_json_keeps_key_order_and_escapes_strings() -> None:
    document = {"b": '</script>\u2028"é', "a": [1, 2.5, None, True, {}], "c": []}
    assert to_json(document) == (
        '{\n  "b": "</script>\u2028\\"é",\n  "a": [\n    1,\n    2.5,\n    null,\n'
        '    true,\n    {}\n  ],\n  "c": []\n}\n'
    )


@pytest.mark.parametrize("bad", [{"x": object()}, [{"y": ValueError}]])
def test_to_json_refuses_objects_json_cannot_hold(bad: Any) -> None:
    # NaN and infinities never reach it: the models refuse them (see test_bad_input).
    with pytest.raises(ValueError):
        to_json(bad)


def test_to_json_writes_what_json_dumps_writes() -> None:
    document = {"a": [1, -2, 10**40, 0.1, 2.5e300, None, False], "é": {"k": ["\x00\x1f\x7f"]}}
    assert to_json(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_light_modules_agree_with_the_models_on_the_statuses() -> None:
    """documents.py and client.py keep their own copy so they need not import pydantic."""
    from valhalla_status import client, documents, models

    assert documents.STATUSES == client.STATUSES == models.STATUSES


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


@given(_JSON_VALUES)
def test_to_json_writes_json_dumps_text_for_any_json_without_floats(value: Any) -> None:
    assert to_json(value) == json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_to_json_writes_every_float_so_that_it_reads_back_the_same(value: float) -> None:
    assert json.loads(to_json({"x": value})) == {"x": value}
