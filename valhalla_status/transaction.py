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
from pathlib import Path
from typing import TYPE_CHECKING

from .locking import manifest_lock
from .manifest import (
    InconsistentManifestError,
    load_manifest,
    read_manifest_text,
    tidy_history,
    write_manifest,
)
from .models import pending_while_complete

if TYPE_CHECKING:
    from .models import Manifest
    from .site import BuildResult


@dataclass(frozen=True)
class SiteOptions:
    """Where and how to build the site: its folder, templates that replace the built-in ones,
    the base URL (None: the manifest's), and what signs it (see :func:`site.build_site`)."""

    folder: str | os.PathLike[str]
    templates: str | os.PathLike[str] | None = None
    base_url: str | None = None
    sign: Callable[[dict[str, bytes], Path], dict[str, bytes]] | None = None


class Transaction:
    """The manifest at ``path`` as read under its lock (see :func:`transaction`)."""

    def __init__(
        self, path: str | os.PathLike[str], manifest: Manifest, problems: Exception | None
    ):
        self.path = path
        self.read = manifest  # as read, even when it has problems only a change may settle
        self._problems = problems
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

    def apply(self, change: Callable[[Manifest], Manifest | None]) -> Manifest | None:
        """Apply ``change`` to the manifest read and write its result; None: nothing changed.

        A manifest whose only problem is a pending pack under a complete backend takes exactly
        the changes that settle it; any other change raises its problems.
        """
        new = change(self.read)
        if self._problems is not None and (new is None or pending_while_complete(new)):
            raise self._problems
        if new is None:
            return None
        appended = new.history[: len(self.read.history)] == self.read.history
        write_manifest(self.path, new, history_on_disk=len(self.read.history) if appended else 0)
        self._written = new
        return new

    def build(self, site: SiteOptions) -> BuildResult:
        """Build the site of the manifest as it stands now."""
        from .site import build_site

        return build_site(
            self.manifest,
            site.folder,
            templates_dir=site.templates,
            base_url=site.base_url,
            manifest_path=self.path,
            sign=site.sign,
        )


@contextmanager
def transaction(path: str | os.PathLike[str], *, explained: bool = True) -> Iterator[Transaction]:
    """Hold the manifest's lock, finish what a killed writer left, and read the manifest.

    A missing manifest is said before any lock file is made. ``explained=False`` reads a
    manifest whose values its history does not explain (to record them).
    """
    if not os.path.lexists(path):
        read_manifest_text(path)  # raises the "run `valhalla-status init`" error
    with manifest_lock(path):
        tidy_history(path)
        try:
            read = Transaction(path, load_manifest(path, explained=explained), None)
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
