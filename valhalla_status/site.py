"""The static site: every file rendered in memory, written beside the site, swapped in.

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
import hashlib
import os
import re
import secrets
import stat
import sys
import traceback
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.loaders import split_template_path
from markupsafe import Markup, escape
from pydantic import ValidationError

from .errors import ValhallaError
from .models import STATUSES, HistoryEntry, Manifest, SystemMetadata
from .models import format_timestamp as iso
from .publishing.documents import (
    HISTORY_PAGE_SIZE,
    SCHEMA_FOLDER,
    history_layout,
    history_pages,
    pack_documents,
    pack_file_document,
    packs_document,
    relative_root,
    schema_file_for,
    status_document,
    summary_counts,
    summary_document,
    to_json,
)
from .publishing.headers import headers_file
from .publishing.metrics import metrics_text
from .publishing.sitefolder import (
    SITE_MARK,
    SITE_MARK_BYTES,
    has_mark,
    remove_scratch,
    scratch_folders,
    scratch_path,
    site_folder,
)
from .publishing.statuspage import statuspage_documents
from .publishing.textwidth import text_width
from .rules import changes
from .rules.changes import items
from .rules.formats import clip, human_time, is_pack_id
from .rules.history import entry_id, pack_since
from .storage.atomic import fsync_folder
from .storage.canonical import with_ids
from .storage.files import (
    MAX_TEMPLATE_BYTES,
    NotRegularFileError,
    mib,
    os_reason,
    read_regular_file,
)
from .storage.locking import manifest_lock


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_site` did: the site folder, its file count, whether it changed, and
    the scratch folders beside it that could not be removed (one line each, naming it)."""

    path: str
    files: int
    changed: bool
    leftovers: tuple[str, ...] = ()


def builtin_templates() -> Path:
    """The shipped templates: inside the package in a wheel, top-level in a source checkout."""
    here = Path(__file__).parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


RECENT_CHANGES = 10
# shields.io caches an endpoint badge for at least 300 s whatever is asked; ask for just that.
SHIELDS_CACHE_SECONDS = 300
# The badge's colours, in the form shields.io takes them (hex without "#"): badge.svg and the
# shields.io badge of shields.json look alike, and white text on either contrasts at least
# 4.5:1 (shields.io's own "brightgreen" and "orange" do not reach 3:1).
BADGE_COLOURS = {True: "1a7f37", False: "9a6700"}
# Everything but XML 1.0's characters less Unicode's noncharacters (legal XML but an HTML parse
# error): one character class, each plane's ranges stopping short of its noncharacters (one
# class is ten times faster to match than a class and an alternative).
_NOT_XML = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufdcf\ufdf0-\ufffd"
    + "".join(f"{chr(plane << 16)}-{chr(plane << 16 | 0xFFFD)}" for plane in range(1, 17))
    + "]"
)
_PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
_NO_FOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_SAFE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")


# --- templates ------------------------------------------------------------------------------


def time_element(moment: datetime | str) -> Markup:
    """A ``<time>`` element of a moment (or of its RFC 3339 text, as documents hold it)."""
    text: str
    shown: str
    if isinstance(moment, str):
        text, shown = escape(moment), escape(human_time(moment))
    else:  # RFC 3339 text is digits and "-:.TZ": nothing in it to escape
        text = iso(moment)
        shown = human_time(text)
    return Markup(f'<time datetime="{text}">{shown}</time>')


def isolate(text: str) -> str:
    """``text`` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE when it holds
    right-to-left letters: for plain text, where no ``<bdi>`` can go (a ``<title>``)."""
    if any(unicodedata.bidirectional(char) in ("R", "AL") for char in text):
        return f"\u2068{text}\u2069"
    return text


