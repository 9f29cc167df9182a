"""The manifest's files: read, parsed and validated in; canonical, atomic and locked out.

A manifest is its main file and, from schema_version 2, its history folder (see
:mod:`valhalla_status.storage.layout`). Reading checks the bytes (size, UTF-8, conflict
markers), reads the YAML strictly (:mod:`valhalla_status.storage.yamlstrict`) and validates it,
reporting every problem at once, located. Writing validates, writes the canonical text
(:mod:`valhalla_status.storage.canonical`) atomically (:mod:`valhalla_status.storage.atomic`),
under the lock.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from .errors import ManifestError, ValhallaError
from .models import (
    HistoryEntry,
    LandedEntry,
    Manifest,
    cross_field_problems,
    describe,
    format_timestamp,
    pending_while_complete,
)
from .rules.changes import sets_since
from .rules.history import differences
from .rules.text import for_terminal
from .storage.atomic import atomic_write as atomic_write
from .storage.atomic import fsync_folder, remove_stale_temp_files
from .storage.canonical import HEADER as HEADER
from .storage.canonical import (
    dump_entry,
    dump_manifest,
    existing_entries,
    manifest_data,
    name_time,
    plan_history,
    with_ids,
)
from .storage.entrycache import EntryCache, Fields
from .storage.files import (
    MAX_MANIFEST_BYTES,
    NotRegularFileError,
    mib,
    os_reason,
    read_regular_file,
)
from .storage.landing import Landings, from_micros, landing_order, micros
from .storage.layout import EMPTY as EMPTY_HISTORY
from .storage.layout import (
    EXAMPLE_NAME,
    MAX_ENTRY_BYTES,
    History,
    digest,
    entry_place,
    history_dir,
    history_shown,
    move_into_place,
    read_state,
    recorded_places,
    settle,
    write_pending,
)
from .storage.locking import lock_path as lock_path
from .storage.locking import manifest_lock as manifest_lock
from .storage.snapshot import Kept, Row, Snapshot
from .storage.validation import clean_loc, validation_problems
from .storage.validation import error_message as error_message
from .storage.yamlstrict import LineMap, Loc, construct, problem
from .storage.yamlstrict import Loader as _Loader
from .storage.yamlstrict import format_loc as format_loc

MAX_FILE_SIZE = mib(MAX_MANIFEST_BYTES)
_CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})(?: |$)", re.MULTILINE)


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
        raw = read_regular_file(path, MAX_MANIFEST_BYTES)
        if len(raw) > MAX_MANIFEST_BYTES:
            size = max(os.stat(path).st_size, len(raw))
            megabytes = f"{size / 2**20:.1f} MiB"
            raise ManifestError(
                [f"{shown}: file is {megabytes}; the limit is {MAX_FILE_SIZE} (not parsed)"]
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
        raise ManifestError([f"{shown}: cannot read the file: {os_reason(exc)}"]) from None
    return raw


def decode_manifest_bytes(raw: bytes, shown: str) -> str:
    """Manifest bytes (from a file or a git revision) as text: size, UTF-8, conflict markers."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError([f"{shown}: file is over the {MAX_FILE_SIZE} limit (not parsed)"])
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


