"""A content-addressed cache of a manifest's published documents.

Read-only commands (``show``, ``summary``, ``pack list|show``, ``history``) print documents
derived from the manifest. Once a manifest's exact bytes have been validated, its documents are
stored under the SHA-256 of those bytes (and of this tool's code), so the next read of the same
bytes skips YAML parsing and validation, and the import of pydantic with them. Any doubt (a
missing, torn or foreign cache file, a changed tool) means a miss and a full validation.
Set ``VALHALLA_NO_CACHE=1`` to disable it; ``VALHALLA_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .layout import History

from .files import read_regular_file

_MAX_MANIFEST_BYTES = 32 * 1024 * 1024
_KEEP_ENTRIES = 64


def cache_dir() -> Path | None:
    if os.environ.get("VALHALLA_NO_CACHE"):
        return None
    base = os.environ.get("VALHALLA_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(xdg):  # no home directory to be found: no cache, never a relative one
        return None
    return Path(xdg) / "valhalla-status"


@functools.lru_cache(maxsize=1)
def code_stamp() -> bytes:
    """What the tool's output depends on besides its input: this package's code and the
    versions of Python and of the libraries that shape the output (found without importing)."""
    here = Path(__file__).parent
    parts = [sys.version]
    for entry in sorted(os.scandir(here), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            info = entry.stat()
            parts.append(f"{entry.name}:{info.st_size}:{info.st_mtime_ns}")
    for library in ("pydantic", "pydantic_core", "jinja2", "markupsafe", "yaml"):
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec else None
        if origin:
            info = os.stat(os.path.dirname(origin))
            parts.append(f"{library}:{origin}:{info.st_mtime_ns}")
    return "|".join(parts).encode()


def read_manifest_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The manifest's bytes; None when it cannot be read or is over the size limit (the full
    loader then reports why)."""
    try:
        raw = read_regular_file(path, _MAX_MANIFEST_BYTES)  # never a FIFO or a device
    except OSError:
        return None
    return None if len(raw) > _MAX_MANIFEST_BYTES else raw


class _Unreadable(Exception):
    pass


def read_manifest_state(path: str | os.PathLike[str]) -> ManifestState | None:
    """The main file's bytes and its history files as one consistent state (see
    :func:`layout.read_state`); None when they cannot be read (the full loader says why)."""
    from .errors import ValhallaError
    from .layout import read_state

    def read_main() -> bytes:
        raw = read_manifest_bytes(path)
        if raw is None:
            raise _Unreadable
        return raw

    try:
        main, history = read_state(path, read_main)
    except (_Unreadable, ValhallaError):
        return None
    return ManifestState(main, history)


class ManifestState:
    """What a manifest's documents depend on: its main file and its history files."""

    def __init__(self, main: bytes, history: History) -> None:
        self.main = main
        self.history = history

    def key(self) -> bytes:
        """Bytes that differ whenever the manifest's content may."""
        if not self.history.entries and not self.history.unknown:
            return self.main
        return self.main + b"\0history\0" + self.history.fingerprint()


def _entry(folder: Path, raw: bytes) -> tuple[str, Path]:
    key = hashlib.sha256(code_stamp() + b"\0" + raw).hexdigest()
    return key, folder / f"{key}.json"


def store_documents(raw: bytes, documents: dict[str, Any]) -> None:
    """Remember the documents of a manifest whose state (``ManifestState.key()``) was
    validated."""
    folder = cache_dir()
    if folder is not None:
        key, entry = _entry(folder, raw)
        _store(folder, entry, {"key": key, "documents": documents})


def manifest_documents(
    path: str | os.PathLike[str], compute: Callable[[ManifestState | None], dict[str, Any]]
) -> dict[str, Any]:
    """The documents of the manifest at ``path``: cached, or ``compute(state)`` and stored.

    ``compute`` validates the state (raising the usual errors); for a file this cannot read (or
    an oversized one) it gets None and reads the file itself, so errors are reported exactly as
    without the cache.
    """
    folder = cache_dir()
    state = None if folder is None else read_manifest_state(path)
    if folder is None or state is None:
        return compute(None)
    raw = state.key()
    key, entry = _entry(folder, raw)
    try:
        with open(entry, encoding="utf-8") as handle:
            cached = json.load(handle)
        if cached.get("key") == key:
            with contextlib.suppress(OSError):
                os.utime(entry)  # eviction drops the least recently used
            return cached["documents"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    documents = compute(state)
    _store(folder, entry, {"key": key, "documents": documents})
    return documents


def _store(folder: Path, entry: Path, content: dict[str, Any]) -> None:
    """Write a cache entry atomically; a cache that cannot be written is no error."""
    temp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        os.replace(temp, entry)
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-_KEEP_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)


def code_cached(name: str, compute: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Output that depends on this tool's code alone (e.g. the JSON Schemas), computed once per
    version of the code and kept in the cache folder."""
    folder = cache_dir()
    if folder is None:
        return compute()
    key = hashlib.sha256(code_stamp() + b"\0" + name.encode()).hexdigest()
    entry = folder / f"{name}-{key[:32]}.json"
    try:
        with open(entry, encoding="utf-8") as handle:
            cached = json.load(handle)
        if cached.get("key") == key and isinstance(cached.get("value"), dict):
            return cached["value"]
    except (OSError, ValueError, AttributeError):
        pass
    value = compute()
    _store(folder, entry, {"key": key, "value": value})
    return value
