"""The width of a badge's text, measured as shields.io measures it.

shields.io (its ``badge-maker``) measures text with anafanafo's table of Verdana 11 px advance
widths: ranges of code points, each with one width in pixels, covering Latin, Greek, Cyrillic
and more. A code point the table lacks counts as wide as "m"; control characters (U+0000 to
U+001F and U+007F) count nothing. The widths are added up in order as floating-point numbers,
truncated to whole pixels and rounded up to an odd number.

``verdana-11px.txt.gz`` is that table, from anafanafo 2.0.0's ``data/verdana-11px-normal.json``
(MIT licence, Copyright (c) 2018 Metabolize LLC; all rights to Verdana are owned by Microsoft
Corp.), one range a line as ``GAP LENGTH WIDTH``: the range starts ``GAP`` code points after the
previous one ends (the first after -1) and ends ``LENGTH`` code points after it starts; each
width is the table's own decimal text, so it reads back as the same double.
"""

from __future__ import annotations

import bisect
import functools
import gzip
from pathlib import Path

TABLE = Path(__file__).with_name("verdana-11px.txt.gz")


@functools.lru_cache(maxsize=1)
def _table() -> tuple[list[int], list[int], list[float]]:
    """The ranges' first and last code points and their widths, in order."""
    starts: list[int] = []
    ends: list[int] = []
    widths: list[float] = []
    previous = -1
    for line in gzip.decompress(TABLE.read_bytes()).decode("ascii").splitlines():
        gap, length, width = line.split()
        start = previous + 1 + int(gap)
        previous = start + int(length)
        starts.append(start)
        ends.append(previous)
        widths.append(float(width))
    return starts, ends, widths


def char_width(code: int) -> float | None:
    """The width of one code point in pixels; None if the table lacks it."""
    if code <= 31 or code == 127:
        return 0.0
    starts, ends, widths = _table()
    index = bisect.bisect_right(starts, code) - 1
    if index >= 0 and code <= ends[index]:
        return widths[index]
    return None


def text_width(text: str) -> int:
    """The width shields.io gives ``text`` on a badge, in whole pixels (an odd number)."""
    em = char_width(ord("m")) or 0.0
    total = 0.0
    for char in text:
        width = char_width(ord(char))
        total += em if width is None else width
    whole = int(total)
    return whole if whole % 2 else whole + 1