def parse_manifest(
    text: str,
    path: str | os.PathLike[str] = "<manifest>",
    history: History | None = None,
    *,
    landed: Callable[[], Landings] | None = None,
    explained: bool = True,
    require_history: bool = True,
    known: EntryCache | None = None,
) -> Manifest:
    """Validate manifest text; raise ManifestError with every located problem.

    A schema_version 2 manifest takes its history (and updated_at) from ``history``, the
    files of its history folder (none given: no files), in the landing order ``landed`` gives
    (None: the entries' own order), entries read before taken from ``known`` (see
    :func:`parse_history`); ``explained``: also check that the history explains every field
    (see :mod:`valhalla_status.rules.history`).
    """
    shown = os.fspath(path)
    data, lines = _main_data(text, shown)
    if _is_layout_2(data):
        entries, problems = parse_history(
            history or EMPTY_HISTORY, history_shown(shown), landed=landed, known=known
        )
        entries = _since_newest_init(entries)
        manifest = _parse_layout_2(data, lines, shown, entries, problems, require_history)
        if explained:
            _check_explained(manifest, data, lines, shown)
        return manifest
    if not _is_layout_1(data):
        _refuse_schema_version(data, shown, lines)
    if history is not None and history.entries:
        folder = history_shown(shown)
        raise ManifestError(
            [
                f"{shown}: this file is schema_version 1 (its history inside it), but {folder}/ "
                f"holds {len(history.entries)} history files of schema_version 2 (a branch of "
                "each layout merged?); run `valhalla-status migrate` to move this file's "
                "history into the folder"
            ]
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(validation_problems(exc, data, shown, lines)) from None
    _refuse_cross_field(manifest, shown, lines, data)
    return with_ids(manifest)


def _main_data(text: str, shown: str) -> tuple[dict[str, Any], LineMap]:
    """The main file's data and line map; an empty file or no mapping is refused."""
    lines = LineMap()
    data = construct(text, shown, lines)
    if data is None:
        raise ManifestError([f"{shown}: the manifest is empty; run `valhalla-status init`"])
    if not isinstance(data, dict):
        raise ManifestError([f"{shown}:1: the manifest must be a mapping, not {describe(data)}"])
    return data, lines


def _is_layout_2(data: dict[str, Any]) -> bool:
    return data.get("schema_version") == 2 and type(data["schema_version"]) is int


def _is_layout_1(data: dict[str, Any]) -> bool:
    return data.get("schema_version") == 1 and type(data["schema_version"]) is int


def _refuse_schema_version(data: dict[str, Any], shown: str, lines: LineMap) -> None:
    """A main file of no layout this tool reads: only that is said (what else is wrong
    depends on the layout)."""
    try:
        Manifest.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, data, shown, lines, only="schema_version")
        if problems:
            raise ManifestError(problems) from None


def parse_recent(text: str, path: str | os.PathLike[str], entries: list[LandedEntry]) -> Manifest:
    """A schema_version 2 main file with only the newest ``entries`` of its history (in landing
    order, with the newest one): every rule of the main file is checked, and ``updated_at``
    is the newest entry's landing time; what the whole history says is :func:`load_manifest`'s
    to check. A schema_version 1 file is parsed whole."""
    shown = os.fspath(path)
    data, lines = _main_data(text, shown)
    if not _is_layout_2(data):
        return parse_manifest(text, path)
    return _parse_layout_2(data, lines, shown, entries, [], require_history=True)


def _check_explained(manifest: Manifest, data: dict[str, Any], lines: LineMap, shown: str) -> None:
    """Raise ManifestError, located, for every field the history does not explain."""
    found = differences(manifest)
    if found:
        raise ManifestError(
            [problem(shown, lines.line_of(data, d.loc), d.loc, d.message) for d in found]
        )


class InconsistentManifestError(ManifestError):
    """A manifest whose only problem is a pending pack under a complete backend: invalid, but
    read, so that the change that settles it (``incomplete``, ``pack set``) can be made."""

    def __init__(self, problems: list[str], manifest: Manifest) -> None:
        super().__init__(problems)
        self.manifest = manifest


def _refuse_cross_field(manifest: Manifest, shown: str, lines: LineMap, data: Any) -> None:
    cross = cross_field_problems(manifest)
    if not cross:
        return
    located = [problem(shown, lines.line_of(data, loc), loc, message) for loc, message in cross]
    if len(cross) == len(pending_while_complete(manifest)):
        raise InconsistentManifestError(located, manifest)
    raise ManifestError(located)