class _RegularFileLoader(FileSystemLoader):
    """Jinja2's file loader, reading only regular files (a FIFO or a device among the templates
    is refused, never waited on) inside the templates folder (a link that leads outside it is
    refused) and at most the template size limit."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for folder in self.searchpath:
            filename = os.path.join(folder, *pieces)
            real = os.path.realpath(filename)
            if os.path.lexists(filename) and os.path.commonpath(
                [real, os.path.realpath(folder)]
            ) != os.path.realpath(folder):
                raise ValhallaError(
                    f"{filename}: leads outside the templates folder (through a symbolic "
                    "link); templates are read from inside it only"
                )
            try:
                data = read_regular_file(filename, MAX_TEMPLATE_BYTES)
                mtime = os.stat(filename).st_mtime_ns
            except (FileNotFoundError, NotADirectoryError):
                continue
            except NotRegularFileError as exc:
                raise ValhallaError(f"{filename}: is {exc.kind}, not a template file") from None
            except OSError as exc:
                reason = os_reason(exc)
                raise ValhallaError(f"{filename}: cannot read the template: {reason}") from None
            if len(data) > MAX_TEMPLATE_BYTES:
                limit = mib(MAX_TEMPLATE_BYTES)
                raise ValhallaError(f"{filename}: is over the {limit} template limit")
            try:
                text = data.decode(self.encoding)
            except UnicodeDecodeError:
                raise ValhallaError(f"{filename}: is not UTF-8 text") from None

            def uptodate(filename: str = filename, mtime: int = mtime) -> bool:
                try:
                    return os.stat(filename).st_mtime_ns == mtime
                except OSError:
                    return False

            return text, os.path.normpath(filename), uptodate
        raise TemplateNotFound(template)


@functools.lru_cache(maxsize=8)
def environment(templates_dir: str | None = None) -> Environment:
    """The Jinja2 environment (one per templates folder per process, so that ``serve`` compiles
    each template once)."""
    search = [templates_dir] if templates_dir else []
    env = Environment(
        loader=_RegularFileLoader([*search, str(builtin_templates())]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["iso"] = iso
    env.filters["human"] = human_time
    env.filters["time"] = time_element
    env.filters["isolate"] = isolate
    return env


def _render(env: Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateSyntaxError as exc:
        raise ValhallaError(f"{exc.filename}:{exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        where = _template_fault(exc)
        located = f"{where}: " if where else ""
        reason = exc.message or ""
        if isinstance(exc, TemplateNotFound):
            reason = f"template {clip(reason)!r} not found (in the templates folder, nor built in)"
        raise ValhallaError(f"{located}cannot render {name}: {reason}") from None
    except (ArithmeticError, LookupError, RecursionError, TypeError, ValueError) as exc:
        where = _template_fault(exc, ours_excepted=True)
        if where is None:
            raise  # no template line, or this package's own code failed: an internal error
        reason = f"{type(exc).__name__}: {exc}"
        raise ValhallaError(f"{where}: cannot render {name}: {clip(reason)}") from None


def _template_fault(exc: BaseException, *, ours_excepted: bool = False) -> str | None:
    """``file:line`` of the innermost template line ``exc`` was raised under (a ``%d`` given
    text, a division by zero, a macro calling itself, an include of no template), if any;
    ``ours_excepted``: None when this package's own code raised it."""
    frames = list(traceback.walk_tb(exc.__traceback__))
    if ours_excepted and frames and frames[-1][0].f_code.co_filename.startswith(_PACKAGE):
        return None
    where = [
        f"{frame.f_code.co_filename}:{line}"
        for frame, line in frames
        if "__jinja_exception__" in frame.f_globals  # Jinja2's frame of a template line
    ]
    return where[-1] if where else None


# --- the documents --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A history entry as the page and the feed show it.

    ``number`` counts entries from the first (1) in landing order; ``id`` is the entry's own,
    which never changes (anchors and feed ids use it); ``landed_at`` is when it reached the
    branch. ``details`` are the changes in words the ``title`` does not already say.
    """

    number: int
    entry: HistoryEntry
    title: str
    details: list[str]

    @property
    def id(self) -> str:
        return entry_id(self.entry)

    @property
    def landed_at(self) -> datetime:
        landed: datetime = getattr(self.entry, "landed_at", self.entry.at)
        return landed


def recent_changes(manifest: Manifest, limit: int | None) -> list[Change]:
    """The ``limit`` most recent history entries (all with None), newest first, in words."""
    total = len(manifest.history)
    result = []
    for offset, entry in enumerate(manifest.history[::-1][:limit]):
        # History values are any JSON: characters XML 1.0 and HTML forbid show as U+FFFD, so
        # the feed and the pages stay well-formed (every other field's model refuses them).
        told = items(entry.changes)
        title = _NOT_XML.sub("\ufffd", changes.title(entry.action, told))
        details = [_NOT_XML.sub("\ufffd", line) for line in changes.details(entry.action, told)]
        result.append(Change(total - offset, entry, title, details))
    return result


def _base_url(manifest: Manifest, override: str | None) -> str:
    """The site's absolute URL ending in ``/``, or ``""`` for relative links."""
    url = manifest.system.base_url
    if override is not None:
        try:
            SystemMetadata.model_validate({**dict(manifest.system), "base_url": override})
        except ValidationError as exc:  # the manifest's rule for base_url, in its words
            from .storage.validation import error_message

            problem = error_message(exc.errors()[0], ("base_url",), SystemMetadata)
            raise ValhallaError(f"--base-url: {problem}") from None
        url = override
    return url.rstrip("/") + "/" if url else ""


