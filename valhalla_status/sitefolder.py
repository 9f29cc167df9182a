"""Which folders a build may replace, and the folders it leaves beside the site.

A folder is the tool's only if it carries the mark every build writes inside the site
(:data:`SITE_MARK`); the folders a build makes beside the site carry hidden names with a random
token (``.site.valhalla-staging-<token>``) and the mark, so a killed build's leftovers are told
apart from anyone else's folders.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .errors import RefusedError
from .layout import history_dir

SITE_MARK = ".valhalla-site"
"""The file every build writes at the top of the site: the folder is the tool's to replace."""
SITE_MARK_BYTES = b"valhalla-status site: each build replaces this whole folder\n"
_MARK_PREFIX = b"valhalla-status site"
_NO_FOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_TOKEN = re.compile(r"[0-9a-f]{16}")
SCRATCH_KINDS = ("staging", "old")


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
    problem = _misplaced(target, manifest_path, templates_dir) or _foreign(target)
    if problem:
        raise RefusedError(f"{refusing}: {problem}")
    return target


def _misplaced(
    target: Path,
    manifest_path: str | os.PathLike[str] | None,
    templates_dir: str | os.PathLike[str] | None,
) -> str | None:
    """Why ``target`` is in a place no build may replace, or None."""
    own = "; choose a folder of its own"
    if target.parent == target:
        return "it is the file system's root" + own
    try:
        here: Path | None = Path(os.path.realpath(os.getcwd()))
    except OSError:
        here = None
    if here is not None and _within(here, target):
        return (
            "it is the current folder" if here == target else "it holds the current folder"
        ) + own
    for what, path in (("the manifest", manifest_path), ("the templates folder", templates_dir)):
        if path is None:
            continue
        places = {Path(os.path.realpath(path)), Path(os.path.abspath(path))}
        if any(_within(place, target) for place in places):
            return f"it holds {what} {os.fspath(path)}"
    if manifest_path is not None:
        history = Path(os.path.realpath(history_dir(manifest_path)))
        if _within(target, history):
            return "it is inside the manifest's history folder" + own
    return None


def _foreign(target: Path) -> str | None:
    """Why the folder at ``target`` is not the tool's to replace, or None."""
    if not target.exists():
        return None
    if not target.is_dir():
        return "it is not a folder"
    try:
        empty = not any(target.iterdir())
    except OSError as exc:
        return str(exc.strerror or exc)
    if not empty and not has_mark(target):
        return (
            f"it is not empty and has no {SITE_MARK} mark, so it is not a site "
            "valhalla-status built; choose a new or empty folder"
        )
    return None


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
