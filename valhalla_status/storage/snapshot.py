"""What the read commands and a change need of a long history, kept between runs.

Of the history, ``show``, ``summary``, ``pack list|show`` and ``history --limit N`` need only
how many entries there are since the newest ``init``, each pack's ``since`` and the newest few
entries (:mod:`.recent`); a change needs how many entries there are and when the newest was
made, and whether the whole history explains the main file (:mod:`.transaction`). Working
these out lists every file name of the history folder and orders them (seconds at 100,000
entries), and checking the history reads every entry. So they are kept in the repository's git
folder
(``recent-<key>.json``, beside the landings), with what they were worked out from: the commit
checked out, and the history folder and each of its subfolders as the file system describes
them (inode, modification and change times) with a digest of the names in each. A read that
finds all of these unchanged uses what was kept; anything else reads the history again.

A folder changed again within the granularity of its timestamps looks unchanged (git calls
this racy): a folder whose times are not older than the record by :data:`RACY_NS` is listed
again and its names compared by digest. Only a clean history folder is kept: every file an
entry in its own subfolder (no pending, temporary, flat or unknown file). Outside git, in a
shallow clone, or in a git folder that cannot be written, nothing is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .landing import GitState, Landings, git_state, keep_json, landings, read_kept, store_path
from .layout import ENTRY_NAME, SUBFOLDER, entry_place

FORMAT = 2
NEWEST_KEPT = 100  # entries kept in full order: more than `history`'s default page of 20
RACY_NS = 2_000_000_000  # the coarsest timestamps a file system keeps (FAT's two seconds)

Stat = tuple[int, int, int]  # inode, modification and change time (ns)
# What an entry does: its action, the packs whose since it sets, and when it was made.
Effect = tuple[str, list[str], int]
# An entry in landing order: its file name, when it landed, and what it does (times in
# microseconds since the epoch, see landing.micros).
Row = tuple[str, int, Effect]


@dataclass(frozen=True)
class Snapshot:
    """The history as the read commands and a change need it: the number of entries since the
    newest ``init``; the newest of them (oldest first) as (name, place, landing time in
    microseconds); when each pack's status was last set; when the history started (the
    ``init``'s landing; None: no ``init``), the since of every pack not set after it; the
    newest time an entry was made, and the place of that entry; and the SHA-256 of the main
    file the whole history was checked to explain (None: not checked)."""

    total: int
    newest: list[tuple[str, str, int]]
    since: dict[str, int]
    start: int | None
    made: tuple[int, str] | None = None
    explained: str | None = None

    def since_of(self, pack: str) -> int | None:
        return self.since.get(pack, self.start)

    @classmethod
    def of(cls, order: list[Row], places: dict[str, str], explained: str | None) -> Snapshot:
        """The snapshot of the history in landing ``order`` (from its ``init``), its entries at
        ``places``."""
        since: dict[str, int] = {}
        made: tuple[int, str] | None = None
        for name, landed, (_, setting, at) in order:
            since.update(dict.fromkeys(setting, landed))
            if made is None or at >= made[0]:
                made = (at, places[name])
        start = order[0][1] if order and order[0][2][0] == "init" else None
        newest = [(name, places[name], landed) for name, landed, _ in order[-NEWEST_KEPT:]]
        return cls(len(order), newest, since, start, made, explained)

    def then(self, row: Row, place: str, explained: str) -> Snapshot:
        """The snapshot after the entry ``row`` (at ``place``) was added, not committed (it
        lands last, at its own time or the last landing), with the main file ``explained``."""
        name, _, (action, setting, at) = row
        landed = max(at, self.newest[-1][2]) if self.newest else at
        made = (at, place) if self.made is None or at >= self.made[0] else self.made
        return Snapshot(
            self.total + 1,
            [*self.newest, (name, place, landed)][-NEWEST_KEPT:],
            {**self.since, **dict.fromkeys(setting, landed)},
            self.start if self.total or action != "init" else landed,
            made,
            explained,
        )


def _stat(path: Path) -> Stat | None:
    """A folder's identity and times; None: not a real folder (gone, a link, a file)."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(found.st_mode):
        return None
    return found.st_ino, found.st_mtime_ns, found.st_ctime_ns


def _digest(names: Iterable[str]) -> str:
    return hashlib.sha256("\0".join(sorted(names)).encode("utf-8", "surrogateescape")).hexdigest()


def _entry_place(name: str, place: str) -> str:
    """``place`` when it is where the entry ``name`` is written; ValueError otherwise (what is
    kept never names a file outside the history folder)."""
    if not ENTRY_NAME.fullmatch(name) or place != entry_place(name):
        raise ValueError(f"not an entry's place: {place!r}")
    return place


def _listed(path: Path) -> list[str] | None:
    try:
        return os.listdir(path)
    except OSError:
        return None


