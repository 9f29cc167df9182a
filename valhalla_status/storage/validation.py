"""pydantic's validation errors in the user's words, one located line each.

A field's own wording comes from its model's ``messages`` (see :mod:`valhalla_status.models`);
what every field shares (a missing field, a wrong type, a text too long) is worded here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from ..models import Manifest, Messages, describe, text_problem
from ..rules.formats import clip
from .yamlstrict import LineMap, Loc, problem


def _submodel(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def owner_of(model: type[BaseModel], loc: Loc) -> tuple[type[BaseModel], str]:
    """The model holding the deepest named field of ``loc`` (from ``model``), and that field."""
    field = ""
    for part in loc:
        if isinstance(part, int):
            continue
        if field:
            info = model.model_fields.get(field)
            inner = _submodel(info.annotation) if info is not None else None
            if inner is None:
                break
            model = inner
        field = part
    return model, field


def _type_message(kind: str, value: Any) -> str | None:
    if kind == "string_type":
        hint = "; quote it" if isinstance(value, (int, float, bool)) else ""
        return f"must be a string, not {describe(value)}{hint}"
    if kind == "bool_type":
        return f"must be true or false, not {describe(value)}"
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping, not {describe(value)}"
    if kind == "list_type":
        return f"must be a list, not {describe(value)}"
    return None


_GENERIC: dict[str, Callable[[Any, dict[str, Any]], str]] = {
    "missing": lambda value, ctx: "required field is missing",
    "recursion_depth_exceeded": lambda value, ctx: "nested too deeply to be read",
    "string_pattern_mismatch": lambda value, ctx: text_problem(value),
    "string_too_short": lambda value, ctx: "must not be empty",
    "string_too_long": lambda value, ctx: (
        f"is {len(value):,} characters; the limit is {ctx['max_length']:,}"
    ),
}


def error_message(error: Any, loc: Loc, model: type[BaseModel] = Manifest) -> str:
    """One pydantic error as the user reads it; ``loc`` is relative to ``model``."""
    kind = error["type"]
    value = error.get("input")
    owner, field = owner_of(model, loc)
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown field '{clip(str(loc[-1]))}'{hint}"
    messages: Messages = getattr(owner, "messages", {})
    own = messages.get((field, kind))
    if own is not None:
        return own(value)
    generic = _GENERIC.get(kind)
    if generic is not None:
        return generic(value, error.get("ctx", {}))
    if kind == "string_unicode" and isinstance(value, str):
        return text_problem(value)
    typed = _type_message(kind, value)
    if typed is not None:
        return typed
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


# The tags pydantic puts in a location inside a JsonValue for the kind of value it tried.
_JSON_TAGS = frozenset({"dict", "list", "str", "int", "float", "bool"})


def clean_loc(loc: tuple[Any, ...], data: Any = None) -> Loc:
    """``loc`` without the validator tags pydantic adds inside JsonValue (``list[...]``).

    A part that steps into ``data`` is a real key, kept whatever it looks like (``a[0]``).
    """
    kept: list[str | int] = []
    for part in loc:
        if (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        ):
            data = data[part]
            kept.append(part)
            continue
        if isinstance(part, str) and (part in _JSON_TAGS or "[" in part or "function-" in part):
            continue  # a validator's tag: the data it names is still where it was
        data = None
        kept.append(part)
    return tuple(kept)


def validation_problems(
    exc: ValidationError,
    data: Any,
    shown: str,
    lines: LineMap | None = None,
    located: Any = None,
    only: str | None = None,
) -> list[str]:
    """Every error of ``exc`` (raised validating ``data``) as a located problem; with
    ``only``, those of that top-level field.

    Lines are looked up in ``located`` (default: ``data``), the data as read from the file.
    """
    problems = []
    for error in exc.errors():
        if only is not None and error["loc"][:1] != (only,):
            continue
        loc = clean_loc(error["loc"], data)
        line = (
            lines.line_of(data if located is None else located, loc) if lines is not None else None
        )
        problems.append(problem(shown, line, loc, error_message(error, loc)))
    return problems