def _style_hash(env: Environment) -> str:
    css = _render(env, "_style.css", {})
    return "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()


def _badge(manifest: Manifest) -> dict[str, Any]:
    """Text and geometry of the readiness badge, laid out as shields.io's flat style: 5 px of
    padding either side of each text, the label on #555, the message on the shields colour."""
    complete = manifest.system.backend_complete
    label, message = manifest.system.name, "complete" if complete else "in development"
    shields_color = BADGE_COLOURS[complete]
    label_width, message_width = text_width(label), text_width(message)
    return {
        "label": label,
        "message": message,
        "color": "#" + shields_color,
        "shields_color": shields_color,
        "label_width": label_width,
        "message_width": message_width,
        "left": label_width + 10,
        "right": message_width + 10,
    }


ROBOTS = "User-agent: *\nAllow: /\n"


def render_site(
    manifest: Manifest, *, templates_dir: str | None = None, base_url: str | None = None
) -> dict[str, bytes]:
    """Every file of the site, keyed by its path relative to the site folder."""
    manifest = with_ids(manifest)
    env = environment(templates_dir)
    base = _base_url(manifest, base_url)
    for pack in manifest.packs:
        if not is_pack_id(pack.id):
            raise ValhallaError(f"pack id {pack.id!r} cannot be a file name")
    csp = f"default-src 'none'; style-src '{_style_hash(env)}'; base-uri 'none'; form-action 'none'"
    system = manifest.system
    groups: dict[str, list[Any]] = {}
    since = pack_since(manifest)
    pack_docs = pack_documents(manifest, since)
    for document in pack_docs:
        groups.setdefault(document["group"], []).append(document)
    badge = _badge(manifest)
    schemas = _schema_files()
    context = {
        "system": system,
        "base_url": base,
        "csp": csp,
        "summary": summary_counts(manifest.packs),
        "statuses": STATUSES,
        "groups": groups,
        "changes": recent_changes(manifest, RECENT_CHANGES),
        "total_changes": len(manifest.history),
        "badge": badge,
        "schemas": [path.removeprefix("schema/") for path in schemas],
    }
    files: dict[str, str | bytes] = {
        "index.html": _render(env, "index.html", context),
        "404.html": _render(env, "404.html", context),
        "status.json": to_json(status_document(manifest, since)),
        "summary.json": to_json(summary_document(manifest)),
        "packs.json": to_json(packs_document(pack_docs)),
        "feed.xml": _render(
            env,
            "feed.xml",
            {
                **context,
                "changes": recent_changes(manifest, HISTORY_PAGE_SIZE),
                "feed_id": _feed_id(manifest),
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
        "_headers": headers_file(csp),
        "metrics.txt": metrics_text(manifest, since),
        "robots.txt": ROBOTS,
    }
    for path, page in history_pages(manifest).items():
        files[path] = to_json(page)
    files.update(_history_html(env, manifest, context))
    for path, document in statuspage_documents(manifest, base).items():
        files[path] = to_json(document)
    files.update(schemas)
    for document in pack_docs:
        files[f"packs/{document['id']}.json"] = to_json(pack_file_document(document))
    _check_schemas(files)
    return {path: d.encode() if isinstance(d, str) else d for path, d in files.items()}


def _check_schemas(files: dict[str, Any]) -> None:
    """Refuse a site whose documents name a schema the package's schema folder lacks."""
    named = {
        f"schema/{schema_file_for(path)}"
        for path in files
        if path.endswith(".json") and not path.startswith("schema/")
    }
    missing = sorted(path for path in named if path not in files)
    if missing:
        raise ValhallaError(
            f"{SCHEMA_FOLDER}: the installed package lacks {missing[0].removeprefix('schema/')}"
            " (a damaged install); reinstall valhalla-status"
        )


def _schema_files() -> dict[str, bytes]:
    """``schema/*.schema.json``: generated from the models and shipped in the package (see
    :mod:`valhalla_status.publishing.schemas`); the document schemas first, the Statuspage
    ones last."""
    try:
        names = sorted(
            (name for name in os.listdir(SCHEMA_FOLDER) if name.endswith(".schema.json")),
            key=lambda name: (name.startswith("api-"), name),
        )
        return {f"schema/{name}": (SCHEMA_FOLDER / name).read_bytes() for name in names}
    except OSError as exc:
        where = os.fsdecode(exc.filename) if exc.filename else SCHEMA_FOLDER
        raise ValhallaError(
            f"{where}: cannot read the package's schemas ({os_reason(exc)}); reinstall "
            "valhalla-status"
        ) from None


def _history_html(env: Environment, manifest: Manifest, context: dict[str, Any]) -> dict[str, str]:
    """``history.html`` and ``history/<N>.html``: every change in words, the same pages as the
    JSON ones; each change has the anchor ``change-<id>``."""
    changes = recent_changes(manifest, None)
    pages = history_layout(len(changes))
    html = [page.path.removesuffix(".json") + ".html" for page in pages]
    files = {}
    for index, page in enumerate(pages):
        root = context["base_url"] or relative_root(html[index]).removeprefix("./")
        files[html[index]] = _render(
            env,
            "history.html",
            {
                **context,
                "base_url": root,
                "changes": changes[page.start : page.end],
                "page": page.number,
                "pages": len(pages),
                "prev_href": root + html[index - 1] if index > 0 else None,
                "next_href": root + html[index + 1] if index + 1 < len(pages) else None,
            },
        )
    return files


def _feed_id(manifest: Manifest) -> str:
    """The feed's id: from the system's name alone, so moving the site (or setting a base URL)
    does not make it a new feed."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"valhalla-status:{manifest.system.name}").urn


def _entry_id(system_name: str, change: Change) -> str:
    """A feed id per history entry, from the entry's own id: it never changes, wherever the
    entry lands."""
    key = f"valhalla-status:{system_name}:change:{change.id}"
    return uuid.uuid5(uuid.NAMESPACE_URL, key).urn


# --- writing --------------------------------------------------------------------------------


def _entries(root: Path) -> list[str]:
    """Everything under ``root`` as sorted ``/``-separated relative paths: files, links (never
    followed), other special files, and empty folders (with a trailing ``/``)."""
    found: list[str] = []
    pending = [(os.fspath(root), "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as scan:
            entries = list(scan)
        if not entries and prefix:
            found.append(prefix)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, f"{prefix}{entry.name}/"))
            else:
                found.append(prefix + entry.name)
    return sorted(found)


def list_files(root: Path) -> list[str]:
    """Everything under ``root`` but the build's mark, as sorted ``/``-separated relative paths
    (a link is listed, never followed; an empty folder is listed with a trailing ``/``)."""
    return [path for path in _entries(root) if path != SITE_MARK]


def _site_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """What a build writes: its mark first, then the rendered files."""
    return {SITE_MARK: SITE_MARK_BYTES, **files}


def _differences(root: Path, files: dict[str, bytes]) -> dict[str, str]:
    """``{path: "missing" | "changed" | "extra"}`` between ``files`` and the folder, sorted."""
    try:
        present = set(_entries(root)) if root.is_dir() else set()
    except OSError as exc:
        raise ValhallaError(f"cannot read {root}: {os_reason(exc)}") from None
    found = {path: "missing" for path in files.keys() - present}
    found.update((path, "extra") for path in present - files.keys())
    found.update(
        (path, "changed")
        for path in files.keys() & present
        if not _holds(os.path.join(root, path), files[path])
    )
    return dict(sorted(found.items()))


def _unchanged(root: Path, files: dict[str, bytes]) -> tuple[set[str], bool]:
    """The paths whose file in ``root`` already holds these bytes; and whether that is all."""
    if not root.is_dir():
        return set(), False
    present = _entries(root)
    same = {p for p in present if p in files and _holds(os.path.join(root, p), files[p])}
    return same, len(same) == len(present) == len(files)


def _holds(path: str, data: bytes) -> bool:
    """Whether the file at ``path`` is a regular file holding exactly ``data``.

    A symlink is never "the same": its target lies outside the site and could change later;
    nor is a FIFO or a device, which are never read.
    """
    try:
        fd = os.open(path, _NO_FOLLOW)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        found = b""
        while len(found) <= len(data):
            chunk = os.read(fd, len(data) + 1 - len(found))
            if not chunk:
                break
            found += chunk
        return found == data
    except OSError:
        return False
    finally:
        os.close(fd)


_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _link(source: str, target: str) -> bool:
    """Hard-link ``target`` to ``source``; False where the file system cannot."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        return False
    return True


def _write_tree(root: Path, files: dict[str, bytes], reuse: Path, same: set[str]) -> None:
    """Write ``files`` under the new folder ``root`` (never outside it), then sync once.

    Creating a file costs far more than linking one (a new inode, and removing the old site
    frees one), and site files are never changed in place, so a file already in ``reuse`` with
    the same bytes (``same``) is hard-linked from there.
    """
    made = {""}
    for path, data in files.items():
        if path != SITE_MARK and not _SAFE_PATH.fullmatch(path):
            raise ValhallaError(f"refusing to write {path!r}: not a plain path inside the site")
        folder = path.rpartition("/")[0]
        if folder not in made:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            made.add(folder)
        target = os.path.join(root, path)
        if path in same and _link(os.path.join(reuse, path), target):
            continue
        fd = os.open(target, _CREATE, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    _sync_filesystem(root)


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


def _recover(target: Path) -> list[str]:
    """Clear what a killed build left beside the site (restoring it if it was mid-swap); what
    could not be removed, and why.

    Only folders with the build's scratch names and its mark are touched (see
    ``scratch_folders``); anything else beside the site is someone else's.
    """
    leftovers = scratch_folders(target)
    if not os.path.lexists(target):
        olds = [path for kind, path in leftovers if kind == "old" and has_mark(path)]
        if olds:
            os.rename(olds[0], target)
            leftovers = [(kind, path) for kind, path in leftovers if path != olds[0]]
    return _remove_all(path for _kind, path in leftovers)


def _remove_all(folders: Iterable[Path]) -> list[str]:
    """Remove the build's scratch ``folders``; what could not be removed, and why."""
    return [why for why in map(remove_scratch, folders) if why is not None]


def build_site(
    manifest: Manifest,
    site_dir: str | os.PathLike[str],
    *,
    templates_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    sign: Callable[[dict[str, bytes], Path], dict[str, bytes]] | None = None,
) -> BuildResult:
    """Render the site and swap it in atomically; leave the folder alone if it is current.

    Only a folder this tool built (it carries the mark), an empty or a missing one is replaced;
    the folders of ``manifest_path`` and the templates, the current one and those above them
    never are (``RefusedError``, nothing touched). ``sign`` (a signed build) gives the extra
    files to publish beside the documents, from the rendered files and the site being replaced
    (read under the site's lock).
    """
    templates = _templates_folder(templates_dir)
    rendered = render_site(manifest, templates_dir=templates, base_url=base_url)
    files = _site_files(rendered)
    shown = os.fspath(site_dir)
    target = site_folder(site_dir, manifest_path=manifest_path, templates_dir=templates)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValhallaError(f"cannot create {target.parent}: {os_reason(exc)}") from None
    with manifest_lock(target):
        # As it is now, under the lock.
        target = site_folder(site_dir, manifest_path=manifest_path, templates_dir=templates)
        if sign is not None:
            files = {**files, **sign(rendered, target)}
        try:
            leftovers = _recover(target)
            same, current = _unchanged(target, files)
        except OSError as exc:
            raise ValhallaError(f"cannot build {shown}: {os_reason(exc)}") from None
        if current:
            return BuildResult(shown, len(rendered), changed=False, leftovers=tuple(leftovers))
        token = secrets.token_hex(8)
        staging = scratch_path(target, "staging", token)
        old = scratch_path(target, "old", token)
        made: list[Path] = []  # what this build made, and so may remove
        try:
            staging.mkdir()
            made.append(staging)
            _write_tree(staging, files, target, same)
            if not target.exists():
                os.rename(staging, target)
            elif not _exchange(staging, target):
                os.rename(target, old)
                made.append(old)
                os.rename(staging, target)
            with contextlib.suppress(OSError):  # the swap is done; making it last is a bonus
                fsync_folder(target.parent)
        except OSError as exc:
            raise ValhallaError(f"cannot build {shown}: {os_reason(exc)}") from None
        finally:
            # After the exchange the staging name holds the old site.
            leftovers += _remove_all(made)
    return BuildResult(shown, len(rendered), changed=True, leftovers=tuple(leftovers))


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
    return _differences(Path(site_dir), _site_files(files))


def _templates_folder(templates_dir: str | os.PathLike[str] | None) -> str | None:
    if templates_dir is None:
        return None
    if not os.path.isdir(templates_dir):
        if os.path.lexists(templates_dir):
            raise ValhallaError(f"templates folder {os.fspath(templates_dir)} is not a folder")
        raise ValhallaError(f"templates folder {os.fspath(templates_dir)} does not exist")
    return os.path.abspath(templates_dir)


__all__ = [
    "BuildResult",
    "build_site",
    "check_site",
    "environment",
    "render_site",
]