class Kept:
    """The snapshot of the history folder ``folder``: :meth:`recall` it, :meth:`keep` one, or
    :meth:`advance` it past a change.

    Made before the history is read: the commit and the clock are taken then, so that what
    is kept never claims more than what was read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started = time.time_ns()
        # No history folder, nothing to keep: git is not asked (a schema_version 1 manifest).
        self.state: GitState | None = git_state(folder) if folder.is_dir() else None
        kind, self.commit, git_dir = self.state or ("none", "", None)
        self.store: Path | None = None
        if kind == "full" and git_dir is not None:
            self.store = store_path(git_dir, folder, "recent")
        self._written = 0
        self._folders: dict[str, list[Any]] = {}
        self._landings: Landings | None = None
        self.snapshot: Snapshot | None = None  # what was recalled or kept, while it holds

    def landings(self) -> Landings:
        """The landings of the history on the commit checked out when this was made, read
        once (see :func:`.landing.landings`)."""
        if self._landings is None:
            self._landings = landings(self.folder, state=self.state)
        return self._landings

    def recall(self, newest: int) -> Snapshot | None:
        """What was kept, if it still holds and has the ``newest`` entries asked for."""
        kept = self._read()
        if kept is None or not self._unchanged(self._folders):
            return None
        if newest > len(kept.newest) and kept.total > len(kept.newest):
            return None
        self.snapshot = kept
        return kept

    def explains(self, main: str) -> bool:
        """Whether what was kept still holds and says the whole history explains the main file
        whose SHA-256 is ``main``: what a full read would keep again, unchanged."""
        kept = self.recall(0)
        return kept is not None and kept.explained == main

    def still_holds(self) -> bool:
        """Whether the folders recalled are still unchanged (after the main file was read)."""
        return self._unchanged(self._folders)

    def _read(self) -> Snapshot | None:
        if self.store is None:
            return None
        try:
            data = json.loads(read_kept(self.store))
            if data["format"] != FORMAT or data["commit"] != self.commit:
                return None
            self._written = int(data["written"])
            self._folders = {
                str(name): [int(inode), int(modified), int(changed), str(names)]
                for name, (inode, modified, changed, names) in data["folders"].items()
            }
            if "" not in self._folders:
                raise KeyError("the history folder itself")
            made = data["made"]
            newest = [(str(n), str(p), int(t)) for n, p, t in data["newest"]]
            if made is not None:
                _entry_place(made[1].rpartition("/")[2], made[1])
            return Snapshot(
                int(data["total"]),
                [(name, _entry_place(name, place), when) for name, place, when in newest],
                {str(k): int(v) for k, v in data["since"].items()},
                None if data["start"] is None else int(data["start"]),
                None if made is None else (int(made[0]), str(made[1])),
                None if data["explained"] is None else str(data["explained"]),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self._folders = {}
            return None  # none yet, or unreadable: read the history again

    def _unchanged(self, folders: dict[str, list[Any]]) -> bool:
        for name, (inode, modified, changed, names) in folders.items():
            path = self.folder / name if name else self.folder
            if _stat(path) != (inode, modified, changed):
                return False
            if max(modified, changed) >= self._written - RACY_NS:
                listed = _listed(path)
                if listed is None or _digest(listed) != names:
                    return False
        return True

    def keep(self, snapshot: Snapshot, places: Iterable[str]) -> None:
        """Keep ``snapshot``, worked out from the entry files at ``places`` (``1a/<name>``),
        when those are exactly the files of the folder now and the folder is clean."""
        if self.store is None:
            return
        folders = self._folders_holding(set(places))
        if folders is not None:
            self._write(snapshot, folders)

    def advance(self, row: Row, place: str, explained: str) -> None:
        """Keep the snapshot recalled or kept, past the entry ``row`` this process just wrote
        at ``place`` (``1a/<name>``, under the lock), when the folders it touched hold that
        entry more and nothing else changed."""
        subfolder, _, name = place.partition("/")
        untouched = {k: v for k, v in self._folders.items() if k not in ("", subfolder)}
        if self.snapshot is None or not self._folders or not self._unchanged(untouched):
            return
        top = self._relisted("", subfolder, new=False)
        inside = self._relisted(subfolder, name, new=True)
        if top is not None and inside is not None:
            folders = {**self._folders, "": top, subfolder: inside}
            self._write(self.snapshot.then(row, place, explained), folders)

    def _relisted(self, folder: str, added: str, *, new: bool) -> list[Any] | None:
        """The record of ``folder`` now, when it holds what it held and ``added`` (which may
        have been there already unless ``new``); None otherwise."""
        path = self.folder / folder if folder else self.folder
        before = _stat(path)
        listed = _listed(path)
        if before is None or listed is None or _stat(path) != before or added not in listed:
            return None
        held = self._folders[folder][3] if folder in self._folders else _digest([])
        now = _digest(listed)
        if held != _digest([other for other in listed if other != added]) and (new or held != now):
            return None  # something else changed there too
        return [*before, now]

    def _write(self, snapshot: Snapshot, folders: dict[str, list[Any]]) -> None:
        assert self.store is not None
        self.snapshot, self._folders = snapshot, folders
        keep_json(
            self.store,
            {
                "format": FORMAT,
                "commit": self.commit,
                "written": self.started,
                "folders": folders,
                "total": snapshot.total,
                "newest": snapshot.newest[-NEWEST_KEPT:],
                "since": snapshot.since,
                "start": snapshot.start,
                "made": snapshot.made,
                "explained": snapshot.explained,
            },
        )

    def _folders_holding(self, places: set[str]) -> dict[str, list[Any]] | None:
        """Each folder's record, when the folder holds exactly the files at ``places``, each
        in a subfolder; None otherwise (or when a folder changed while it was listed)."""
        folders: dict[str, list[Any]] = {}
        seen = 0
        for name in ["", *sorted({place.partition("/")[0] for place in places})]:
            path = self.folder / name if name else self.folder
            before = _stat(path)
            listed = _listed(path)
            if before is None or listed is None or _stat(path) != before:
                return None
            if name and any(f"{name}/{inside}" not in places for inside in listed):
                return None
            if not name and any(not SUBFOLDER.fullmatch(inside) for inside in listed):
                return None
            seen += len(listed) if name else 0
            folders[name] = [*before, _digest(listed)]
        if seen != len(places) or set(_listed(self.folder) or ()) != set(folders) - {""}:
            return None
        return folders
