"""From the manifest to what is published: the site, built under the manifest's lock."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .sitefolder import site_folder

if TYPE_CHECKING:
    from ..site import BuildResult


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
    from ..storage.transaction import SiteOptions, transaction

    site_folder(site_dir, manifest_path=path, templates_dir=templates_dir)  # before any lock file
    with transaction(path) as txn:
        return txn.build(SiteOptions(site_dir, templates_dir, base_url, sign))
