"""One change to a manifest, from the lock to the site.

A :class:`Transaction` takes the manifest's lock once, reads its files and validates them once,
applies a change and writes it, and, when asked, rebuilds the site from what it wrote, all
under that one lock: the last build is always of the last write, and nothing is read twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..manifest import (
    InconsistentManifestError,
    load_manifest,
    read_manifest_text,
    tidy_history,
    write_manifest,
)
from ..models import LandedEntry, pending_while_complete
from ..rules.changes import sets_since
from ..rules.history import entry_id
from .landing import from_micros, micros
from .layout import entry_place, history_dir, history_shown, recorded_places
from .locking import manifest_lock
from .recent import read_explained
from .snapshot import Kept

if TYPE_CHECKING:
    from ..models import HistoryEntry, Manifest
    from ..site import BuildResult


@dataclass(frozen=True)
class SiteOptions:
    """Where and how to build the site: its folder, templates that replace the built-in ones,
    the base URL (None: the manifest's), and what signs it (see :func:`site.build_site`)."""

    folder: str | os.PathLike[str]
    templates: str | os.PathLike[str] | None = None
    base_url: str | None = None
    sign: Callable[[dict[str, bytes], Path], dict[str, bytes]] | None = None


@dataclass(frozen=True)
class Past:
    """What a change needs of the history it adds to: how many entries it holds (since its
    ``init``), when the newest of them was made, and where that one is written (`` (file)``,
    asked only for a refusal)."""

    length: int
    newest: datetime
    where: Callable[[], str]

    @classmethod
    def of(cls, manifest: Manifest, path: str | os.PathLike[str] | None = None) -> Past:
        """The past of a manifest read whole (or built in memory: ``path`` None)."""
        newest = _newest_time(manifest)
        return cls(len(manifest.history), newest, lambda: _newest_place(path, manifest))


def _newest_time(manifest: Manifest) -> datetime:
    """The time the newest recorded change was made (not when it landed: a change is stamped
    by the clock of the one who makes it)."""
    newest = max((entry.at for entry in manifest.history), default=None)
    if manifest.schema_version == 1 or newest is None:
        return max(newest or manifest.system.updated_at, manifest.system.updated_at)
    return newest


def _newest_place(path: str | os.PathLike[str] | None, manifest: Manifest) -> str:
    """`` (file)``: where the newest recorded change is written; '' for a manifest in memory."""
    if path is None:
        return ""
    shown = os.fspath(path)
    if manifest.schema_version == 2 and manifest.history:
        ident = entry_id(max(manifest.history, key=lambda entry: entry.at))
        if ident:
            name = f"{ident}.yaml"
            place = recorded_places(history_dir(shown)).get(name) or entry_place(name)
            return f" ({history_shown(shown)}/{place})"
    return f" ({shown})"


class Transaction:
    """The manifest at ``path`` as read under its lock (see :func:`transaction`): whole, or,
    for a change that builds nothing, its main file with the newest entry and the ``past``
    what was kept says (see :mod:`.snapshot`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        manifest: Manifest,
        problems: Exception | None,
        *,
        kept: Kept | None = None,
        past: Past | None = None,
    ):
        self.path = path
        self.read = manifest  # as read, even when it has problems only a change may settle
        self.past = past or Past.of(manifest, path)
        self._problems = problems
        self._kept = kept
        self._written: Manifest | None = None

    @property
    def manifest(self) -> Manifest:
        """The manifest as it stands now: what this transaction wrote, else what it read (a
        manifest with problems raises them)."""
        if self._written is not None:
            return self._written
        if self._problems is not None:
            raise self._problems
        return self.read

    def apply(self, change: Callable[[Manifest, Past], Manifest | None]) -> Manifest | None:
        """Apply ``change`` to the manifest read and write its result; None: nothing changed.

        A manifest whose only problem is a pending pack under a complete backend takes exactly
        the changes that settle it; any other change raises its problems.
        """
        new = change(self.read, self.past)
        if self._problems is not None and (new is None or pending_while_complete(new)):
            raise self._problems
        if new is None:
            return None
        appended = new.history[: len(self.read.history)] == self.read.history
        on_disk = len(self.read.history) if appended else 0
        main = write_manifest(self.path, new, history_on_disk=on_disk)
        self._written = new
        entry = new.history[-1] if new.history else None
        if main and appended and len(new.history) == on_disk + 1:
            self._keep_past(entry, main)
        return new

    def _keep_past(self, entry: HistoryEntry | None, main: str) -> None:
        """Keep what was kept of the history past the entry just written, with the main file
        written (its SHA-256 ``main``)."""
        if self._kept is None or not isinstance(entry, LandedEntry):
            return
        name = f"{entry.id}.yaml"
        made = micros(entry.at)
        row = (name, made, (entry.action, sets_since(entry.action, entry.changes), made))
        self._kept.advance(row, entry_place(name), main)

    def build(self, site: SiteOptions) -> BuildResult:
        """Build the site of the manifest as it stands now."""
        from ..site import build_site

        return build_site(
            self.manifest,
            site.folder,
            templates_dir=site.templates,
            base_url=site.base_url,
            manifest_path=self.path,
            sign=site.sign,
        )


@contextmanager
def transaction(
    path: str | os.PathLike[str], *, explained: bool = True, whole: bool = True
) -> Iterator[Transaction]:
    """Hold the manifest's lock, finish what a killed writer left, and read the manifest.

    A missing manifest is said before any lock file is made. ``explained=False`` reads a
    manifest whose values its history does not explain (to record them). ``whole=False``
    (a change that builds no site) reads only the main file and the newest entry when what
    was kept of the history says the whole of it was checked to explain that main file.
    """
    if not os.path.lexists(path):
        read_manifest_text(path)  # raises the "run `valhalla-status init`" error
    with manifest_lock(path):
        tidy_history(path)
        kept = Kept(history_dir(path))
        recalled = None if whole or not explained else read_explained(path, kept)
        if recalled is not None:
            snapshot = kept.snapshot
            assert snapshot is not None and snapshot.made is not None
            at, place = snapshot.made
            where = f" ({history_shown(os.fspath(path))}/{place})"
            past = Past(recalled.total, from_micros(at), lambda: where)
            yield Transaction(path, recalled.manifest, None, kept=kept, past=past)
            return
        try:
            manifest = load_manifest(path, explained=explained, kept=kept)
            read = Transaction(path, manifest, None, kept=kept)
        except InconsistentManifestError as exc:
            read = Transaction(path, exc.manifest, exc)
        yield read


def bring_site(
    txn: Transaction, site: SiteOptions | None
) -> tuple[BuildResult | None, Exception | None]:
    """Build the site, after a change or none: a site that already holds what the build writes
    is left untouched (the build says it did not change it). Returns the build, or why it
    failed: the change stands either way, so the caller says both."""
    if site is None:
        return None, None
    try:
        return txn.build(site), None
    except Exception as exc:  # any failure of the build, said with the change it follows
        return None, exc
