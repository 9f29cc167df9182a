"""Strict YAML reading: plain data from the event stream, and where each part of it was.

The YAML event stream is read directly (libyaml's C parser when present), so duplicate keys,
anchors, aliases and tags are refused before anything is constructed, and all such problems
are reported at once. While constructing, a :class:`LineMap` keeps the line of every part, so a
validation error found later is located without parsing the file again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from ..errors import ManifestError
from ..models import MAX_PACKS
from ..rules.formats import quoted
from ..rules.text import for_terminal

Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# YAML also ends a line at NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR and a lone CR; editors, git
# and grep count lines by LF only, and so do the messages.
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_OTHER_BREAK = re.compile("[\x85\u2028\u2029]|\r(?!\n)")


def _shown_lines(text: str) -> Callable[[int], int]:
    """YAML's line number of a place in ``text`` (from 0) -> its line as an editor shows it
    (from 1)."""
    if not _OTHER_BREAK.search(text):
        return lambda line: line + 1
    shown = [1]
    for match in _YAML_BREAK.finditer(text):
        shown.append(shown[-1] + ("\n" in match.group()))
    return lambda line: shown[min(line, len(shown) - 1)]


_RESOLVER: Any = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
TAG = "tag:yaml.org,2002:"
_STARTS = (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)

Loc = tuple[str | int, ...]


_LOC_SHOWN = 8  # parts of a deeper location shown: its first six and its last two


def format_loc(loc: Loc) -> str:
    """``('packs', 2, 'status')`` -> ``packs[2].status``; a deeper location than
    :data:`_LOC_SHOWN` parts with the middle left out (``…``)."""
    text = ""
    for index, part in enumerate(loc):
        if len(loc) > _LOC_SHOWN and index == _LOC_SHOWN - 2:
            text += f"…({len(loc) - _LOC_SHOWN} more)"
        if len(loc) > _LOC_SHOWN and _LOC_SHOWN - 2 <= index < len(loc) - 2:
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problem(path: str, line: int | None, loc: Loc, message: str) -> str:
    """One located problem: ``file:line: field.path: message`` (line and field where known)."""
    where = f"{path}:{line}" if line else path
    field = format_loc(loc)
    text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
    # A key or value from the file may hold line breaks or terminal escapes: show them escaped,
    # so each problem stays one line and nothing in the file can drive the terminal.
    return for_terminal(text)


def _scalar(event: Any) -> Any:
    if not event.implicit[0]:  # quoted or block: always a string
        return event.value
    tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, (True, False))
    if tag == TAG + "str" or tag == TAG + "timestamp":
        return event.value  # timestamps are validated as strings by the model
    if tag == TAG + "null":
        return None
    if tag == TAG + "bool":
        # Only true/false are booleans (YAML 1.2): `yes`, `no`, `on` and `off` stay text, so a
        # name like "No" is a name, and backend_complete must say true or false.
        lowered = event.value.lower()
        return lowered == "true" if lowered in ("true", "false") else event.value
    if tag in (TAG + "int", TAG + "float"):
        try:
            return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, event.value))
        except ValueError:  # an integer of more than 4,300 digits
            raise yaml.MarkedYAMLError(
                problem=f"number too long ({len(event.value):,} characters)",
                problem_mark=event.start_mark,
            ) from None
    return event.value  # '<<', '=' and the like: plain text here


class LineMap:
    """Where each part of the constructed data was in the file, kept while constructing it.

    As each container closes, its start line is kept, and for a mapping its keys' lines, in
    the order of its keys, as small offsets from the start when they fit a byte (they nearly
    always do); the few scalars whose line is not their key's are noted apart. Only when a
    problem must be located are these indexed: a valid manifest pays little for them, and a
    broken one is never parsed a second time.
    """

    def __init__(self) -> None:
        # (container, start line, its keys' lines: bytes of offsets, a tuple of lines, or None)
        self.closed: list[tuple[Any, int, bytes | tuple[int, ...] | None]] = []
        self.items: dict[tuple[int, int], int] = {}  # (id(list), index) -> a scalar item's line
        self.values: dict[tuple[int, str], int] = {}  # (id(mapping), key) -> a scalar's line
        self._index: dict[int, tuple[int, bytes | tuple[int, ...] | None]] | None = None

    def close(self, container: Any, start: int, keys: dict[str, int]) -> None:
        lines: bytes | tuple[int, ...] | None = None
        if keys:
            try:
                lines = bytes(line - start for line in keys.values())
            except ValueError:  # a key more than 255 lines below the start
                lines = tuple(keys.values())
        self.closed.append((container, start, lines))

    def _key_line(self, mapping: dict[str, Any], key: str) -> int:
        assert self._index is not None
        start, lines = self._index[id(mapping)]
        assert lines is not None
        at = lines[list(mapping).index(key)]
        return start + at if isinstance(lines, bytes) else at

    def line_of(self, data: Any, loc: Loc) -> int | None:
        """The line of the deepest part of ``loc`` that is in ``data``."""
        if self._index is None:
            self._index = {id(c): (start, lines) for c, start, lines in self.closed}
        if id(data) not in self._index:
            return None
        line = self._index[id(data)][0]
        node: Any = data
        owner: Any
        for part in loc:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                line = self._key_line(node, part)
                owner, node = node, node[part]
                if not isinstance(node, (dict, list)):
                    line = self.values.get((id(owner), part), line)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                owner, node = node, node[part]
                if isinstance(node, (dict, list)):
                    line = self._index[id(node)][0]
                else:
                    line = self.items.get((id(owner), part), line)
            else:
                break
        return line


class _NoKey:
    __slots__ = ()


_NO_KEY = _NoKey()


class _Builder:
    """Plain data from YAML events, refusing what a manifest has no use for.

    Each open container is a frame: ``[container, loc, pending key or _NO_KEY, {key: line}
    for mappings, start line]``. The packs are counted as they come: past the limit, reading
    stops.
    """

    def __init__(self, shown: str, lines: LineMap | None, line_of: Callable[[int], int]) -> None:
        self.shown = shown
        self.lines = lines
        self.line_of = line_of
        self.items = lines.items if lines is not None else {}
        self.values = lines.values if lines is not None else {}
        self.problems: list[str] = []
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.documents = 0

    def refuse(self, line: int | None, loc: Loc, message: str) -> None:
        self.problems.append(problem(self.shown, line, loc, message))

    def feed(self, text: str) -> None:
        event: Any
        for event in yaml.parse(text, Loader=Loader):
            kind = type(event)
            if kind in _STARTS:
                self.start(event, kind)
            elif kind in _ENDS:
                frame = self.stack.pop()
                if self.lines is not None:
                    self.lines.close(frame[0], frame[4], frame[3])
            elif kind is yaml.AliasEvent:
                line = self.line_of(event.start_mark.line)
                self.refuse(line, self.child_loc(), f"YAML alias '*{event.anchor}' is not allowed")
                self.place(None, line)
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    line = self.line_of(event.start_mark.line)
                    self.refuse(line, (), "a manifest is one YAML document")

    def start(self, event: Any, kind: type) -> None:
        line = self.line_of(event.start_mark.line)
        if event.anchor is not None:
            self.refuse(line, self.child_loc(), f"YAML anchor '&{event.anchor}' is not allowed")
        if event.tag is not None:
            self.refuse(line, self.child_loc(), f"YAML tag '{event.tag}' is not allowed")
        if kind is yaml.ScalarEvent:
            self.place(_scalar(event), line)
            return
        loc = self.child_loc()
        container: Any = {} if kind is yaml.MappingStartEvent else []
        self.place(container, line, scalar=False)
        self.stack.append([container, loc, _NO_KEY, {}, line])

    def child_loc(self) -> Loc:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame[0], list):
            return (*frame[1], len(frame[0]))
        return (*frame[1], frame[2]) if frame[2] is not _NO_KEY else frame[1]

    def place(self, value: Any, line: int, scalar: bool = True) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame[0], list):
            self.append(frame, value, line, scalar)
        elif frame[2] is _NO_KEY:
            self.key(frame, value, line)
        else:
            key = frame[2]
            frame[0][key] = value
            frame[2] = _NO_KEY
            if scalar and line != frame[3].get(key):
                self.values[id(frame[0]), key] = line

    def append(self, frame: list[Any], value: Any, line: int, scalar: bool) -> None:
        container = frame[0]
        if len(container) >= MAX_PACKS and frame[1] == ("packs",):
            message = f"has more than {MAX_PACKS:,} packs; the limit is {MAX_PACKS:,}"
            raise ManifestError(
                [problem(self.shown, line, ("packs",), f"{message} (not read further)")]
            )
        if scalar:
            self.items[id(container), len(container)] = line
        container.append(value)

    def key(self, frame: list[Any], value: Any, line: int) -> None:
        if not isinstance(value, str):
            if isinstance(value, (list, dict)):  # seen as it starts: empty, its items to come
                kind = "a list" if isinstance(value, list) else "a mapping"
                self.refuse(line, frame[1], f"a key is {kind}, not a string")
            else:
                self.refuse(line, frame[1], f"key {quoted(value)} is not a string")
            value = f"\0{len(frame[3])}"  # a name no other key has: refused once, no duplicate
        first = frame[3].get(value)
        if first is not None:
            self.refuse(
                line, (*frame[1], value), f"duplicate key '{value}' (first at line {first})"
            )
        else:
            frame[3][value] = line
        frame[2] = value


def _syntax_problem(
    exc: yaml.YAMLError, text: str, shown: str, line_of: Callable[[int], int]
) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = min(line_of(mark.line), text.count("\n") + 1) if mark else None  # EOF: last line
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return problem(shown, line, (), f"YAML syntax error: {what}")
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML forbids; libyaml counts bytes
        if Loader is yaml.SafeLoader:
            line = text.count("\n", 0, exc.position) + 1
        else:
            line = text.encode("utf-8").count(b"\n", 0, exc.position) + 1
        return problem(shown, line, (), f"YAML syntax error: {str(exc).splitlines()[0]}")
    return problem(shown, None, (), f"YAML error: {exc}")


def construct(text: str, shown: str, lines: LineMap | None = None) -> Any:
    """Plain data from YAML text; ManifestError with every problem found.

    ``lines``, when given, collects where everything was (see :class:`LineMap`).
    """
    line_of = _shown_lines(text)
    builder = _Builder(shown, lines, line_of)
    try:
        builder.feed(text)
    except yaml.YAMLError as exc:
        builder.problems.append(_syntax_problem(exc, text, shown, line_of))
    if builder.problems:
        raise ManifestError(builder.problems)
    return builder.root
