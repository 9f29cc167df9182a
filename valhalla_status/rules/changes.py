"""One change, typed, and its words: the one place a change of the manifest is put into words.

A history entry's ``changes`` maps the key of a field (``version``, ``packs.K.status``, or
``packs.K`` for a whole pack) to ``[old, new]``; :func:`compute_changes` makes it by comparing
two manifests, and :func:`items` reads it back as typed items: system fields first, in the
order of :data:`SYSTEM_FIELDS`, then each pack's, its status first. Each item says itself as a
line (``Pack K: pending → installed``), and the item an action is about says the entry's title
(``Backend marked complete``). Every reader words a change from here: the outcome of a command,
the page and the feed, ``history`` and ``diff``. They choose only how much a reader is told
(:class:`Words`: ``diff`` quotes values and names the pack, for a reviewer) and how the text is
escaped for where it goes (a terminal, HTML and XML, Markdown), never the words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import Manifest, Pack
from .formats import (
    PACK_FIELDS,
    SYSTEM_FIELDS,
    human_time,
    is_semver,
    pack_change_key,
    parse_timestamp,
    semver_key,
    split_pack_change_key,
)

_PACK_LABELS = {"status": "", "notes": "note"}
"""How a pack's field is named in its line (otherwise by its own name)."""

_TOLD_AS_UPDATED = frozenset({"notes"})
"""Free text told as updated or cleared; only a review shows its values."""

ACTION_TITLES = {
    "init": "Manifest created",
    "complete": "Backend marked complete",
    "incomplete": "Backend marked in development",
    "set-version": "Version changed",
    "set-notes": "Notes changed",
    "pack-add": "Pack added",
    "pack-set": "Pack changed",
    "pack-remove": "Pack removed",
    "migrate": "Manifest migrated",
    "revert": "Change reverted",
    "record": "Hand edit recorded",
}
"""An entry's title where no change of it says what was done."""


# --- the history entry ---------------------------------------------------------------------


def pack_record(pack: Pack) -> dict[str, Any]:
    """A whole pack as the history records it (``notes`` only when set)."""
    record = pack.model_dump()
    if record["notes"] is None:
        del record["notes"]
    return record


def compute_changes(old: Manifest, new: Manifest) -> dict[str, list[Any]]:
    """Each changed field as ``{key: [old, new]}``, as the history records it."""
    changes: dict[str, list[Any]] = {}
    old_system = old.system.model_dump(mode="json")
    new_system = new.system.model_dump(mode="json")
    for name in SYSTEM_FIELDS:
        if old_system[name] != new_system[name]:
            changes[name] = [old_system[name], new_system[name]]
    old_packs = {p.id: p for p in old.packs}
    new_packs = {p.id: p for p in new.packs}
    for pack_id, pack in old_packs.items():
        after = new_packs.get(pack_id)
        if after is None:
            changes[pack_change_key(pack_id)] = [pack_record(pack), None]
            continue
        for name in PACK_FIELDS:
            if getattr(pack, name) != getattr(after, name):
                changes[pack_change_key(pack_id, name)] = [
                    getattr(pack, name),
                    getattr(after, name),
                ]
    for pack_id, pack in new_packs.items():
        if pack_id not in old_packs:
            changes[pack_change_key(pack_id)] = [None, pack_record(pack)]
    return changes


# --- values --------------------------------------------------------------------------------


def plain(value: Any) -> str:
    """A value as a reader sees it: text as it is (on one line), anything else as JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value.replace("\n", " ")
    return json.dumps(value, ensure_ascii=False)


def quoted(value: Any) -> str:
    """A value as a reviewer sees it: JSON, so that spaces and quotes show."""
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


def clipped(value: Any, limit: int = 60) -> str:
    """A value in a one-line message: JSON, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: Any) -> str:
    """A recorded time as people read it (``2025-09-21 00:00 UTC``)."""
    if value is None:
        return "(none)"
    try:
        return human_time(parse_timestamp(value))
    except ValueError:
        return quoted(value)


@dataclass(frozen=True)
class Words:
    """How much a line tells: ``review`` (``diff``) quotes values, shows free text's values,
    and adds what a reviewer needs to place it: the pack's name (``names``), a version going
    down, when the backend was completed, what a removed pack was."""

    review: bool = False
    names: Mapping[str, str] = field(default_factory=dict)

    def value(self, value: Any) -> str:
        return quoted(value) if self.review else plain(value)


PLAIN = Words()


# --- the items -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One change of one field: a system field's, by default."""

    key: str
    old: Any
    new: Any
    pack: str = ""
    """The pack it is about ('' for the system)."""

    def line(self, words: Words = PLAIN) -> str:
        return f"{self.key}: {words.value(self.old)} → {words.value(self.new)}"

    def title(self) -> str:
        """The line as an entry's title."""
        return self.line()


