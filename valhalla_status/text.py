"""The one escaping rule for text from outside shown on a terminal.

Text the tool did not write itself (fields of a ``status.json``, HTTP reason phrases, history
values and notes, file names, keys and values quoted in error lines) may hold characters that
drive a terminal or hide what is shown: C0 controls (ESC starts an escape sequence; a newline
starts a fake line), DEL, C1 controls (U+009B is a one-character CSI), bidi overrides, isolates
and marks (which reorder what follows), and other invisible format characters. Every such
character is shown as a visible escape (``\\x1b``, ``\\u202e``, ``\\n``), so what a person reads
is what is there. JSON output is not passed through this: ``json.dumps`` escapes on its own.

Standard library only (the client and ``check`` import it).
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width (non-)joiners shape scripts and emoji sequences; they cannot reorder or hide text.
_KEPT = frozenset("\u200c\u200d")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Categories escaped: Cc (C0, DEL, C1), Cf (bidi controls, zero-width and other format
# characters), Cs (lone surrogates, from undecodable file names), Zl and Zp (line breaks).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# A quick test of whether a string can need escaping at all (ASCII printable never does).
_PLAIN = re.compile(r"[\x20-\x7e]*")


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
    if _PLAIN.fullmatch(text):
        return text
    if multiline:
        return "\n".join(for_terminal(line) for line in text.split("\n"))
    return "".join(_escape(c) if _needs_escape(c) else c for c in text)


__all__ = ["for_terminal"]
