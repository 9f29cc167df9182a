"""The one escaping rule for text from outside shown on a terminal.

Text the tool did not write itself (fields of a ``status.json``, HTTP reason phrases, history
values and notes, file names, keys and values quoted in error lines) may hold characters that
drive a terminal or hide what is shown: C0 controls (ESC starts an escape sequence; a newline
starts a fake line), DEL, C1 controls (U+009B is a one-character CSI), bidi overrides, isolates
and marks (which reorder what follows), and other invisible format characters. Every such
character is shown as a visible escape (``\\x1b``, ``\\u202e``, ``\\n``), so what a person reads
is what is there.

JSON text gets the same rule in its own form (:func:`for_json`): the encoders escape only C0
controls, so every other character this rule escapes is written as a ``\\uXXXX`` escape, which
is still exact JSON with the same meaning.

Standard library only (the client and ``check`` import it).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

# Zero-width (non-)joiners shape scripts and emoji sequences; they cannot reorder or hide text.
_KEPT = frozenset("\u200c\u200d")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Categories escaped: Cc (C0, DEL, C1), Cf (bidi controls, zero-width and other format
# characters), Cs (lone surrogates, from undecodable file names), Zl and Zp (line breaks).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Unicode's noncharacters, never meant for interchange: U+FDD0-U+FDEF and the last two code
# points of every plane (U+FFFE, U+FFFF, U+1FFFE, ... U+10FFFF), as the inside of a regular
# expression's character class. The planes beyond the first are written as the characters
# themselves, which every regular-expression engine (Python's, pydantic's) reads alike.
NONCHARACTERS = r"\ufdd0-\ufdef\ufffe\uffff" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17)
)
_NONCHARACTER = re.compile(f"[{NONCHARACTERS}]")


def is_noncharacter(char: str) -> bool:
    """Whether ``char`` is one of Unicode's noncharacters."""
    return _NONCHARACTER.fullmatch(char) is not None


def _needs_escape(char: str) -> bool:
    return char not in _KEPT and unicodedata.category(char) in _ESCAPED_CATEGORIES


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def for_terminal(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control, bidi and other format character shown as an escape.

    A newline is escaped too (one line in, one line out), unless ``multiline``: then each line
    is escaped on its own and the line breaks ``\\n`` are kept.
    """
    if multiline:
        return "\n".join(for_terminal(line) for line in text.split("\n"))
    return "".join(_escape(c) if _needs_escape(c) else c for c in text)


# The characters ``_needs_escape`` accepts beyond C0 (which JSON escapes itself): every Cc, Cf,
# Zl and Zp character, the surrogates, and the few unassigned code points between them.
# ``tests/test_outside_text.py`` checks them against the running Python's Unicode data.
_CANDIDATE = re.compile(
    "[\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001345f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if not _needs_escape(char):
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the first plane JSON writes a surrogate pair
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def for_json(text: str) -> str:
    """JSON ``text`` with every character :func:`for_terminal` escapes written as a JSON escape.

    Such characters can only stand inside JSON strings, where ``\\uXXXX`` means the same
    character: the text decodes to the same value. Text without any is returned as it is.
    """
    if text.isascii() and "\x7f" not in text:  # all the others are beyond ASCII
        return text
    return _CANDIDATE.sub(_json_escape, text)


def json_text(document: Any, default: Callable[[Any], Any] | None = None) -> str:
    """The one JSON text form: UTF-8, 2-space indent, keys in the order built, a final newline,
    and the terminal's escaping rule in JSON's form (:func:`for_json`). ``documents.to_json``
    writes the same text with a faster encoder; results that are no published document
    (``check --json``, ``diff --format json``) are written here, without loading it.

    ``default``: what an object of another type is written as (``json.dumps``' hook).
    ValueError for NaN or an infinity (no document holds one)."""
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=default)
    return for_json(text) + "\n"


__all__ = ["for_json", "for_terminal", "json_text"]