@dataclass(frozen=True)
class VersionChange(Item):
    def line(self, words: Words = PLAIN) -> str:
        lower = words.review and _lower(self.old, self.new)
        return f"version {self.old} → {self.new}" + (" (lower)" if lower else "")

    def title(self) -> str:
        return f"Version {self.old} → {self.new}"


def _lower(old: Any, new: Any) -> bool:
    texts = isinstance(old, str) and isinstance(new, str)
    return texts and is_semver(old) and is_semver(new) and semver_key(new) < semver_key(old)


@dataclass(frozen=True)
class BackendChange(Item):
    """The backend marked complete (``new`` true) or in development; ``completed_at`` the
    time it was completed, which this change implies."""

    completed_at: Any = None

    def line(self, words: Words = PLAIN) -> str:
        if not self.new:
            return "backend: complete → in development"
        since = f" (completed_at {when(self.completed_at)})" if words.review else ""
        return f"backend: in development → complete{since}"

    def title(self) -> str:
        return ACTION_TITLES["complete" if self.new else "incomplete"]


@dataclass(frozen=True)
class CompletedAtChange(Item):
    """The time of completion changed, the backend staying complete."""

    def line(self, words: Words = PLAIN) -> str:
        return f"backend: completed_at {when(self.old)} → {when(self.new)}"


@dataclass(frozen=True)
class NotesChange(Item):
    def line(self, words: Words = PLAIN) -> str:
        if words.review:
            return super().line(words)
        return "notes cleared" if self.new is None else "notes updated"

    def title(self) -> str:
        return self.line().capitalize()


@dataclass(frozen=True)
class ExtraChange(Item):
    def line(self, words: Words = PLAIN) -> str:
        old, new = self.old, self.new
        if not (isinstance(old, dict) and isinstance(new, dict)):
            return f"extra: {quoted(old)} → {quoted(new)}"
        keys = sorted(k for k in {*old, *new} if k not in old or k not in new or old[k] != new[k])
        return "extra: changed " + ", ".join(quoted(k) for k in keys)


@dataclass(frozen=True)
class UpdatedChange(Item):
    """When the manifest was last updated (compared by ``diff``; no entry records it)."""

    def line(self, words: Words = PLAIN) -> str:
        return f"updated: {when(self.old)} → {when(self.new)}"


@dataclass(frozen=True)
class PackItem(Item):
    """A change of one pack: ``Pack K`` and the change (:meth:`change`), which a table shows
    in columns of their own."""

    def name(self, words: Words) -> str:
        """The pack's name, as a reviewer is told it."""
        return words.names.get(self.pack, "")

    def change(self, words: Words = PLAIN) -> str:
        raise NotImplementedError

    def line(self, words: Words = PLAIN) -> str:
        return f"Pack {self.pack} {self.change(words)}"


@dataclass(frozen=True)
class PackAdded(PackItem):
    def name(self, words: Words) -> str:
        return plain(self.new.get("name")) if isinstance(self.new, dict) else ""

    def change(self, words: Words = PLAIN) -> str:
        if not isinstance(self.new, dict):
            return "added"
        return f"added ({plain(self.new.get('group'))}, {plain(self.new.get('status'))})"

    def line(self, words: Words = PLAIN) -> str:
        if not isinstance(self.new, dict):
            return f"Pack {self.pack} added"
        what = self.change(words).removeprefix("added ")
        return f"Pack {self.pack} added: {self.name(words)} {what}"


@dataclass(frozen=True)
class PackRemoved(PackItem):
    def name(self, words: Words) -> str:
        return plain(self.old.get("name")) if isinstance(self.old, dict) else ""

    def change(self, words: Words = PLAIN) -> str:
        if not (words.review and isinstance(self.old, dict)):
            return "removed"
        return f"removed (was {plain(self.old.get('group'))}, {plain(self.old.get('status'))})"

    def line(self, words: Words = PLAIN) -> str:
        if not (words.review and isinstance(self.old, dict)):
            return f"Pack {self.pack} removed"
        what = self.change(words).removeprefix("removed ")
        return f"Pack {self.pack} removed: {self.name(words)} {what}"


@dataclass(frozen=True)
class PackFieldChange(PackItem):
    field: str = ""

    def change(self, words: Words = PLAIN) -> str:
        label = _PACK_LABELS.get(self.field, self.field)
        if self.field in _TOLD_AS_UPDATED and not words.review:
            return f"{label} {'cleared' if self.new is None else 'updated'}"
        if self.field == "status":
            return f"{plain(self.old)} → {plain(self.new)}"
        return f"{label} {words.value(self.old)} → {words.value(self.new)}"

    def line(self, words: Words = PLAIN) -> str:
        name = self.name(words) if self.field != "name" else ""
        return f"Pack {self.pack}: {self.change(words)}" + (f" ({name})" if name else "")


# --- reading a change ----------------------------------------------------------------------

_SYSTEM_ITEMS: dict[str, type[Item]] = {
    "version": VersionChange,
    "completed_at": CompletedAtChange,
    "notes": NotesChange,
    "extra": ExtraChange,
    "updated_at": UpdatedChange,
}
_ORDER = {name: index for index, name in enumerate((*SYSTEM_FIELDS, "updated_at"))}


