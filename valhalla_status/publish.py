"""From the manifest to what is published: the site, built under the manifest's lock."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .sitefolder import site_folder

if TYPE_CHECKING:
    from .models import Manifest
    from .site import BuildResult


def publish_site(
    path: str | os.PathLike[str],
    site_dir: str | os.PathLike[str],
    *,
    templates_dir: str | None = None,
    base_url: str | None = None,
    sign: Callable[[dict[str, bytes], Path], dict[str, bytes]] | None = None,
) -> BuildResult:
    """Build the site of the manifest at ``path``, read under the manifest's lock: no change
    can land between the read and the build, so the last build is of the last write
    (``sign``: see :func:`site.build_site`)."""
    from .transaction import SiteOptions, transaction

    site_folder(site_dir, manifest_path=path, templates_dir=templates_dir)  # before any lock file
    with transaction(path) as txn:
        return txn.build(SiteOptions(site_dir, templates_dir, base_url, sign))


def state_files(manifest: Manifest) -> dict[str, bytes]:
    """The site's files that follow from the manifest alone (not from the templates or a
    ``--base-url``): ``status.json`` and the history pages, as :func:`site.render_site`
    writes them."""
    from .documents import history_pages, status_document, to_json

    files = {"status.json": to_json(status_document(manifest))}
    files.update((path, to_json(page)) for path, page in history_pages(manifest).items())
    return {path: text.encode() for path, text in files.items()}
