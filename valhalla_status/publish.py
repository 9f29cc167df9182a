"""From the manifest to what is published: the site, built under the manifest's lock."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .locking import lock_path, manifest_lock, manifest_stamp, stamp_left
from .sitefolder import site_folder

if TYPE_CHECKING:
    from .models import Manifest
    from .site import BuildResult


def publish_site(
    path: str | os.PathLike[str],
    site_dir: str | os.PathLike[str],
    *,
    manifest: Manifest | None = None,
    templates_dir: str | None = None,
    base_url: str | None = None,
) -> BuildResult:
    """Build the site of the manifest at ``path``, holding the manifest's lock.

    ``manifest`` is what this thread last wrote to ``path`` (a change hands it over): it is
    built as it is if the files are still what the write left, else they are read again.
    Building what was written, outside the lock, would let a slower process overwrite the site
    of a newer manifest with an older one; under the lock, the last build is of the last write.
    """
    from .manifest import load_manifest
    from .site import build_site

    site_folder(site_dir, manifest_path=path, templates_dir=templates_dir)  # before any lock file
    expected = stamp_left(path) if manifest is not None else None
    if not os.path.lexists(lock_path(path)):
        # Fail before leaving a lock file; what is read stands if nothing changes meanwhile.
        expected = manifest_stamp(path)
        manifest = load_manifest(path)
        if manifest_stamp(path) != expected:
            expected = None
    with manifest_lock(path):
        if manifest is None or expected is None or manifest_stamp(path) != expected:
            manifest = load_manifest(path)
        return build_site(
            manifest, site_dir, templates_dir=templates_dir, base_url=base_url, manifest_path=path
        )


def state_files(manifest: Manifest) -> dict[str, bytes]:
    """The site's files that follow from the manifest alone (not from the templates or a
    ``--base-url``): ``status.json`` and the history pages, as :func:`site.render_site`
    writes them."""
    from .documents import history_pages, status_document, to_json

    files = {"status.json": to_json(status_document(manifest))}
    files.update((path, to_json(page)) for path, page in history_pages(manifest).items())
    return {path: text.encode() for path, text in files.items()}


def refresh_site(
    path: str | os.PathLike[str], site_dir: str | os.PathLike[str], manifest: Manifest
) -> BuildResult | None:
    """Rebuild the site unless it already shows ``manifest``; the build (None: none was needed).

    For a change that changed nothing: the site may still be missing, or built from another
    state (an earlier rebuild failed, or the change was made with ``--no-build``). Checking
    costs rendering and reading ``status.json`` and the history pages, not the whole site.
    """
    from .site import holds_files

    if holds_files(site_dir, state_files(manifest)):
        return None
    return publish_site(path, site_dir, manifest=manifest)