def parse_history(
    history: History,
    folder_shown: str,
    *,
    landed: Callable[[], Landings] | None = None,
    known: EntryCache | None = None,
) -> tuple[list[LandedEntry], list[str]]:
    """The entries of a history folder, each with its id, and every located problem.

    In landing order, each at the time it landed, when ``landed`` gives the landings (see
    :func:`.storage.landing.landing_order`); else in their own order (time, then the order they
    were made in), each landed at its own time. An entry whose bytes ``known`` holds is not
    parsed again; each one read is added to it (see :mod:`.storage.entrycache`).
    """
    problems = [
        f"{folder_shown}/{name}: not a history entry file (names look like {EXAMPLE_NAME}); "
        "move it out of the folder"
        for name in history.unknown
    ]
    keys = {name: digest(raw) for name, raw in history.entries.items()}
    read: dict[str, Fields] = {}
    loaded: list[tuple[str, LineMap, Any]] = []  # the entries not read before
    for name in sorted(history.entries):
        fields = known.get(keys[name]) if known is not None else None
        if fields is not None:
            read[name] = fields
            continue
        found = _read_entry(history.entries[name], f"{folder_shown}/{history.place(name)}")
        if isinstance(found, list):
            problems += found
        else:
            loaded.append((name, *found))
    try:
        checked = TypeAdapter(list[HistoryEntry]).validate_python([data for _, _, data in loaded])
    except ValidationError as exc:
        return [], problems + _entry_problems(exc, loaded, f"{folder_shown}/", history)
    for (name, _, _), entry in zip(loaded, checked, strict=True):
        read[name] = (micros(entry.at), entry.by, entry.action, entry.changes, entry.notes)
        if known is not None:
            known.put(keys[name], read[name])
    edited = {name for name in read if _edited(name, keys[name], read[name])}
    problems += [
        f"{folder_shown}/{history.place(name)}: edited after it was recorded (its text no "
        "longer matches its name); a recorded change is never edited: put back its recorded "
        "text (e.g. `git checkout HEAD -- FILE`) and make the change you meant as a new one"
        for name in sorted(edited)
    ]
    own = sorted(read, key=lambda name: (read[name][0], int(name.split("-")[1]), name))
    made = [(name, read[name][0]) for name in own]
    order = landing_order(made, landed() if landed is not None and own else Landings())
    entries = [_landed_entry(own[index], read[own[index]], at) for index, at in order]
    problems += [
        f"{folder_shown}/{history.place(entry.id + '.yaml')}: named for {entry.id[:16]} but "
        f"made at {format_timestamp(entry.at)} (its `at`); a recorded change keeps the name it "
        f"was recorded with: put that back, or name the file {name_time(entry.at)}"
        f"{entry.id[16:]}.yaml"
        for entry in entries
        if not entry.id.startswith(name_time(entry.at)) and f"{entry.id}.yaml" not in edited
    ]
    return entries, problems


_ENTRY_FIELDS = frozenset(LandedEntry.model_fields)


def _landed_entry(name: str, fields: Fields, landed: int) -> LandedEntry:
    """The entry file ``name`` read as ``fields`` (validated), landed at ``landed``
    (microseconds): what ``model_construct`` makes, set in one step through pydantic's pickle
    protocol rather than field by field (a third of the time; a full read makes one per
    entry)."""
    at, by, action, changes, notes = fields
    entry = LandedEntry.__new__(LandedEntry)
    entry.__setstate__(
        {
            "__dict__": {
                "at": from_micros(at),
                "by": by,
                "action": action,
                "changes": changes,
                "notes": notes,
                "id": name.removesuffix(".yaml"),
                "landed_at": from_micros(landed),
            },
            "__pydantic_fields_set__": set(_ENTRY_FIELDS),
            "__pydantic_extra__": None,
            "__pydantic_private__": None,
        }
    )
    return entry


def _read_entry(raw: bytes, shown: str) -> tuple[LineMap, dict[str, Any]] | list[str]:
    """An entry file's data and line map, or its problems."""
    if len(raw) > MAX_ENTRY_BYTES:
        return [f"{shown}: file is over the {mib(MAX_ENTRY_BYTES)} limit of a history entry"]
    try:
        lines = LineMap()
        data = construct(decode_manifest_bytes(raw, shown), shown, lines)
    except ManifestError as exc:
        return exc.problems
    if not isinstance(data, dict):
        return [f"{shown}:1: a history entry must be a mapping, not {describe(data)}"]
    return lines, data


def _entry_problems(
    exc: ValidationError, loaded: list[tuple[str, LineMap, Any]], folder: str, history: History
) -> list[str]:
    """pydantic's errors of the entries, located in their files."""
    by_index: dict[int, list[Any]] = {}
    for error in exc.errors():
        by_index.setdefault(int(error["loc"][0]), []).append(error)
    problems = []
    for index, errors in sorted(by_index.items()):
        name, lines, data = loaded[index]
        for error in errors:
            loc = clean_loc(error["loc"][1:], data)
            message = error_message(error, ("history", 0, *loc))
            problems.append(
                problem(f"{folder}{history.place(name)}", lines.line_of(data, loc), loc, message)
            )
    return problems


