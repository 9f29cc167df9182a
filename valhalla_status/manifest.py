"""Reading and writing the manifest file: safe YAML in, canonical YAML out, atomic and locked.

Loading parses the YAML event stream itself (libyaml's C parser when present), so duplicate
keys, anchors, aliases and tags are refused before anything is constructed. Validation errors
are mapped back to line numbers through the composed node tree, and all are reported at once.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import secrets
import stat
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ManifestError, ValhallaError
from .files import NotRegularFileError, open_regular
from .layout import EMPTY as EMPTY_HISTORY
from .layout import (
    ENTRY_NAME,
    EXAMPLE_NAME,
    MAX_ENTRY_BYTES,
    History,
    digest,
    fsync_folder,
    history_dir,
    history_shown,
    read_state,
    settle,
    write_pending,
)
from .locking import lock_path as lock_path
from .locking import manifest_lock as manifest_lock
from .locking import real_file
from .models import (
    ACTIONS,
    FORBIDDEN_CHAR,
    FORBIDDEN_CHAR_MULTILINE,
    MAX_PACKS,
    PACK_ID_PATTERN,
    SEMVER_PATTERN,
    STATUSES,
    HistoryEntry,
    Manifest,
    cross_field_problems,
)
from .text import for_terminal

MAX_FILE_BYTES = 32 * 1024 * 1024
HEADER = (
    "# Valhalla status manifest: the source of truth for the platform's status.\n"
    "# Change it with `valhalla-status` (see README.md);\n"
    "# after a hand edit, run `valhalla-status fmt`.\n"
)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Always PyYAML's own emitter: the canonical text must not depend on whether libyaml is there
# (libyaml's escapes characters beyond U+FFFF, e.g. emoji, and adds '...' after a '|+' scalar).
_Dumper: Any = yaml.SafeDumper
_CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})(?: |$)", re.MULTILINE)
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """``('packs', 2, 'status')`` -> ``packs[2].status``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _problem(path: str, line: int | None, loc: Loc, message: str) -> str:
    where = f"{path}:{line}" if line else path
    field = format_loc(loc)
    text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
    # A key or value from the file may hold line breaks or terminal escapes: show them escaped,
    # so each problem stays one line and nothing in the file can drive the terminal.
    return for_terminal(text)


# --- reading -------------------------------------------------------------------------------


def read_manifest_text(path: str | os.PathLike[str]) -> str:
    """The manifest's text, after the checks that come before parsing (size, UTF-8, markers)."""
    return decode_manifest_bytes(read_manifest_file(path), os.fspath(path))


def read_manifest_file(path: str | os.PathLike[str]) -> bytes:
    """The main file's bytes, after the checks before reading.

    Only a regular file is read (a FIFO or a device is refused, never waited on), and the size
    limit counts the bytes actually read.
    """
    shown = for_terminal(os.fspath(path))
    try:
        fd = open_regular(path)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                size = os.fstat(handle.fileno()).st_size
                if size > MAX_FILE_BYTES:
                    megabytes = f"{size / 2**20:.1f} MiB"
                    raise ManifestError(
                        [f"{shown}: file is {megabytes}; the limit is 32 MiB (not parsed)"]
                    )
    except NotRegularFileError as exc:
        raise ManifestError([f"{shown}: is {exc.kind}, not a manifest file"]) from None
    except FileNotFoundError:
        raise ManifestError(
            [f"{shown}: no manifest here; run `valhalla-status init` to create one"]
        ) from None
    except PermissionError:
        raise ManifestError([f"{shown}: cannot read the file: permission denied"]) from None
    except OSError as exc:
        raise ManifestError([f"{shown}: cannot read the file: {exc.strerror}"]) from None
    return raw


