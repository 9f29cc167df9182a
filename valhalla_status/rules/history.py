"""What the history says the state is: the history replayed, and where the manifest differs.

Every recorded change maps fields to ``[old, new]``. Replayed in landing order, the newest
change of each field says what the field holds now; an ``init`` entry with no changes stands
for the default manifest (:mod:`valhalla_status.rules.defaults`), from which every field is known.
A manifest whose files say otherwise was edited by hand, or a merge conflict was resolved
against the history: :func:`differences` finds each such field, for ``validate`` to report and
for ``record`` to record as a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..models import HistoryEntry, LandedEntry, Manifest, Pack, format_timestamp
from .changes import clipped, pack_record, sets_since
from .defaults import DEFAULT_SYSTEM, default_packs
from .formats import PACK_FIELDS, pack_change_key, split_pack_change_key

RECORD_ADVICE = "record the edit with `valhalla-status record --notes WHY`, or put the value back"


@dataclass(frozen=True)
class Said:
    """A value as the history says it, and the entry that set it last."""

    value: Any
    entry: HistoryEntry | None


@dataclass
class Replay:
    """The state the history describes."""

    known: bool = False
    """Whether the history starts from a whole state (an ``init``): then every pack is known."""
    system: dict[str, Said] = field(default_factory=dict)
    packs: dict[str, dict[str, Said]] = field(default_factory=dict)
    removed: dict[str, HistoryEntry] = field(default_factory=dict)

    def apply(self, entry: HistoryEntry) -> None:
        if entry.action == "init":
            self.known, self.system, self.packs, self.removed = True, {}, {}, {}
            if not entry.changes:
                self.system = {name: Said(value, entry) for name, value in DEFAULT_SYSTEM.items()}
                for pack in default_packs():
                    self._add(pack, entry)
        for key, (_, new) in entry.changes.items():
            self._set(key, new, entry)

    def _add(self, record: dict[str, Any], entry: HistoryEntry) -> None:
        pack_id = str(record.get("id"))
        values = {name: record.get(name) for name in PACK_FIELDS}
        self.packs[pack_id] = {name: Said(value, entry) for name, value in values.items()}
        self.removed.pop(pack_id, None)

    def _set(self, key: str, new: Any, entry: HistoryEntry) -> None:
        about = split_pack_change_key(key)
        if about is None:
            if key in DEFAULT_SYSTEM:
                self.system[key] = Said(new, entry)
            return
        pack_id, name = about
        if not name:
            if isinstance(new, dict):
                self._add({**new, "id": pack_id}, entry)
            else:
                self.packs.pop(pack_id, None)
                self.removed[pack_id] = entry
        elif name in PACK_FIELDS:
            self.packs.setdefault(pack_id, {})[name] = Said(new, entry)


def replay(manifest: Manifest) -> Replay:
    """The state the manifest's history describes, replayed in its order."""
    state = Replay()
    for entry in manifest.history:
        state.apply(entry)
    return state


@dataclass(frozen=True)
class Difference:
    """A field whose value differs from what the history says."""

    key: str
    """The field as the history names it: ``version``, ``packs.K.status``, ``packs.K``."""
    loc: tuple[str | int, ...]
    """Where it is in the main file (for the line number)."""
    said: Any
    actual: Any
    message: str


def differences(manifest: Manifest) -> list[Difference]:
    """Every field of ``manifest`` that differs from what its history says, in file order.

    Fields no change ever named (a history that does not start with ``init``) are taken as
    they are.
    """
    state = replay(manifest)
    system = manifest.system.model_dump(mode="json")
    found = [
        _differs(name, ("system", name), said, system[name])
        for name, said in state.system.items()
        if system[name] != said.value
    ]
    for index, pack in enumerate(manifest.packs):
        said_pack = state.packs.get(pack.id)
        if said_pack is not None:
            found += _pack_differences(pack, index, said_pack)
        elif state.known or pack.id in state.removed:
            found.append(_unrecorded(pack, index, state.removed.get(pack.id)))
    present = {pack.id for pack in manifest.packs}
    found += [
        _missing(pack_id, said_pack)
        for pack_id, said_pack in state.packs.items()
        if pack_id not in present
    ]
    return found