def _edited(name: str, key: str, fields: Fields) -> bool:
    """Whether an entry's file (its bytes' SHA-256: ``key``, read as ``fields``) no longer holds
    the change its name was made from (its name carries the hash of its canonical text: a file
    rewritten in another form is not edited)."""
    named = name.split("-")[2].removesuffix(".yaml")
    if key[:8] == named:
        return False
    entry = _landed_entry(name, fields, fields[0])
    return digest(dump_entry(entry).encode())[:8] != named


def _since_newest_init(entries: list[LandedEntry]) -> list[LandedEntry]:
    """The history starts at its newest ``init``: entries before it are what ``init --force``
    replaced (left behind only when it was killed before removing them)."""
    starts = [index for index, entry in enumerate(entries) if entry.action == "init"]
    return entries[starts[-1] :] if starts and starts[-1] else entries


def _parse_layout_2(
    data: dict[str, Any],
    lines: LineMap,
    shown: str,
    entries: list[LandedEntry],
    problems: list[str],
    require_history: bool = True,
) -> Manifest:
    folder_shown = history_shown(shown)
    if "history" in data:
        problems.append(
            problem(
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
            problem(
                shown,
                lines.line_of(data, loc),
                loc,
                "schema_version 2 takes updated_at from the newest history entry; remove it here",
            )
        )
    if not entries and not problems and require_history:
        problems.append(
            f"{shown}: no history entries in {folder_shown}/; schema_version 2 takes "
            "updated_at from the newest entry"
        )
    body = {k: v for k, v in data.items() if k != "history"}
    if isinstance(system, dict):
        newest = max(
            (entry.landed_at for entry in entries),
            default=datetime(2000, 1, 1, tzinfo=timezone.utc),
        )
        body["system"] = {**system, "updated_at": newest}
    try:
        manifest = Manifest.model_validate(body)
    except ValidationError as exc:
        problems += validation_problems(exc, body, shown, lines, located=data)
        raise ManifestError(problems) from None
    if problems:
        raise ManifestError(problems)
    manifest = manifest.model_copy(update={"history": entries})
    _refuse_cross_field(manifest, shown, lines, data)
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> tuple[bytes, History]:
    """The main file's bytes and its history files, as one consistent state."""
    return read_state(path, lambda: read_manifest_file(path))


def parse_state(
    path: str | os.PathLike[str],
    main: bytes,
    history: History,
    *,
    explained: bool = True,
    kept: Kept | None = None,
) -> Manifest:
    """The manifest from a state read with :func:`read_manifest`, its history in landing
    order (see :mod:`valhalla_status.storage.landing`; ``kept``: the snapshot of the history
    made before it was read, which knows the git work tree and reads the landings once)."""
    folder = history_dir(path)
    kept = kept or Kept(folder)
    known = EntryCache(folder, kept.state) if history.entries else None
    try:
        return parse_manifest(
            decode_manifest_bytes(main, os.fspath(path)),
            path,
            history,
            landed=kept.landings,
            explained=explained,
            known=known,
        )
    finally:
        if known is not None:
            known.keep()


def load_manifest(
    path: str | os.PathLike[str], *, explained: bool = True, kept: Kept | None = None
) -> Manifest:
    """Read, parse and validate the manifest at ``path`` (and its history folder).

    ``explained``: also check that the history explains every field (``record`` reads a
    manifest that it does not, to record what it does not explain); when it does, what a read
    command or a change needs of the history is kept (``kept``, see :mod:`.storage.snapshot`).
    """
    kept = kept or Kept(history_dir(path))
    main, history = read_manifest(path)
    manifest = parse_state(path, main, history, explained=explained, kept=kept)
    landed = [entry for entry in manifest.history if isinstance(entry, LandedEntry)]
    if not (explained and landed and len(landed) == len(manifest.history)):
        return manifest
    main_hash = digest(main)
    if not kept.explains(main_hash):
        order: list[Row] = [
            (
                f"{entry.id}.yaml",
                micros(entry.landed_at),
                (entry.action, sets_since(entry.action, entry.changes), micros(entry.at)),
            )
            for entry in landed
        ]
        places = {name: history.place(name) for name, _, _ in order}
        kept.keep(Snapshot.of(order, places, main_hash), places.values())
    return manifest


# --- writing -------------------------------------------------------------------------------


def validate_manifest(manifest: Manifest, shown: str = "<manifest>") -> Manifest:
    """Re-validate a manifest built in memory; raise ManifestError (no line numbers) if invalid."""
    data = manifest_data(manifest)
    try:
        checked = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(validation_problems(exc, data, shown)) from None
    cross = cross_field_problems(checked)
    if cross:
        raise ManifestError([problem(shown, None, loc, message) for loc, message in cross])
    return checked


def _holds(path: str | os.PathLike[str], data: bytes) -> bool:
    """Whether the file at ``path`` holds exactly ``data``; a FIFO, a folder or a device there
    is refused (never opened blocking, never replaced)."""
    try:
        return read_regular_file(path, len(data)) == data
    except NotRegularFileError as exc:
        raise ValhallaError(
            f"{os.fspath(path)}: is {exc.kind}, not a manifest file; not replacing it"
        ) from None
    except OSError:
        return False


def write_manifest(
    path: str | os.PathLike[str], manifest: Manifest, *, history_on_disk: int = 0
) -> str | None:
    """Validate and write ``manifest`` in canonical form; the SHA-256 of the main file written,
    None when nothing changed.

    The caller holds the lock (see :func:`manifest_lock`). schema_version 2: each new history
    entry is first written as a pending file named after the hash of the new main file, then
    the main file is replaced, then the pending file is renamed (see :mod:`.storage.layout`). The
    first ``history_on_disk`` entries are the files as read under this lock (a change appends
    to them); they are left as they are.
    """
    checked = validate_manifest(manifest, os.fspath(path))
    data = dump_manifest(checked).encode("utf-8")
    remove_stale_temp_files(path)
    unchanged = _holds(path, data)
    if checked.schema_version == 1:
        if unchanged:
            return None
        atomic_write(path, data)
        return digest(data)
    folder = history_dir(path)
    try:
        if not history_on_disk:  # else the caller read the files under this lock, settled
            settle_history(path)
        existing = existing_entries(folder) if not history_on_disk else {}
        # Validation made new entries; the ones read from files keep their names (their ids).
        named = checked.model_copy(update={"history": manifest.history})
        write, remove = plan_history(named, existing, on_disk=history_on_disk)
    except OSError as exc:
        raise ValhallaError(f"cannot write {history_dir(path)}: {os_reason(exc)}") from None
    if unchanged and not write and not remove:
        return None
    return _write_files(path, data, write, remove, rewrites=not history_on_disk)


def _write_files(
    path: str | os.PathLike[str],
    data: bytes,
    write: list[tuple[str, bytes]],
    remove: list[str],
    *,
    rewrites: bool,
) -> str:
    """Write the entry files ``write`` as pending, replace the main file with ``data``, then
    put the entries in place and remove those ``remove`` names; the SHA-256 of ``data``. On
    failure, the entries stay only if the main file was replaced."""
    folder = history_dir(path)
    main_file = _identity(path)
    pending: list[tuple[Path, str]] = []
    try:
        folder.mkdir(exist_ok=True)
        main_hash = digest(data)
        for name, raw in write:
            pending.append((write_pending(folder, main_hash, name, raw), name))
        fsync_folder(folder)
        atomic_write(path, data)
        _put_in_place(folder, pending, remove, rewrites=rewrites)
        fsync_folder(folder)
    except (OSError, ValhallaError) as exc:
        with contextlib.suppress(OSError):
            if _identity(path) == main_file:  # not replaced: the change was not made
                for source, _ in pending:
                    source.unlink(missing_ok=True)
            # What a killed writer leaves is settled the same way (see settle_history).
            settle_history(path)
        if isinstance(exc, ValhallaError):
            raise
        raise ValhallaError(f"cannot write {history_dir(path)}: {os_reason(exc)}") from None
    return main_hash


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The file at ``path`` (device and inode): a replaced file is another one."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _put_in_place(
    folder: Path, pending: list[tuple[Path, str]], remove: list[str], *, rewrites: bool
) -> None:
    """Rename the pending files to their places and remove the entry files ``remove`` names;
    with ``rewrites`` (entries rewritten, not only added), an entry rewritten from a flat file
    leaves no copy there."""
    places = recorded_places(folder) if rewrites else {}
    for source, name in pending:
        move_into_place(folder, source.name, name)
        if places.get(name) == name:
            (folder / name).unlink(missing_ok=True)
    for name in remove:
        (folder / places.get(name, name)).unlink(missing_ok=True)
    for subfolder in {(folder / places.get(name, name)).parent for name in remove} - {folder}:
        with contextlib.suppress(OSError):
            subfolder.rmdir()  # emptied by the removals; one that still holds files stays


