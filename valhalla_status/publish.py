"""From the manifest file to what is published: the site and the read-only documents.

Both work from the manifest's path rather than a loaded manifest, because their fast paths work
on the file's bytes: read-only documents come from the content-addressed cache
(:mod:`valhalla_status.cache`), and a site already built from the same inputs is confirmed from
its build record (:mod:`valhalla_status.fresh`), in both cases without loading pydantic.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .cache import ManifestState, manifest_documents, read_manifest_state, store_documents
from .fresh import BuildResult, build_key, record_build, site_folder, site_is_current
from .locking import lock_path, manifest_lock

if TYPE_CHECKING:
    from .models import Manifest


def documents_of(manifest: Manifest) -> dict[str, Any]:
    """What the cache keeps of a manifest: ``status.json`` and the whole history, newest first."""
    from .documents import history_document, status_document

    return {
        "status": status_document(manifest),
        "history": history_document(manifest, None)["history"],
    }


def parse_manifest_state(path: str | os.PathLike[str], state: ManifestState | None) -> Manifest:
    """The manifest from a state already read from ``path`` (None: read the files themselves)."""
    from .manifest import load_manifest, parse_state

    if state is None:
        return load_manifest(path)
    return parse_state(path, state.main, state.history)


def read_documents(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"status": status.json, "history": [...]}`` of the manifest at ``path``."""
    return manifest_documents(path, lambda state: documents_of(parse_manifest_state(path, state)))


def publish_site(
    path: str | os.PathLike[str],
    site_dir: str | os.PathLike[str],
    *,
    templates_dir: str | None = None,
    base_url: str | None = None,
) -> BuildResult:
    """Build the site from the manifest file as it is now, holding the manifest's lock.

    Building what was just written, outside the lock, lets a slower process overwrite the site
    of a newer manifest with an older one; under the lock, the last build is of the last write.
    A site recorded as built from these very inputs, and untouched since, is left as it is.
    """
    site_folder(site_dir, manifest_path=path, templates_dir=templates_dir)  # before any lock file
    if not os.path.lexists(lock_path(path)):
        parse_manifest_state(path, None)  # an invalid manifest fails before leaving a lock file
    with manifest_lock(path):
        state = read_manifest_state(path)
        raw = None if state is None else state.key()
        key = None if raw is None else build_key(raw, templates_dir, base_url)
        if key is not None:
            files = site_is_current(site_dir, key)
            if files is not None:
                return BuildResult(os.fspath(site_dir), files, changed=False)
        from .site import build_site

        manifest = parse_manifest_state(path, state)
        if raw is not None:
            store_documents(raw, documents_of(manifest))  # readers of these bytes skip pydantic
        result = build_site(
            manifest, site_dir, templates_dir=templates_dir, base_url=base_url, manifest_path=path
        )
        if key is not None:
            record_build(site_dir, key)
        return result