def decode_manifest_bytes(raw: bytes, shown: str) -> str:
    """Manifest bytes (from a file or a git revision) as text: size, UTF-8, conflict markers."""
    if len(raw) > MAX_FILE_BYTES:
        raise ManifestError([f"{shown}: file is over the 32 MiB limit (not parsed)"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError(
            [
                f"{shown}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{column}); save the file as UTF-8"
            ]
        ) from None
    text = text.removeprefix("\ufeff")
    marker = _CONFLICT_MARKER.search(text)
    if marker:
        line = text.count("\n", 0, marker.start()) + 1
        raise ManifestError(
            [
                f"{shown}:{line}: merge-conflict marker '{marker.group(1)}'; "
                "resolve the conflict first"
            ]
        )
    return text


def _scalar(event: Any) -> Any:
    if not event.implicit[0]:  # quoted or block: always a string
        return event.value
    tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, (True, False))
    if tag == _TAG + "str" or tag == _TAG + "timestamp":
        return event.value  # timestamps are validated as strings by the model
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        # Only true/false are booleans (YAML 1.2): `yes`, `no`, `on` and `off` stay text, so a
        # name like "No" is a name, and backend_complete must say true or false.
        lowered = event.value.lower()
        return lowered == "true" if lowered in ("true", "false") else event.value
    if tag in (_TAG + "int", _TAG + "float"):
        try:
            return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, event.value))
        except ValueError:  # an integer of more than 4,300 digits
            raise yaml.MarkedYAMLError(
                problem=f"number too long ({len(event.value):,} characters)",
                problem_mark=event.start_mark,
            ) from None
    return event.value  # '<<', '=' and the like: plain text here


class _Lines:
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


def _construct(text: str, shown: str, lines: _Lines | None = None) -> Any:
    """Build plain data from the YAML events, refusing what a manifest has no use for.

    ``lines``, when given, collects where everything was (see :class:`_Lines`). The packs are
    counted as they come: past the limit, reading stops.
    """
    problems: list[str] = []
    # Each frame: [container, loc, pending key or None, {key: line} for mappings, start line]
    stack: list[list[Any]] = []
    root: Any = None
    documents = 0
    close = lines.close if lines is not None else None
    items = lines.items if lines is not None else {}
    values = lines.values if lines is not None else {}

    def place(value: Any, line: int, scalar: bool = True) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        frame = stack[-1]
        container = frame[0]
        if isinstance(container, list):
            if len(container) >= MAX_PACKS and frame[1] == ("packs",):
                raise ManifestError(
                    [
                        _problem(
                            shown,
                            line,
                            ("packs",),
                            f"has more than {MAX_PACKS:,} packs; the limit is {MAX_PACKS:,} "
                            "(not read further)",
                        )
                    ]
                )
            if scalar:
                items[id(container), len(container)] = line
            container.append(value)
            return
        key = frame[2]
        if key is _NO_KEY:  # this value is a key
            if not isinstance(value, str):
                problems.append(_problem(shown, line, frame[1], f"key {value!r} is not a string"))
                value = repr(value)
            if value in frame[3]:
                problems.append(
                    _problem(
                        shown,
                        line,
                        (*frame[1], value),
                        f"duplicate key '{value}' (first at line {frame[3][value]})",
                    )
                )
            else:
                frame[3][value] = line
            frame[2] = value
        else:
            container[key] = value
            frame[2] = _NO_KEY
            if scalar and line != frame[3].get(key):
                values[id(container), key] = line

    def child_loc() -> Loc:
        if not stack:
            return ()
        frame = stack[-1]
        if isinstance(frame[0], list):
            return (*frame[1], len(frame[0]))
        return (*frame[1], frame[2]) if frame[2] is not _NO_KEY else frame[1]

    try:
        event: Any
        for event in yaml.parse(text, Loader=_Loader):
            kind = type(event)
            if (
                kind is yaml.ScalarEvent
                or kind is yaml.MappingStartEvent
                or kind is yaml.SequenceStartEvent
            ):
                line = event.start_mark.line + 1
                if event.anchor is not None:
                    problems.append(
                        _problem(
                            shown,
                            line,
                            child_loc(),
                            f"YAML anchor '&{event.anchor}' is not allowed",
                        )
                    )
                if event.tag is not None:
                    problems.append(
                        _problem(shown, line, child_loc(), f"YAML tag '{event.tag}' is not allowed")
                    )
                if kind is yaml.ScalarEvent:
                    place(_scalar(event), line)
                else:
                    loc = child_loc()
                    container: Any = {} if kind is yaml.MappingStartEvent else []
                    place(container, line, scalar=False)
                    stack.append([container, loc, _NO_KEY, {}, line])
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if close is not None:
                    close(frame[0], frame[4], frame[3])
            elif kind is yaml.AliasEvent:
                line = event.start_mark.line + 1
                problems.append(
                    _problem(
                        shown, line, child_loc(), f"YAML alias '*{event.anchor}' is not allowed"
                    )
                )
                place(None, line)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    problems.append(
                        _problem(
                            shown, event.start_mark.line + 1, (), "a manifest is one YAML document"
                        )
                    )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = min(mark.line + 1, text.count("\n") + 1) if mark else None  # EOF: last line
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        problems.append(_problem(shown, line, (), f"YAML syntax error: {what}"))
    except yaml.reader.ReaderError as exc:  # a character YAML forbids; libyaml counts bytes
        if _Loader is yaml.SafeLoader:
            line = text.count("\n", 0, exc.position) + 1
        else:
            line = text.encode("utf-8").count(b"\n", 0, exc.position) + 1
        problems.append(_problem(shown, line, (), f"YAML syntax error: {str(exc).splitlines()[0]}"))
    except yaml.YAMLError as exc:
        problems.append(_problem(shown, None, (), f"YAML error: {exc}"))
    if problems:
        raise ManifestError(problems)
    return root


