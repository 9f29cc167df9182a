"""What the read commands show, read in proportion to it.

``show``, ``summary``, ``pack list|show`` and ``history`` need the main file, the time of the
newest change, each pack's ``since`` and the newest few entries, not the whole history. They
read the main file, the history folder's file names (each names the time its change was made),
the landing order from git (:mod:`.landing`), and in full only the newest entries they show.

Which packs' ``since`` each entry sets is kept beside the landings, in the repository's git
folder (``effects-<key>.json``, one file per history folder, an entry per file name: a recorded
entry never changes, and its name carries a hash of its text), so an entry is read for it once.
Outside git nothing is kept and the entries are read as far back as the answer needs. What
all this comes to is kept whole as well (:mod:`.snapshot`): a read that finds it still holds
reads only the main file and the newest entries it shows. Whether the history explains the
main file, and every entry's own rules, are what ``validate`` (and ``build``) check, reading
everything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ManifestError, ValhallaError
from ..manifest import (
    decode_manifest_bytes,
    parse_history,
    parse_manifest,
    parse_recent,
    read_manifest_file,
)
from ..models import Manifest, format_timestamp
from ..rules.changes import sets_since
from ..rules.formats import parse_timestamp
from .files import os_reason
from .landing import (
    Landings,
    from_micros,
    keep_json,
    landing_order,
    landings,
    micros,
    read_kept,
)
from .layout import (
    History,
    digest,
    history_dir,
    history_shown,
    read_entry_file,
    read_state,
    refuse_linked_folder,
    refuse_shared_folder,
)
from .snapshot import Effect, Kept, Row, Snapshot


@dataclass(frozen=True)
class Recent:
    """The manifest as the read commands show it: the main file's state with the ``newest``
    entries of its history (in landing order), how many entries there are since the newest
    ``init``, and each pack's ``since``."""

    manifest: Manifest
    total: int
    since: dict[str, str]


def read_recent(path: str | os.PathLike[str], newest: int = 1) -> Recent:
    """The manifest at ``path`` with its ``newest`` history entries read in full (at least the
    newest one: it gives ``updated_at``)."""
    shown = os.fspath(path)
    folder = history_dir(path)
    kept = Kept(folder)
    recalled = _recalled(path, kept, newest)
    if recalled is not None:
        return recalled
    # Each entry's bytes stand for the name of its file (a pending one, maybe); none is read.
    main, files = read_state(path, lambda: read_manifest_file(path), read=str.encode)
    text = decode_manifest_bytes(main, shown)
    if not files.entries and not files.unknown:
        manifest = parse_manifest(text, path)  # schema_version 1, or no history: all of it
        return Recent(manifest, len(manifest.history), _since_of(manifest))
    if files.unknown:
        parse_history(History({}, files.unknown), history_shown(shown))  # raises them
    found = landings(folder, state=kept.state)
    effects = _Effects(folder, files.entries, found, history_shown(shown))
    known = {name: effects.of(name) for name in files.entries}
    effects.keep()
    # The entries' own order: the time each was made, then the order they were made in.
    named = sorted(known, key=lambda name: (known[name][2], _sequence(name), name))
    landed = landing_order([(name, known[name][2]) for name in named], found)
    order = [(named[index], when, known[named[index]]) for index, when in landed]
    order = order[_newest_init(order) :]
    newest_order = [(name, when) for name, when, _ in order[-max(newest, 1) :]]
    manifest = parse_recent(text, path, _read_entries(folder, files.entries, newest_order, shown))
    places = {name: files.entries[name].decode() for name in files.entries}
    snapshot = Snapshot.of(order, places, None)
    kept.keep(snapshot, places.values())
    return Recent(manifest, len(order), _since(snapshot, manifest))


def read_explained(path: str | os.PathLike[str], kept: Kept) -> Recent | None:
    """For a change, under the lock: the manifest at ``path`` with its newest history entry,
    when what was kept says that the whole history was checked to explain exactly this main
    file and nothing changed since; None: read and check it all."""
    return _recalled(path, kept, 1, explained=True)


def _recalled(
    path: str | os.PathLike[str], kept: Kept, newest: int, *, explained: bool = False
) -> Recent | None:
    """The manifest read with what was kept of its history (see :mod:`.snapshot`); None:
    nothing kept holds, read it all."""
    snapshot = kept.recall(max(newest, 1))
    if snapshot is None:
        return None
    shown = os.fspath(path)
    refuse_linked_folder(kept.folder)
    refuse_shared_folder(path)
    main = read_manifest_file(path)
    if not kept.still_holds():
        return None  # a writer moved on while the main file was read
    if explained and digest(main) != snapshot.explained:
        return None
    text = decode_manifest_bytes(main, shown)
    tail = snapshot.newest[-max(newest, 1) :]
    places = {name: place.encode() for name, place, _ in tail}
    order = [(name, landed) for name, _, landed in tail]
    manifest = parse_recent(text, path, _read_entries(kept.folder, places, order, shown))
    return Recent(manifest, snapshot.total, _since(snapshot, manifest))


