"""Is the site already what a build would write? Answered without pydantic or Jinja2.

After each build, a record of its inputs (the manifest's bytes, the templates, the base URL and
the tool's code, hashed together) and of the files it left (size, modification time and inode
of each) is kept in the cache folder. A later ``build`` whose inputs hash the same, over a site
whose files still have exactly those stats, has nothing to do. Anything else (no record, other
inputs, a file touched, added or removed) means a full build. ``build --check`` never relies on
the record: it always renders and compares bytes.

What a build may replace is decided here too. A folder is the tool's only if it carries the
mark every build writes inside the site (:data:`SITE_MARK`); the folders a build makes beside the
site carry hidden names with a random token (``.site.valhalla-staging-<token>``) and the mark,
so a killed build's leftovers are told apart from anyone else's folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .cache import cache_dir, code_stamp
from .errors import RefusedError, ValhallaError
from .files import MAX_TEMPLATE_BYTES, NotRegularFileError, read_regular_file

SITE_MARK = ".valhalla-site"
"""The file every build writes at the top of the site: the folder is the tool's to replace."""
SITE_MARK_BYTES = b"valhalla-status site: each build replaces this whole folder\n"
_MARK_PREFIX = b"valhalla-status site"
_NO_FOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_TOKEN = re.compile(r"[0-9a-f]{16}")
SCRATCH_KINDS = ("staging", "old")


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_site` did: the site folder, its file count, whether it changed."""

    path: str
    files: int
    changed: bool


def _mark_text(folder: str | os.PathLike[str]) -> bytes | None:
    """The start of the mark in ``folder``; None unless it is a regular file (never a link)."""
    try:
        fd = os.open(os.path.join(folder, SITE_MARK), _NO_FOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, len(_MARK_PREFIX))
    except OSError:
        return None
    finally:
        os.close(fd)


def has_mark(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` carries the mark a build writes (a regular file, with its text)."""
    return _mark_text(folder) == _MARK_PREFIX


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def site_folder(
    site_dir: str | os.PathLike[str],
    *,
    manifest_path: str | os.PathLike[str] | None = None,
    templates_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The real site folder, if a build may replace it; else :class:`RefusedError`.

    A build may replace a missing folder, an empty one, or one that carries its mark; never
    the file system's root, the current folder, the folder of the manifest or the templates,
    nor any folder above them, nor any folder inside the manifest's history folder.
    """
    target = Path(os.path.realpath(site_dir))
    refusing = f"refusing to replace {os.fspath(site_dir)}"
    if target.parent == target:
        raise RefusedError(f"{refusing}: it is the file system's root; choose a folder of its own")
    try:
        here = Path(os.path.realpath(os.getcwd()))
    except OSError:
        here = None
    if here is not None and _within(here, target):
        where = "it is the current folder" if here == target else "it holds the current folder"
        raise RefusedError(f"{refusing}: {where}; choose a folder of its own")
    for what, path in (("the manifest", manifest_path), ("the templates folder", templates_dir)):
        if path is None:
            continue
        places = {Path(os.path.realpath(path)), Path(os.path.abspath(path))}
        if any(_within(place, target) for place in places):
            raise RefusedError(f"{refusing}: it holds {what} {os.fspath(path)}")
    if manifest_path is not None:
        from .layout import history_dir

        history = Path(os.path.realpath(history_dir(manifest_path)))
        if _within(target, history):
            raise RefusedError(
                f"{refusing}: it is inside the manifest's history folder; "
                "choose a folder of its own"
            )
    if target.exists():
        if not target.is_dir():
            raise RefusedError(f"{refusing}: it is not a folder")
        try:
            empty = not any(target.iterdir())
        except OSError as exc:
            raise RefusedError(f"{refusing}: {exc.strerror or exc}") from None
        if not empty and not has_mark(target):
            raise RefusedError(
                f"{refusing}: it is not empty and has no {SITE_MARK} mark, so it is not a site "
                "valhalla-status built; choose a new or empty folder"
            )
    return target


def scratch_path(target: Path, kind: str, token: str) -> Path:
    """The hidden folder beside the site where a build stages (``kind``) its work."""
    return target.with_name(f".{target.name}.valhalla-{kind}-{token}")


