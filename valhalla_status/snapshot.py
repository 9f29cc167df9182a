"""What the read commands need of a long history, kept between runs.

Of the history, ``show``, ``summary``, ``pack list|show`` and ``history --limit N`` need only
how many entries there are since the newest ``init``, each pack's ``since`` and the newest few
entries (:mod:`.recent`). Working these out lists every file name of the history folder and
orders them: seconds at 100,000 entries. So they are kept in the repository's git folder
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

from .landing import git_state, keep_json, store_path
from .layout import SUBFOLDER

FORMAT = 1
NEWEST_KEPT = 100  # entries kept in full order: more than `history`'s default page of 20
RACY_NS = 2_000_000_000  # the coarsest timestamps a file system keeps (FAT's two seconds)

Stat = tuple[int, int, int]  # inode, modification and change time (ns)


@dataclass(frozen=True)
class Snapshot:
    """The history as the read commands need it: the number of entries since the newest
    ``init``; the newest of them (oldest first) as (name, place, landing time in
    microseconds); when each pack's status was last set; and when the history started (the
    ``init``'s landing; None: no ``init``), the since of every pack not set after it."""

    total: int
    newest: list[tuple[str, str, int]]
    since: dict[str, int]
    start: int | None

    def since_of(self, pack: str) -> int | None:
        return self.since.get(pack, self.start)


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


def _listed(path: Path) -> list[str] | None:
    try:
        return os.listdir(path)
    except OSError:
        return None


class Kept:
    """The snapshot of the history folder ``folder``: :meth:`recall` it, or :meth:`keep` one.

    Made before the history is read: the commit and the clock are taken then, so that what
    is kept never claims more than what was read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.since = time.time_ns()
        kind, self.commit, git_dir = git_state(folder)
        full = kind == "full" and git_dir is not None
        self.store = store_path(git_dir, folder, "recent") if full and git_dir else None
        self._written = 0
        self._folders: dict[str, list[Any]] = {}

    def recall(self, newest: int) -> Snapshot | None:
        """What was kept, if it still holds and has the ``newest`` entries asked for."""
        kept = self._read()
        if kept is None or not self._unchanged(self._folders):
            return None
        if newest > len(kept.newest) and kept.total > len(kept.newest):
            return None
        return kept

    def still_holds(self) -> bool:
        """Whether the folders recalled are still unchanged (after the main file was read)."""
        return self._unchanged(self._folders)

    def _read(self) -> Snapshot | None:
        if self.store is None:
            return None
        try:
            data = json.loads(self.store.read_bytes())
            if data["format"] != FORMAT or data["commit"] != self.commit:
                return None
            self._written = int(data["written"])
            self._folders = {
                str(name): [int(inode), int(modified), int(changed), str(names)]
                for name, (inode, modified, changed, names) in data["folders"].items()
            }
            return Snapshot(
                int(data["total"]),
                [(str(n), str(p), int(t)) for n, p, t in data["newest"]],
                {str(k): int(v) for k, v in data["since"].items()},
                None if data["start"] is None else int(data["start"]),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self._folders = {}
            return None  # none yet, or unreadable: read the history again

    def _unchanged(self, folders: dict[str, list[Any]]) -> bool:
        if "" not in folders:
            return False
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
        if folders is None:
            return
        keep_json(
            self.store,
            {
                "format": FORMAT,
                "commit": self.commit,
                "written": self.since,
                "folders": folders,
                "total": snapshot.total,
                "newest": snapshot.newest[-NEWEST_KEPT:],
                "since": snapshot.since,
                "start": snapshot.start,
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