def _pack_differences(pack: Pack, index: int, said_pack: dict[str, Said]) -> list[Difference]:
    found = []
    for name, said in said_pack.items():
        actual = getattr(pack, name)
        if actual != said.value:
            # A field absent from the file (a note not set) is located at its pack.
            loc: tuple[str | int, ...] = ("packs", index, name if actual is not None else "id")
            found.append(_differs(pack_change_key(pack.id, name), loc, said, actual))
    return found


def _differs(key: str, loc: tuple[str | int, ...], said: Said, actual: Any) -> Difference:
    message = (
        f"{clipped(actual)} here, but the history says {clipped(said.value)} "
        f"({entry_label(said.entry)}); {RECORD_ADVICE}"
    )
    return Difference(key, loc, said.value, actual, message)


def _unrecorded(pack: Pack, index: int, removed_by: HistoryEntry | None) -> Difference:
    why = (
        f"the history says it was removed ({entry_label(removed_by)})"
        if removed_by is not None
        else "no recorded change added it"
    )
    message = f"pack {pack.id} is here, but {why}; {RECORD_ADVICE}"
    return Difference(
        pack_change_key(pack.id), ("packs", index, "id"), None, pack_record(pack), message
    )


def _missing(pack_id: str, said: dict[str, Said]) -> Difference:
    record = {"id": pack_id, **{k: s.value for k, s in said.items() if s.value is not None}}
    newest = said.get("status") or next(iter(said.values()))
    message = (
        f"pack {pack_id} is missing here, but the history says it exists "
        f"({entry_label(newest.entry)}); {RECORD_ADVICE}"
    )
    return Difference(pack_change_key(pack_id), ("packs",), record, None, message)


def landed_entry(entry: HistoryEntry, ident: str) -> LandedEntry:
    """A history entry with its id, landed at its own time (until git says otherwise)."""
    return LandedEntry.model_construct(**dict(entry), id=ident, landed_at=entry.at)


def entry_id(entry: HistoryEntry) -> str:
    """The entry's id (its file's name without ``.yaml``); empty for an entry not yet read."""
    return str(getattr(entry, "id", ""))


def entry_label(entry: HistoryEntry | None) -> str:
    """An entry as messages name it: its action and id."""
    if entry is None:
        return "no entry"
    ident = entry_id(entry)
    return f"{entry.action} {ident}" if ident else entry.action


def _content(entry: HistoryEntry) -> tuple[Any, ...]:
    return (entry.at, entry.by, entry.action, entry.changes, entry.notes)


def compare_histories(
    old: list[HistoryEntry], new: list[HistoryEntry]
) -> tuple[list[HistoryEntry], list[HistoryEntry], list[HistoryEntry]]:
    """The entries ``new`` adds to ``old``, those it removes, and those it edits (same id,
    other content), matched by id whatever their order."""
    before = {entry_id(entry): entry for entry in old}
    after = {entry_id(entry) for entry in new}
    added = [entry for entry in new if entry_id(entry) not in before]
    removed = [entry for entry in old if entry_id(entry) not in after]
    edited = [
        entry
        for entry in new
        if entry_id(entry) in before and _content(before[entry_id(entry)]) != _content(entry)
    ]
    return added, removed, edited


def pack_since(manifest: Manifest) -> dict[str, str]:
    """Pack id -> the time the newest history entry that set its status landed.

    That is a ``packs.<ID>.status`` change, the pack's addition, or (for packs it does not
    name) the newest ``init`` entry; a pack none of these covers is absent (unknown). A
    ``migrate`` entry records the values it found, not a change: it sets no ``since``.
    """
    since: dict[str, datetime] = {}
    init: datetime | None = None
    for entry in manifest.history:
        landed = getattr(entry, "landed_at", entry.at)
        if entry.action == "init":
            since.clear()
            init = landed
        since.update(dict.fromkeys(sets_since(entry.action, entry.changes), landed))
    if init is not None:
        for pack in manifest.packs:
            since.setdefault(pack.id, init)
    return {pack: format_timestamp(landed) for pack, landed in since.items()}
