"""The static site (SPEC §5): every file rendered in memory, written beside the site, swapped in.

:func:`render_site` is pure (same manifest and templates, same bytes: there is no build clock);
:func:`build_site` writes the files into a staging folder next to the site, syncs it once and
exchanges it with the live folder in one atomic rename, so readers see the old site or the new
one, never a mix; :func:`check_site` lists what differs from the live site.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import functools
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.bccache import Bucket
from markupsafe import Markup

from .cache import code_cached
from .documents import (
    history_document,
    pack_documents,
    packs_document,
    status_document,
    summary_counts,
    summary_document,
    to_json,
)
from .errors import RefusedError, ValhallaError
from .fresh import BuildResult as BuildResult
from .fresh import builtin_templates
from .manifest import manifest_lock
from .models import PACK_ID_PATTERN, STATUSES, HistoryEntry, Manifest, SystemMetadata
from .models import format_timestamp as iso
from .statuspage import statuspage_documents

RECENT_CHANGES = 10
SHIELDS_CACHE_SECONDS = 300
_PACK_ID = re.compile(PACK_ID_PATTERN)
_NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SAFE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")

ACTION_TITLES = {
    "init": "Manifest created",
    "complete": "Backend marked complete",
    "incomplete": "Backend marked in development",
    "set-version": "Version changed",
    "set-notes": "Notes changed",
    "pack-add": "Pack added",
    "pack-set": "Pack changed",
    "pack-remove": "Pack removed",
    "migrate": "Manifest migrated",
}


# --- templates ------------------------------------------------------------------------------


def human_time(moment: datetime) -> str:
    """``2025-09-20 00:00 UTC``."""
    return iso(moment)[:16].replace("T", " ") + " UTC"


def time_element(moment: datetime) -> Markup:
    return Markup('<time datetime="{}">{}</time>').format(iso(moment), human_time(moment))


class _BytecodeCache(FileSystemBytecodeCache):
    """Compiled templates kept between processes; a cache that cannot be used is no cache."""

    def load_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache() -> _BytecodeCache | None:
    from .cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    try:
        (folder / "templates").mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _BytecodeCache(str(folder / "templates"))


@functools.lru_cache(maxsize=8)
def environment(templates_dir: str | None = None) -> Environment:
    """The Jinja2 environment (one per templates folder per process; templates compile once,
    and their bytecode is cached between processes, keyed by the template's source)."""
    search = [templates_dir] if templates_dir else []
    env = Environment(
        loader=FileSystemLoader([*search, str(builtin_templates())]),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["iso"] = iso
    env.filters["human"] = human_time
    env.filters["time"] = time_element
    return env


def _render(env: Environment, name: str, context: dict[str, Any]) -> str:
    try:
        text = env.get_template(name).render(context)
        # History values (``extra`` ones) may hold characters XML 1.0 and HTML forbid: show
        # U+FFFD for them, so the feed, the badge and the pages stay well-formed.
        return _NOT_XML.sub("\ufffd", text)
    except TemplateSyntaxError as exc:
        raise ValhallaError(f"{exc.filename}:{exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        raise ValhallaError(f"cannot render {name}: {exc.message}") from None


# --- the documents --------------------------------------------------------------------------


def _words(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "complete" if value else "in development"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def describe_change(field: str, old: Any, new: Any) -> str | None:
    """One history change in words (``Pack K: pending → installed``); None for implied ones."""
    if field == "completed_at":
        return None
    if field == "backend_complete":
        return f"backend: {_words(old)} → {_words(new)}"
    if field == "notes":
        return "notes cleared" if new is None else "notes updated"
    if field.startswith("packs."):
        pack_id, _, attribute = field[6:].partition(".")
        if attribute == "status":
            return f"Pack {pack_id}: {old} → {new}"
        if attribute:
            return f"Pack {pack_id} {attribute}: {_words(old)} → {_words(new)}"
        if old is None and isinstance(new, dict):
            return f"Pack {pack_id} added: {new.get('name')} ({new.get('status')})"
        return f"Pack {pack_id} {'added' if old is None else 'removed'}"
    return f"{field}: {_words(old)} → {_words(new)}"


@dataclass(frozen=True)
class Change:
    """A history entry as the page and the feed show it."""

    number: int
    entry: HistoryEntry
    title: str
    lines: list[str]


def recent_changes(manifest: Manifest, limit: int) -> list[Change]:
    """The ``limit`` most recent history entries, newest first, described in words."""
    total = len(manifest.history)
    result = []
    for offset, entry in enumerate(manifest.history[::-1][:limit]):
        lines = [d for f, (o, n) in entry.changes.items() if (d := describe_change(f, o, n))]
        result.append(Change(total - offset, entry, ACTION_TITLES[entry.action], lines))
    return result


def _base_url(manifest: Manifest, override: str | None) -> str:
    """The site's absolute URL ending in ``/``, or ``""`` for relative links."""
    url = manifest.system.base_url
    if override is not None:
        try:
            SystemMetadata.model_validate({**dict(manifest.system), "base_url": override})
        except ValueError:
            raise ValhallaError(
                f"--base-url {override!r} is not an absolute https URL (https://host/path)"
            ) from None
        url = override
    return url.rstrip("/") + "/" if url else ""


def _style_hash(env: Environment) -> str:
    css = _render(env, "_style.css", {})
    return "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()


def _badge(manifest: Manifest) -> dict[str, Any]:
    """Text and geometry of the readiness badge (widths estimated at 7 px a character)."""
    complete = manifest.system.backend_complete
    label, message = manifest.system.name, "complete" if complete else "in development"
    left, right = 7 * len(label) + 12, 7 * len(message) + 12
    return {
        "label": label,
        "message": message,
        "color": "#1a7f37" if complete else "#9a6700",
        "shields_color": "brightgreen" if complete else "orange",
        "left": left,
        "right": right,
    }


def _headers(csp: str) -> str:
    """``_headers`` (Netlify / Cloudflare Pages): short caching, CORS for the JSON."""
    json_rules = "\n  Access-Control-Allow-Origin: *\n  Cache-Control: public, max-age=60\n"
    paths = [
        "/status.json",
        "/summary.json",
        "/packs.json",
        "/history.json",
        "/shields.json",
        "/packs/*",
        "/api/v2/*",
        "/schema/*",
    ]
    return (
        "/*\n  X-Content-Type-Options: nosniff\n  Referrer-Policy: no-referrer\n"
        f"  Content-Security-Policy: {csp}; frame-ancestors 'none'\n"
        "/\n  Cache-Control: public, max-age=60\n"
        "/index.html\n  Cache-Control: public, max-age=60\n"
        "/feed.xml\n  Content-Type: application/atom+xml; charset=utf-8\n"
        "  Cache-Control: public, max-age=300\n"
        "/badge.svg\n  Cache-Control: public, max-age=300\n"
        + "".join(path + json_rules for path in paths)
    )


def render_site(
    manifest: Manifest, *, templates_dir: str | None = None, base_url: str | None = None
) -> dict[str, bytes]:
    """Every file of the site, keyed by its path relative to the site folder."""
    env = environment(templates_dir)
    base = _base_url(manifest, base_url)
    for pack in manifest.packs:
        if not _PACK_ID.fullmatch(pack.id):
            raise ValhallaError(f"pack id {pack.id!r} cannot be a file name")
    csp = f"default-src 'none'; style-src '{_style_hash(env)}'; base-uri 'none'; form-action 'none'"
    system = manifest.system
    groups: dict[str, list[Any]] = {}
    pack_docs = pack_documents(manifest)
    for document in pack_docs:
        groups.setdefault(document["group"], []).append(document)
    badge = _badge(manifest)
    context = {
        "system": system,
        "base_url": base,
        "csp": csp,
        "summary": summary_counts(manifest.packs),
        "statuses": STATUSES,
        "groups": groups,
        "changes": recent_changes(manifest, RECENT_CHANGES),
        "badge": badge,
        "schemas": [path.removeprefix("schema/") for path in _schema_files()],
    }
    files: dict[str, str | bytes] = {
        "index.html": _render(env, "index.html", context),
        "404.html": _render(env, "404.html", context),
        "status.json": to_json(status_document(manifest)),
        "summary.json": to_json(summary_document(manifest)),
        "packs.json": to_json(packs_document(pack_docs)),
        "history.json": to_json(history_document(manifest)),
        "feed.xml": _render(
            env,
            "feed.xml",
            {
                **context,
                "changes": recent_changes(manifest, 50),
                "feed_id": _feed_id(manifest, base),
                "entry_id": functools.partial(_entry_id, system.name),
            },
        ),
        "badge.svg": _render(env, "badge.svg", context),
        "shields.json": to_json(
            {
                "schemaVersion": 1,
                "label": badge["label"],
                "message": badge["message"],
                "color": badge["shields_color"],
                "cacheSeconds": SHIELDS_CACHE_SECONDS,
            }
        ),
        "_headers": _headers(csp),
    }
    for path, document in statuspage_documents(manifest, base).items():
        files[path] = to_json(document)
    files.update(_schema_files())
    for document in pack_docs:
        data = to_json(document).encode()
        files[f"packs/{document['id']}.json"] = data
        files[f"packs/{document['id'].lower()}.json"] = data
    return {path: d.encode() if isinstance(d, str) else d for path, d in files.items()}


@functools.lru_cache(maxsize=1)
def _schema_files() -> dict[str, bytes]:
    """``schema/*.schema.json``: generated from the models once per version of the code."""

    def generate() -> dict[str, str]:
        from .schemas import schema_documents

        return {f"schema/{name}": to_json(doc) for name, doc in schema_documents().items()}

    return {path: text.encode() for path, text in code_cached("schemas", generate).items()}


def _feed_id(manifest: Manifest, base: str) -> str:
    if base:
        return base + "feed.xml"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"valhalla-status:{manifest.system.name}").urn


def _entry_id(system_name: str, change: Change) -> str:
    """A stable id per history entry (entries are append-only, so its number stays)."""
    key = f"valhalla-status:{system_name}:{change.number}:{iso(change.entry.at)}"
    return uuid.uuid5(uuid.NAMESPACE_URL, key).urn


# --- writing --------------------------------------------------------------------------------


def _site_folder(site_dir: str | os.PathLike[str]) -> Path:
    """The real site folder, refusing anything that is not (or would not become) a site."""
    target = Path(os.path.realpath(site_dir))
    shown = os.fspath(site_dir)
    if target.parent == target:
        raise RefusedError(f"cannot build the site into {shown}: choose a folder of its own")
    if target.exists():
        if not target.is_dir():
            raise RefusedError(f"cannot build the site into {shown}: it is not a folder")
        if any(target.iterdir()) and not (target / "status.json").is_file():
            raise RefusedError(
                f"refusing to replace {shown}: it is not empty and holds no status.json, "
                "so it is not a built site; choose a new or empty folder"
            )
    return target


def list_files(root: Path) -> list[str]:
    """Every file under ``root``, as sorted ``/``-separated relative paths."""
    found: list[str] = []
    for folder, _dirs, names in os.walk(root):
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        found.extend(prefix + name for name in names)
    return sorted(found)


def _read(root: Path, path: str) -> bytes:
    with open(os.path.join(root, path), "rb") as handle:
        return handle.read()


def _differences(root: Path, files: dict[str, bytes]) -> dict[str, str]:
    """``{path: "missing" | "changed" | "extra"}`` between ``files`` and the folder, sorted."""
    present = set(list_files(root)) if root.is_dir() else set()
    found = {path: "missing" for path in files.keys() - present}
    found.update((path, "extra") for path in present - files.keys())
    found.update(
        (path, "changed") for path in files.keys() & present if _read(root, path) != files[path]
    )
    return dict(sorted(found.items()))


def _unchanged(root: Path, files: dict[str, bytes]) -> tuple[set[str], bool]:
    """The paths whose file in ``root`` already holds these bytes; and whether that is all."""
    if not root.is_dir():
        return set(), False
    present = list_files(root)
    same = {p for p in present if p in files and _holds(os.path.join(root, p), files[p])}
    return same, len(same) == len(present) == len(files)


def _holds(path: str, data: bytes) -> bool:
    """Whether the file at ``path`` holds exactly ``data`` (one open, one read, no buffering).

    A symlink is never "the same": its target lies outside the site and could change later.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        found = b""
        while len(found) <= len(data):
            chunk = os.read(fd, len(data) + 1 - len(found))
            if not chunk:
                break
            found += chunk
        return found == data
    finally:
        os.close(fd)


def _link(source: str, target: str) -> bool:
    """Hard-link ``target`` to ``source``; False where the file system cannot."""
    try:
        os.link(source, target)
    except FileExistsError:  # a case-insensitive file system: the same name
        return True
    except OSError:
        return False
    return True


def _write_tree(root: Path, files: dict[str, bytes], reuse: Path, same: set[str]) -> None:
    """Write ``files`` under the new folder ``root`` (never outside it), then sync once.

    Creating a file costs far more than linking one, and site files are never changed in place,
    so a file already in ``reuse`` with the same bytes (``same``) is hard-linked from there, and
    a file whose bytes are the very object of an earlier one (a pack's lower-case alias) is
    linked to that one.
    """
    root.mkdir()
    made = {""}
    first: dict[int, str] = {}
    for path, data in files.items():
        if not _SAFE_PATH.fullmatch(path):
            raise ValhallaError(f"refusing to write {path!r}: not a plain path inside the site")
        folder = path.rpartition("/")[0]
        if folder not in made:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            made.add(folder)
        target = os.path.join(root, path)
        source = os.path.join(reuse, path) if path in same else first.get(id(data))
        if source is None or not _link(source, target):
            with open(target, "xb") as handle:
                handle.write(data)
        first.setdefault(id(data), target)
    _sync_filesystem(root)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _sync_filesystem(root: Path) -> None:
    """Flush the staging folder's files to disk: one ``syncfs`` (Linux), else ``sync``."""
    libc = _libc()
    if libc is not None and hasattr(libc, "syncfs"):
        fd = os.open(root, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    if hasattr(os, "sync"):
        os.sync()


def _exchange(first: Path, second: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2``); False if unsupported."""
    libc = _libc()
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange):
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(code, os.strerror(code), os.fspath(second))
    return True


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _recover(target: Path) -> None:
    """Clear what a killed build left beside the site (restoring it if it was mid-swap)."""
    leftovers = sorted(target.parent.glob(f"{glob.escape(target.name)}.old-*"))
    if not target.exists() and leftovers:
        os.rename(leftovers.pop(), target)
    leftovers += target.parent.glob(f"{glob.escape(target.name)}.staging-*")
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


def build_site(
    manifest: Manifest,
    site_dir: str | os.PathLike[str],
    *,
    templates_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
) -> BuildResult:
    """Render the site and swap it in atomically; leave the folder alone if it is current."""
    templates = _templates_folder(templates_dir)
    files = render_site(manifest, templates_dir=templates, base_url=base_url)
    target = _site_folder(site_dir)
    shown = os.fspath(site_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValhallaError(f"cannot create {target.parent}: {exc.strerror or exc}") from None
    with manifest_lock(target):
        _recover(target)
        same, current = _unchanged(target, files)
        if current:
            return BuildResult(shown, len(files), changed=False)
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        staging = target.with_name(f"{target.name}.staging-{token}")
        old = target.with_name(f"{target.name}.old-{token}")
        try:
            _write_tree(staging, files, target, same)
            if not target.exists():
                os.rename(staging, target)
            elif not _exchange(staging, target):
                os.rename(target, old)
                os.rename(staging, target)
            _fsync_folder(target.parent)
        except OSError as exc:
            raise ValhallaError(f"cannot build {shown}: {exc.strerror or exc}") from None
        finally:
            # After the exchange the staging name holds the old site.
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return BuildResult(shown, len(files), changed=True)


def check_site(
    manifest: Manifest,
    site_dir: str | os.PathLike[str],
    *,
    templates_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
) -> dict[str, str]:
    """What differs between the site folder and what :func:`build_site` would write.

    Returns ``{path: "missing" | "changed" | "extra"}``, sorted; empty when current.
    """
    files = render_site(manifest, templates_dir=_templates_folder(templates_dir), base_url=base_url)
    return _differences(Path(site_dir), files)


def _templates_folder(templates_dir: str | os.PathLike[str] | None) -> str | None:
    if templates_dir is None:
        return None
    if not os.path.isdir(templates_dir):
        raise ValhallaError(f"templates folder {os.fspath(templates_dir)} does not exist")
    return os.path.abspath(templates_dir)


__all__ = [
    "BuildResult",
    "build_site",
    "check_site",
    "describe_change",
    "environment",
    "render_site",
]