def _newest_init(order: list[Row]) -> int:
    """Where the history starts: at its newest ``init``."""
    for index in range(len(order) - 1, -1, -1):
        if order[index][2][0] == "init":
            return index
    return 0


def _since(snapshot: Snapshot, manifest: Manifest) -> dict[str, str]:
    """Each pack's since: when the newest change that set its status (or added it) landed,
    else when the history started (its ``init``); a pack neither covers has none."""
    since = {}
    for pack in manifest.packs:
        landed = snapshot.since_of(pack.id)
        if landed is not None:
            since[pack.id] = format_timestamp(from_micros(landed))
    return since


def _sequence(name: str) -> int:
    """The order an entry was made in, from its file name (``<at>-<seq>-<hash>.yaml``)."""
    return int(name.split("-")[1])


def _read_entries(
    folder: Path, files: dict[str, bytes], order: list[tuple[str, int]], shown: str
) -> list[Any]:
    """The entries named in ``order``, read and checked in full, each with its landing time."""
    raw: dict[str, bytes] = {}
    for name, _ in order:
        data = _read_file(folder / files[name].decode())
        if data is not None:
            raw[name] = data
    places = {name: files[name].decode() for name, _ in order}
    entries, problems = parse_history(History(raw, (), places), history_shown(shown))
    missing = [name for name, _ in order if name not in raw]
    problems += [f"{history_shown(shown)}/{places[name]}: not a regular file" for name in missing]
    if problems:
        raise ManifestError(problems)
    by_name = {f"{entry.id}.yaml": entry for entry in entries}
    return [
        by_name[name].model_copy(update={"landed_at": from_micros(landed)})
        for name, landed in order
    ]


def _read_file(path: Path) -> bytes | None:
    """An entry file's bytes (None: not a regular file); a file that cannot be read is named."""
    try:
        return read_entry_file(path)
    except OSError as exc:
        raise ValhallaError(f"cannot read {exc.filename or path}: {os_reason(exc)}") from None


def _since_of(manifest: Manifest) -> dict[str, str]:
    from ..rules.history import pack_since

    return pack_since(manifest)


def _is_effect(value: Any) -> bool:
    return (
        type(value) in (list, tuple)
        and len(value) == 3
        and type(value[0]) is str
        and type(value[1]) is list
        and type(value[2]) is int
    )


class _Effects:
    """Which packs' since each entry sets, read once per entry and kept in the git folder."""

    def __init__(
        self, folder: Path, files: dict[str, bytes], found: Landings, folder_shown: str
    ) -> None:
        self.folder = folder
        self.folder_shown = folder_shown
        self.files = files
        self.store = (
            None
            if found.kept_in is None
            else found.kept_in.with_name(found.kept_in.name.replace("landings-", "effects-"))
        )
        self.known = self._read_store()
        self.changed = False

    def _read_store(self) -> dict[str, Any]:
        if self.store is None:
            return {}
        try:
            data = json.loads(read_kept(self.store))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: read the entries again
        return data if isinstance(data, dict) else {}

    def of(self, name: str) -> Effect:
        effect = self.known.get(name)
        if not _is_effect(effect):  # not read yet (or kept in another shape): read it
            effect = self._read(name)
            self.known[name] = effect
            self.changed = True
        return effect  # type: ignore[return-value]

    def _read(self, name: str) -> Effect:
        raw = _read_file(self.folder / self.files[name].decode()) or b""
        try:
            data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            made = parse_timestamp(data["at"]) if isinstance(data["at"], str) else None
            if made is not None:
                action = data["action"]
                return str(action), sets_since(action, data["changes"]), micros(made)
        except Exception:  # anything unexpected: the entry read by the rules, its problems said
            pass
        place = self.files[name].decode()
        entries, problems = parse_history(
            History({name: raw}, (), {name: place}), self.folder_shown
        )
        if problems or not entries:
            raise ManifestError(problems or [f"{self.folder_shown}/{place}: not a history entry"])
        entry = entries[0]
        return entry.action, sets_since(entry.action, entry.changes), micros(entry.at)

    def keep(self) -> None:
        """Write what was read back to the store (the entries present now, no others)."""
        if self.store is None or not self.changed:
            return
        keep_json(self.store, {name: self.known[name] for name in self.files if name in self.known})