def tidy_history(path: str | os.PathLike[str]) -> None:
    """Under the lock: :func:`settle_history`, its failure said in one line."""
    try:
        settle_history(path)
    except OSError as exc:
        raise ValhallaError(f"cannot tidy {history_dir(path)}: {os_reason(exc)}") from None


def settle_history(path: str | os.PathLike[str]) -> None:
    """Finish or undo what a killed writer left (call with the lock): a pending entry is kept
    while the main file shows its change, even after the main file changed another way (see
    :func:`.storage.layout.settle`)."""

    def shows(main: bytes, name: str, raw: bytes) -> bool:
        return shows_change(path, main, name, raw)

    def reads(name: str, raw: bytes) -> bool:
        entries, problems = parse_history(History({name: raw}, ()), history_shown(os.fspath(path)))
        return bool(entries) and not problems

    settle(path, shows, reads)


def shows_change(path: str | os.PathLike[str], main: bytes, name: str, raw: bytes) -> bool:
    """Whether the main file ``main`` holds every value the entry file ``raw`` (named ``name``)
    set: a schema_version 2 main file that reads, an entry that reads and changes something."""
    shown = os.fspath(path)
    try:
        manifest = parse_manifest(
            decode_manifest_bytes(main, shown), path, explained=False, require_history=False
        )
    except InconsistentManifestError as exc:
        manifest = exc.manifest
    except ManifestError:
        return False
    entries, problems = parse_history(History({name: raw}, ()), history_shown(shown))
    if manifest.schema_version != 2 or problems or not entries or not entries[0].changes:
        return False
    return not differences(manifest.model_copy(update={"history": entries}))