class _NoKey:
    __slots__ = ()


_NO_KEY = _NoKey()


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a YAML boolean)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a YAML {type(value).__name__.replace('int', 'integer')})"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _text_problem(value: str) -> str:
    if not value.strip():
        return "must not be blank"
    bad = FORBIDDEN_CHAR_MULTILINE.search(value)
    if bad is None:
        found = FORBIDDEN_CHAR.search(value)
        assert found is not None
        if found.group() == "\n":
            return "must be one line (only notes may span lines)"
        bad = found
    return f"contains {_character_kind(bad.group())} U+{ord(bad.group()):04X}, which is not allowed"


def _character_kind(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "the lone surrogate"
    if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
        return "the noncharacter"
    return "the control character"


def error_message(error: Any, loc: Loc) -> str:
    kind = error["type"]
    value = error.get("input")
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "extra_forbidden":
        known = _known_fields(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown field '{loc[-1]}'{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        if field == "status":
            return f"{_describe(value)} is not one of {', '.join(STATUSES)}"
        if field == "action":
            return f"{_describe(value)} is not one of {', '.join(ACTIONS)}"
        if field == "schema_version":
            return f"unsupported schema_version {_describe(value)}; this tool reads 1 and 2"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern == PACK_ID_PATTERN:
            if isinstance(value, str) and re.fullmatch(PACK_ID_PATTERN, value.upper()):
                return f"{value!r} must be upper-case in the manifest ('{value.upper()}')"
            return (
                f"{value!r} is not a valid pack id: 1–32 characters of A-Z, 0-9, _ and -, "
                "starting with a letter"
            )
        if pattern == SEMVER_PATTERN:
            return f"{value!r} is not a SemVer 2.0.0 version (like 1.2.3)"
        if field == "base_url":
            return f"{value!r} is not an absolute https URL"
        return _text_problem(value)
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return f"is {len(value):,} characters; the limit is {limit:,}"
    if kind == "too_long" and field == "packs":
        return f"has {len(value):,} packs; the limit is {MAX_PACKS:,}"
    if kind in ("too_short", "too_long") and len(loc) > 1 and loc[-2] == "changes":
        return f"must be [old, new], not a list of {len(value)}"
    if kind == "string_unicode" and isinstance(value, str):
        return _text_problem(value)
    if kind == "string_type":
        hint = "; quote it" if isinstance(value, (int, float, bool)) else ""
        return f"must be a string, not {_describe(value)}{hint}"
    if kind == "bool_type":
        return f"must be true or false, not {_describe(value)}"
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping, not {_describe(value)}"
    if kind == "list_type":
        return f"must be a list, not {_describe(value)}"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _known_fields(loc: Loc) -> list[str]:
    from .models import HistoryEntry, Pack, SystemMetadata

    model: Any = Manifest
    for part in loc:
        if part == "system":
            model = SystemMetadata
        elif part == "packs":
            model = Pack
        elif part == "history":
            model = HistoryEntry
    return list(model.model_fields)


def _clean_loc(loc: tuple[Any, ...], data: Any = None) -> Loc:
    # pydantic adds validator tags (e.g. 'list[...]') to locations inside JsonValue; drop them.
    # A part that steps into ``data`` is a real key, kept whatever it looks like ('a[0]').
    kept: list[str | int] = []
    for part in loc:
        if (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        ):
            data = data[part]
            kept.append(part)
            continue
        data = None
        if isinstance(part, int) or ("[" not in part and "function-" not in part):
            kept.append(part)
    return tuple(kept)


def parse_manifest(
    text: str, path: str | os.PathLike[str] = "<manifest>", history: History | None = None
) -> Manifest:
    """Validate manifest text; raise ManifestError with every located problem.

    A schema_version 2 manifest takes its history (and updated_at) from ``history``, the
    files of its history folder (none given: no files).
    """
    shown = os.fspath(path)
    lines = _Lines()
    data = _construct(text, shown, lines)
    if data is None:
        raise ManifestError([f"{shown}: the manifest is empty; run `valhalla-status init`"])
    if not isinstance(data, dict):
        raise ManifestError([f"{shown}:1: the manifest must be a mapping, not {_describe(data)}"])
    if data.get("schema_version") == 2 and type(data["schema_version"]) is int:
        return _parse_layout_2(data, lines, shown, history or EMPTY_HISTORY)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _clean_loc(error["loc"], data)
            line = lines.line_of(data, loc)
            problems.append(_problem(shown, line, loc, error_message(error, loc)))
        raise ManifestError(problems) from None
    cross = cross_field_problems(manifest)
    if cross:
        raise ManifestError(
            [_problem(shown, lines.line_of(data, loc), loc, message) for loc, message in cross]
        )
    return manifest


def _validation_problems(
    exc: ValidationError, data: Any, located: Any, lines: _Lines, shown: str
) -> list[str]:
    """Located problems of ``data``; lines are looked up in ``located``, the data as read."""
    problems = []
    for error in exc.errors():
        loc = _clean_loc(error["loc"], data)
        problems.append(
            _problem(shown, lines.line_of(located, loc), loc, error_message(error, loc))
        )
    return problems


_ENTRIES: Any = None


def _entries_adapter() -> Any:
    global _ENTRIES
    if _ENTRIES is None:
        from pydantic import TypeAdapter

        _ENTRIES = TypeAdapter(list[HistoryEntry])
    return _ENTRIES


def parse_history(history: History, folder_shown: str) -> tuple[list[HistoryEntry], list[str]]:
    """The entries of a history folder, oldest first, and every located problem."""
    problems = [
        f"{folder_shown}/{name}: not a history entry file (names look like {EXAMPLE_NAME}); "
        "move it out of the folder"
        for name in history.unknown
    ]
    loaded: list[tuple[str, _Lines, Any]] = []
    for name in sorted(history.entries):
        shown = f"{folder_shown}/{name}"
        raw = history.entries[name]
        if len(raw) > MAX_ENTRY_BYTES:
            problems.append(f"{shown}: file is over the 1 MiB limit of a history entry")
            continue
        try:
            lines = _Lines()
            data = _construct(decode_manifest_bytes(raw, shown), shown, lines)
        except ManifestError as exc:
            problems += exc.problems
            continue
        if not isinstance(data, dict):
            problems.append(f"{shown}:1: a history entry must be a mapping, not {_describe(data)}")
            continue
        loaded.append((name, lines, data))
    try:
        entries = _entries_adapter().validate_python([data for _, _, data in loaded])
    except ValidationError as exc:
        by_index: dict[int, list[Any]] = {}
        for error in exc.errors():
            by_index.setdefault(int(error["loc"][0]), []).append(error)
        for index, errors in sorted(by_index.items()):
            name, lines, data = loaded[index]
            for error in errors:
                loc = _clean_loc(error["loc"][1:], data)
                message = error_message(error, ("history", 0, *loc))
                problems.append(
                    _problem(f"{folder_shown}/{name}", lines.line_of(data, loc), loc, message)
                )
        return [], problems
    order = sorted(
        range(len(loaded)),
        key=lambda i: (entries[i].at, int(loaded[i][0].split("-")[1]), loaded[i][0]),
    )
    return [entries[i] for i in order], problems


def _parse_layout_2(data: dict[str, Any], lines: _Lines, shown: str, history: History) -> Manifest:
    folder_shown = history_shown(shown)
    entries, problems = parse_history(history, folder_shown)
    if "history" in data:
        problems.append(
            _problem(
                shown,
                lines.line_of(data, ("history",)),
                ("history",),
                f"schema_version 2 keeps the history in {folder_shown}/, one file per change; "
                "remove it here",
            )
        )
    system = data.get("system")
    if isinstance(system, dict) and "updated_at" in system:
        loc: Loc = ("system", "updated_at")
        problems.append(
            _problem(
                shown,
                lines.line_of(data, loc),
                loc,
                "schema_version 2 takes updated_at from the newest history entry; remove it here",
            )
        )
    if not entries and not problems:
        problems.append(
            f"{shown}: no history entries in {folder_shown}/; schema_version 2 takes "
            "updated_at from the newest entry"
        )
    body = {k: v for k, v in data.items() if k != "history"}
    if isinstance(system, dict):
        newest = entries[-1].at if entries else datetime(2000, 1, 1, tzinfo=timezone.utc)
        body["system"] = {**system, "updated_at": newest}
    try:
        manifest = Manifest.model_validate(body)
    except ValidationError as exc:
        problems += _validation_problems(exc, body, data, lines, shown)
        raise ManifestError(problems) from None
    if problems:
        raise ManifestError(problems)
    cross = cross_field_problems(manifest)
    if cross:
        raise ManifestError(
            [_problem(shown, lines.line_of(data, loc), loc, message) for loc, message in cross]
        )
    return manifest.model_copy(update={"history": entries})


def read_manifest(path: str | os.PathLike[str]) -> tuple[bytes, History]:
    """The main file's bytes and its history files, as one consistent state."""
    return read_state(path, lambda: read_manifest_file(path))


def parse_state(path: str | os.PathLike[str], main: bytes, history: History) -> Manifest:
    """The manifest from a state read with :func:`read_manifest`."""
    return parse_manifest(decode_manifest_bytes(main, os.fspath(path)), path, history)


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read, parse and validate the manifest at ``path`` (and its history folder)."""
    return parse_state(path, *read_manifest(path))


# --- writing -------------------------------------------------------------------------------


class _FlowList(list[Any]):
    """A list the dumper writes in flow style: ``[old, new]``."""


class _CanonicalDumper(_Dumper):
    pass


def _represent_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    if "\x85" in value:  # PyYAML writes NEL raw in other styles and reads it back as a break
        style = '"'
    return dumper.represent_scalar(_TAG + "str", value, style=style)


def _represent_flow(dumper: Any, value: list[Any]) -> Any:
    return dumper.represent_sequence(_TAG + "seq", value, flow_style=True)


_CanonicalDumper.add_representer(str, _represent_str)
_CanonicalDumper.add_representer(_FlowList, _represent_flow)


def manifest_data(manifest: Manifest) -> dict[str, Any]:
    """The manifest as plain JSON-compatible data in canonical key order (schema_version 1)."""
    data = manifest.model_dump(mode="json")
    if data["system"]["base_url"] is None:
        del data["system"]["base_url"]
    for pack in data["packs"]:
        if pack["notes"] is None:
            del pack["notes"]
    return data


# The order of schema_version 2: fields that change independently never sit on touching lines
# (see docs/LAYOUT.md).
SYSTEM_ORDER = (
    "name",
    "version",
    "description",
    "base_url",
    "backend_complete",
    "completed_at",
    "extra",
    "notes",
)
PACK_ORDER = ("id", "status", "notes", "name", "group")


def main_data(manifest: Manifest) -> dict[str, Any]:
    """The main file of a schema_version 2 manifest as plain data, in canonical order."""
    system = manifest.system.model_dump(mode="json")
    packs = []
    for pack in manifest.packs:
        values = pack.model_dump(mode="json")
        packs.append({k: values[k] for k in PACK_ORDER if values[k] is not None})
    return {
        "schema_version": 2,
        "system": {k: system[k] for k in SYSTEM_ORDER if k != "base_url" or system[k] is not None},
        "packs": packs,
    }


def _yaml(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_CanonicalDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        indent=2,
        width=2**30,
    )


def dump_entry(entry: HistoryEntry) -> str:
    """The canonical text of one history entry file."""
    data = entry.model_dump(mode="json")
    data["changes"] = {k: _FlowList(v) for k, v in data["changes"].items()}
    return _yaml(data)


def entry_file_name(entry: HistoryEntry, seq: int, text: str | None = None) -> str:
    """``<at>-<seq>-<hash>.yaml``: identical entries at the same place get the same name."""
    text = dump_entry(entry) if text is None else text
    at = entry.at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{at}-{seq:06d}-{digest(text.encode())[:8]}.yaml"


def dump_manifest(manifest: Manifest) -> str:
    """The canonical text of a manifest's main file, header comment included.

    schema_version 1 holds everything; schema_version 2 holds no history and no updated_at.
    """
    if manifest.schema_version == 2:
        return HEADER + _yaml(main_data(manifest))
    data = manifest_data(manifest)
    for entry in data["history"]:
        entry["changes"] = {k: _FlowList(v) for k, v in entry["changes"].items()}
    return HEADER + _yaml(data)


def validate_manifest(manifest: Manifest, shown: str = "<manifest>") -> Manifest:
    """Re-validate a manifest built in memory; raise ManifestError (no line numbers) if invalid."""
    data = manifest_data(manifest)
    try:
        checked = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _clean_loc(error["loc"], data)
            problems.append(_problem(shown, None, loc, error_message(error, loc)))
        raise ManifestError(problems) from None
    cross = cross_field_problems(checked)
    if cross:
        raise ManifestError([_problem(shown, None, loc, message) for loc, message in cross])
    return checked


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file beside it, fsync, ``os.replace``."""
    target = real_file(path)
    folder = target.parent
    temp = folder / f"{_temp_prefix(target)}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        mode = os.stat(target).st_mode & 0o777
    except OSError:
        mode = 0o644
    else:
        refuse_unwritable(path, mode)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise ValhallaError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None


def refuse_unwritable(path: str | os.PathLike[str], mode: int) -> None:
    """Refuse to replace a file its owner may not write (or, not being root, we may not).

    Replacing a file needs only the folder's permission, so without this a read-only manifest
    would be replaced all the same; root passes every permission check, so the owner's write
    bit is what is asked.
    """
    if not mode & stat.S_IWUSR:
        raise ValhallaError(
            f"{os.fspath(path)} is read-only (mode {mode:04o}); not replacing it "
            "(make it writable with `chmod u+w` to change it)"
        )
    if os.geteuid() != 0 and not os.access(real_file(path), os.W_OK):
        raise ValhallaError(
            f"{os.fspath(path)} is not writable by you (mode {mode:04o}); not replacing it"
        )


def remove_stale_temp_files(path: str | os.PathLike[str]) -> None:
    """Remove temp files a killed writer left beside ``path`` (call with the lock held)."""
    target = real_file(path)
    prefix = _temp_prefix(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix):
            (target.parent / name).unlink(missing_ok=True)


def _existing_entries(folder: Path) -> dict[str, bytes]:
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {n: (folder / n).read_bytes() for n in names if ENTRY_NAME.fullmatch(n)}


def _entry_is_named_right(name: str, text: str) -> bool:
    match = ENTRY_NAME.fullmatch(name)
    assert match is not None
    return digest(text.encode())[:8] == match.group(3)


def plan_history(
    manifest: Manifest, existing: dict[str, bytes]
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The history files to write (name, bytes) and to remove, for ``manifest``'s history.

    A file already there in canonical form, under a name that fits its content, is kept; the
    entries with none are written, named after their place in the history.
    """
    kept: dict[bytes, list[str]] = {}
    for name, raw in sorted(existing.items()):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        match = ENTRY_NAME.fullmatch(name)
        assert match is not None
        if _entry_is_named_right(name, text):
            kept.setdefault(raw, []).append(name)
    keep: set[str] = set()
    write: list[tuple[str, bytes]] = []
    for seq, entry in enumerate(manifest.history):
        text = dump_entry(entry)
        raw = text.encode()
        at = entry.at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        same = [n for n in kept.get(raw, []) if n.startswith(at) and n not in keep]
        if same:
            keep.add(same[0])
            continue
        write.append((entry_file_name(entry, seq, text), raw))
    written = {name for name, _ in write}
    remove = [name for name in existing if name not in keep and name not in written]
    return write, remove


def write_manifest(path: str | os.PathLike[str], manifest: Manifest) -> bool:
    """Validate and write ``manifest`` in canonical form; False when nothing changed.

    The caller holds the lock (see :func:`manifest_lock`). schema_version 2: each new history
    entry is first written as a pending file named after the hash of the new main file, then
    the main file is replaced, then the pending file is renamed (see :mod:`.layout`).
    """
    checked = validate_manifest(manifest, os.fspath(path))
    data = dump_manifest(checked).encode("utf-8")
    remove_stale_temp_files(path)
    try:
        with open(path, "rb") as handle:
            unchanged = handle.read(len(data) + 1) == data
    except OSError:
        unchanged = False
    if checked.schema_version == 1:
        if unchanged:
            return False
        atomic_write(path, data)
        return True
    folder = history_dir(path)
    try:
        settle(path)
        write, remove = plan_history(checked, _existing_entries(folder))
    except OSError as exc:
        raise ValhallaError(f"cannot write {history_dir(path)}: {exc.strerror or exc}") from None
    if unchanged and not write and not remove:
        return False
    try:
        folder.mkdir(exist_ok=True)
        main_hash = digest(data)
        pending = [
            (write_pending(folder, main_hash, name, raw), folder / name) for name, raw in write
        ]
        fsync_folder(folder)
        atomic_write(path, data)
        for source, final in pending:
            os.replace(source, final)
        for name in remove:
            (folder / name).unlink(missing_ok=True)
        fsync_folder(folder)
    except (OSError, ValhallaError) as exc:
        # Keeps the entries if the main file was replaced after all, else removes them.
        with contextlib.suppress(OSError):
            settle(path)
        if isinstance(exc, ValhallaError):
            raise
        raise ValhallaError(f"cannot write {history_dir(path)}: {exc.strerror or exc}") from None
    return True


def fail_before_first_lock(path: str | os.PathLike[str], attempt: Callable[[], object]) -> None:
    """Raise, before any lock is taken, what a command on this manifest is going to raise.

    Taking the lock makes a lock file beside the manifest, which stays. A command that fails
    (a missing or invalid manifest, a refused change) must leave the folder as it found it, so
    while there is no lock file yet, ``attempt`` runs unlocked first.
    """
    if not os.path.lexists(path):
        read_manifest_text(path)  # raises the "run `valhalla-status init`" error
    if not os.path.lexists(lock_path(path)):
        attempt()


def update_manifest(
    path: str | os.PathLike[str],
    change: Callable[[Manifest], Manifest | None],
    rehearse: Callable[[Manifest], object] | None = None,
) -> tuple[Manifest, Manifest | None]:
    """Under the lock: re-read, apply ``change``, validate, write.

    ``change`` returns the new manifest, or None for no change (nothing is written).
    Returns ``(old, new)``; ``new`` is None when nothing changed. ``rehearse`` (default:
    ``change``) is what runs unlocked before the first lock (see fail_before_first_lock).
    """
    fail_before_first_lock(path, lambda: (rehearse or change)(load_manifest(path)))
    with manifest_lock(path):
        _settle(path)
        old = load_manifest(path)
        new = change(old)
        if new is None:
            return old, None
        write_manifest(path, new)
        return old, new


def _settle(path: str | os.PathLike[str]) -> None:
    try:
        settle(path)
    except OSError as exc:
        raise ValhallaError(f"cannot tidy {history_dir(path)}: {exc.strerror or exc}") from None


def is_canonical(path: str | os.PathLike[str], manifest: Manifest, main: bytes) -> bool:
    """Whether the files are exactly what :func:`write_manifest` writes for ``manifest``."""
    if dump_manifest(manifest).encode() != main:
        return False
    if manifest.schema_version == 1:
        return True
    try:
        existing = _existing_entries(history_dir(path))
    except OSError:
        return False
    write, remove = plan_history(manifest, existing)
    return not write and not remove


def format_manifest_file(path: str | os.PathLike[str], *, check: bool = False) -> bool:
    """Rewrite the files in canonical form; True when they were not canonical.

    With ``check`` nothing is written. Compared as bytes: the text read has lost a byte-order
    mark, which is not canonical.
    """
    if check:
        main, history = read_manifest(path)
        return not is_canonical(path, parse_state(path, main, history), main)
    fail_before_first_lock(path, lambda: load_manifest(path))
    with manifest_lock(path):
        _settle(path)
        main, history = read_manifest(path)
        manifest = parse_state(path, main, history)
        if is_canonical(path, manifest, main):
            return False
        write_manifest(path, manifest)
        return True


def hand_comments(path: str | os.PathLike[str]) -> list[str]:
    """One warning per comment typed into the main file: the next write drops it."""
    try:
        text = read_manifest_text(path)
    except ManifestError:
        return []
    body = text.removeprefix(HEADER)
    if "#" not in body:
        return []
    first = text.count("\n", 0, len(text) - len(body))  # lines of the header
    # Where the scalars are, as (line, column) pairs: '#' inside a value is no comment.
    spans: list[tuple[tuple[int, int], tuple[int, int]]] = []
    try:
        for event in yaml.parse(body, Loader=_Loader):
            if isinstance(event, yaml.ScalarEvent) and event.start_mark and event.end_mark:
                start, end = event.start_mark, event.end_mark
                spans.append(((start.line, start.column), (end.line, end.column)))
    except yaml.YAMLError:
        return []
    warnings = []
    shown = os.fspath(path)
    for number, line in enumerate(body.split("\n")):
        for match in re.finditer(r"(?:^|(?<=[ \t]))#", line):
            at = (number, match.start())
            if not any(start <= at < end for start, end in spans):
                warnings.append(
                    f"{shown}:{first + number + 1}: warning: this comment is dropped by the next "
                    "write; record why with --notes (e.g. `pack set ID --notes TEXT`, "
                    "`set-notes TEXT`)"
                )
                break
    return warnings
