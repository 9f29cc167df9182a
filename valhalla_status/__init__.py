"""valhalla-status: the single source of truth for the Valhalla platform's status.

The library API (see :mod:`valhalla_status.service`) is importable from here; it is loaded on
first use so that light commands such as ``check`` do not pay for pydantic. ``__version__`` is
the installed package's version (from its git tag when it was built).
"""

from __future__ import annotations

from typing import Any

_SERVICE_NAMES = {
    "add_pack",
    "count_packs_by_status",
    "ensure_system_metadata",
    "get_history",
    "get_pack_by_id",
    "get_packs",
    "get_system_metadata",
    "get_system_status",
    "get_system_summary",
    "remove_pack",
    "set_backend_complete",
    "set_notes",
    "set_pack",
    "update_version",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("valhalla-status")
        except PackageNotFoundError:  # run from a source folder that was never installed
            return "0.0.0"
    if name in _SERVICE_NAMES:
        from . import service

        return getattr(service, name)
    if name in ("load_manifest", "write_manifest", "dump_manifest"):
        from . import manifest

        return getattr(manifest, name)
    raise AttributeError(f"module 'valhalla_status' has no attribute {name!r}")