def non_canonical_files(
    path: str | os.PathLike[str], manifest: Manifest, main: bytes, *, signed: bool = True
) -> list[str]:
    """The files (as shown) that are not exactly what :func:`write_manifest` writes for
    ``manifest``: the main file, history files to rewrite, and history files it removes.

    The header comment is the writer's signature rather than part of the form: unless
    ``signed``, a file typed by hand in canonical form without it is canonical too.
    """
    shown = os.fspath(path)
    text = dump_manifest(manifest).encode()
    found = []
    if main != text and (signed or main != text.removeprefix(HEADER.encode())):
        found.append(shown)
    if manifest.schema_version == 1:
        return found
    folder = history_dir(path)
    try:
        places = recorded_places(folder)
        existing = existing_entries(folder, places)
    except OSError:
        return [shown]
    write, remove = plan_history(manifest, existing)
    names = [name for name, _ in write] + remove
    return found + [
        f"{history_shown(shown)}/{places.get(name) or entry_place(name)}" for name in names
    ]


def is_canonical(
    path: str | os.PathLike[str], manifest: Manifest, main: bytes, *, signed: bool = True
) -> bool:
    """Whether the files are exactly what :func:`write_manifest` writes for ``manifest``."""
    return not non_canonical_files(path, manifest, main, signed=signed)


def format_manifest_file(path: str | os.PathLike[str], *, check: bool = False) -> list[str]:
    """Rewrite the files in canonical form; returns those that were not (as shown).

    With ``check`` nothing is written. Compared as bytes: the text read has lost a byte-order
    mark, which is not canonical.
    """
    if check:
        main, history = read_manifest(path)
        manifest = parse_state(path, main, history)
        return non_canonical_files(path, manifest, main, signed=False)
    if not os.path.lexists(path):
        read_manifest_text(path)  # raises the "run `valhalla-status init`" error
    with manifest_lock(path):
        tidy_history(path)
        main, history = read_manifest(path)
        manifest = parse_state(path, main, history)
        found = non_canonical_files(path, manifest, main)
        if found:
            write_manifest(path, manifest)
        return found


def hand_comments(path: str | os.PathLike[str]) -> list[str]:
    """One warning per comment typed into the main file: the next write drops it."""
    try:
        text = read_manifest_text(path).replace("\r\n", "\n")  # a checkout's line ends
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