def scratch_folders(target: Path) -> list[tuple[str, Path]]:
    """``(kind, folder)`` of every folder a killed build left beside the site ``target``.

    Only folders with a scratch name that hold the mark (whole, or cut short by the kill) or
    nothing at all (killed before writing it) count: nobody else's folder is ever taken.
    """
    found = []
    for kind in SCRATCH_KINDS:
        prefix = scratch_path(target, kind, "").name
        try:
            names = sorted(n for n in os.listdir(target.parent) if n.startswith(prefix))
        except OSError:
            return []
        for name in names:
            path = target.parent / name
            if not _TOKEN.fullmatch(name[len(prefix) :]) or path.is_symlink():
                continue
            if not path.is_dir():
                continue
            mark = _mark_text(path)
            try:
                empty = not any(path.iterdir())
            except OSError:
                continue
            if empty or (mark is not None and _MARK_PREFIX.startswith(mark)):
                found.append((kind, path))
    return found


def builtin_templates() -> Path:
    """The shipped templates: inside the package in a wheel, top-level in a source checkout."""
    here = Path(__file__).parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def build_key(manifest_bytes: bytes, templates_dir: str | None, base_url: str | None) -> str:
    """The hash of everything a build's output depends on."""
    digest = hashlib.sha256(code_stamp())
    digest.update(b"\0base_url\0" + (base_url or "").encode() + b"\0manifest\0")
    digest.update(manifest_bytes)
    for folder in ([templates_dir] if templates_dir else []) + [str(builtin_templates())]:
        digest.update(b"\0templates\0" + os.fsencode(folder))
        for name, data in sorted(_files(folder).items()):
            digest.update(b"\0" + name.encode() + b"\0" + data)
    return digest.hexdigest()


def _files(folder: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                data = read_regular_file(path, MAX_TEMPLATE_BYTES)  # never waits on a FIFO
            except NotRegularFileError as exc:
                raise ValhallaError(f"{path}: is {exc.kind}, not a template file") from None
            if len(data) > MAX_TEMPLATE_BYTES:
                raise ValhallaError(f"{path}: is over the {MAX_TEMPLATE_BYTES // 2**20} MiB limit")
            found[os.path.relpath(path, folder)] = data
    return found


def _record_path(site_dir: str | os.PathLike[str]) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    name = hashlib.sha256(os.fsencode(os.path.realpath(site_dir))).hexdigest()
    return folder / "sites" / f"{name}.json"


def _stats(site_dir: str | os.PathLike[str]) -> dict[str, list[int]] | None:
    """``{path: [size, mtime_ns, inode]}`` of every file and folder (``path/``); None if
    anything is neither a regular file nor a folder (a link, a FIFO...)."""
    stats: dict[str, list[int]] = {}
    pending = [(os.fspath(site_dir), "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
                    stats[f"{prefix}{entry.name}/"] = [0, info.st_mtime_ns, info.st_ino]
                elif stat.S_ISREG(info.st_mode):
                    stats[prefix + entry.name] = [info.st_size, info.st_mtime_ns, info.st_ino]
                else:
                    return None
    return stats


def site_is_current(site_dir: str | os.PathLike[str], key: str) -> int | None:
    """The number of files, if the last build recorded for this site had inputs ``key`` and
    its files are untouched since; else None."""
    record_path = _record_path(site_dir)
    if record_path is None:
        return None
    try:
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
        if record.get("key") != key:
            return None
        stats = _stats(site_dir)
    except (OSError, ValueError, AttributeError):
        return None
    if stats is None or stats != record.get("files") or SITE_MARK not in stats:
        return None
    if scratch_folders(Path(os.path.realpath(site_dir))):
        return None  # a killed build's leftovers: the full build clears them
    return sum(1 for path in stats if not path.endswith("/") and path != SITE_MARK)


def record_build(site_dir: str | os.PathLike[str], key: str) -> None:
    """Remember that the site now holds the output of inputs ``key`` (best effort)."""
    record_path = _record_path(site_dir)
    if record_path is None:
        return
    temp = record_path.with_name(f".{record_path.name}.{os.getpid()}.tmp")
    try:
        stats = _stats(site_dir)
        if stats is None:
            return
        record_path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps({"key": key, "files": stats}), encoding="utf-8")
        os.replace(temp, record_path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