def _item(key: str, old: Any, new: Any, changes: Mapping[str, Sequence[Any]]) -> Item | None:
    about = split_pack_change_key(key)
    if about is not None:
        pack_id, name = about
        if name:
            return PackFieldChange(key, old, new, pack=pack_id, field=name)
        return (PackAdded if old is None else PackRemoved)(key, old, new, pack=pack_id)
    if key == "backend_complete":
        completed = changes.get("completed_at", [None, None])
        return BackendChange(key, old, new, completed_at=completed[1])
    if key == "completed_at" and "backend_complete" in changes:
        return None  # implied by the backend's change
    return _SYSTEM_ITEMS.get(key, Item)(key, old, new)


def _told_order(item: Item, packs: dict[str, int]) -> tuple[int, int, int]:
    if not item.pack:
        return (0, _ORDER.get(item.key, len(_ORDER)), 0)
    told = item.field if isinstance(item, PackFieldChange) else ""
    rank = 0 if told == "status" else 1 + PACK_FIELDS.index(told) if told in PACK_FIELDS else 9
    return (1, packs[item.pack], rank if told else -1)


def items(changes: Mapping[str, Sequence[Any]]) -> list[Item]:
    """A history change as typed items, in the order they are told: system fields first,
    then each pack in the order the change first names it, its status first."""
    found = [
        item
        for key, (old, new) in changes.items()
        if (item := _item(key, old, new, changes)) is not None
    ]
    packs: dict[str, int] = {}
    for item in found:
        packs.setdefault(item.pack, len(packs))
    return sorted(found, key=lambda item: _told_order(item, packs))


# --- an entry in words ---------------------------------------------------------------------


def sets_since(action: str, changes: Mapping[str, Sequence[Any]]) -> list[str]:
    """The packs whose ``since`` a change sets: each pack it adds or whose status it sets (a
    ``migrate`` entry records the values it found, and sets none). What :func:`items` reads
    as :class:`PackAdded` and a status :class:`PackFieldChange`, read without building them
    (every entry of the history is read this way)."""
    if action == "migrate":
        return []
    found = []
    for key, (old, _) in changes.items():
        about = split_pack_change_key(key)
        if about is not None and (about[1] == "status" or (not about[1] and old is None)):
            found.append(about[0])
    return found


def lines(told: Sequence[Item], words: Words = PLAIN) -> list[str]:
    """Each item's line."""
    return [item.line(words) for item in told]


def sentence(told: Sequence[Item]) -> str:
    """The items in one line, ``; `` between them, each pack named once for its changes:
    ``Pack K: installed → pending; note updated``."""
    parts: list[str] = []
    previous: Item | None = None
    for item in told:
        line = item.line()
        same = isinstance(previous, PackFieldChange) and previous.pack == item.pack
        if same and isinstance(item, PackFieldChange):
            line = line.removeprefix(f"Pack {item.pack}: ")
        parts.append(line)
        previous = item
    return "; ".join(parts)


_ABOUT: dict[str, type[Item]] = {
    "complete": BackendChange,
    "incomplete": BackendChange,
    "set-version": VersionChange,
    "set-notes": NotesChange,
    "pack-add": PackItem,
    "pack-set": PackItem,
    "pack-remove": PackItem,
}


def _about(action: str, told: Sequence[Item]) -> Item | None:
    """The item an action is about: the first of its kind."""
    kind = _ABOUT.get(action)
    return next((item for item in told if kind and isinstance(item, kind)), None)


def title(action: str, told: Sequence[Item]) -> str:
    """An entry's title: the change it is about where one line says it (a pack's change
    with how many more it made), else what was done."""
    about = _about(action, told)
    if about is None:
        return ACTION_TITLES[action]
    more = len(told) - 1 if isinstance(about, PackItem) else 0
    return about.title() + (f" (and {more} more)" if more else "")


def details(action: str, told: Sequence[Item]) -> list[str]:
    """The lines an entry's title does not already say (all of them under an ``and more``)."""
    about = _about(action, told)
    if isinstance(about, PackItem) and len(told) > 1:
        return lines(told)
    return [item.line() for item in told if item is not about]


_UNCHANGED = {"complete": "backend", "incomplete": "backend", "set-version": "version"}


def message(action: str, told: Sequence[Item], *, reverted: str = "") -> str:
    """What a command that made the change says it did."""
    if action == "record":
        return f"Recorded: {sentence(told)}"
    if action == "revert":
        return f"Reverted {reverted}: {sentence(told)}"
    about = _about(action, told)
    if isinstance(about, PackItem):
        return sentence(told)
    if isinstance(about, BackendChange) and about.new:
        return f"{about.title()} at {when(about.completed_at)}"
    if about is not None:
        return about.title()
    return "; ".join([*(item.title() for item in told), f"{_UNCHANGED[action]} unchanged"])
