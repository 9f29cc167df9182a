"""Which folders a build may replace, and the folders it leaves beside the site.

A folder is the tool's only if it carries the mark every build writes inside the site
(:data:`SITE_MARK`); the folders a build makes beside the site carry hidden names with a random
token (``.site.valhalla-staging-<token>``) and the mark, so a killed build's leftovers are told
apart from anyone else's folders.

A build leaves nothing it cannot clean or report: a read-only site folder is refused before
anything is written, and a scratch folder is removed even where its folders were made
read-only (the build made them, so it gives itself write permission back); one it still cannot
remove (files another user owns) is named, with why, in the build's result.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from pathlib import Path

from ..errors import RefusedError
from ..storage.files import os_reason
from ..storage.layout import history_dir

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


def within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or inside it (paths as given, none resolved)."""
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
    if here is not None and within(here, target):
        return (
            "it is the current folder" if here == target else "it holds the current folder"
        ) + own
    for what, path in (("the manifest", manifest_path), ("the templates folder", templates_dir)):
        if path is None:
            continue
        places = {Path(os.path.realpath(path)), Path(os.path.abspath(path))}
        if any(within(place, target) for place in places):
            return f"it holds {what} {os.fspath(path)}"
    if manifest_path is not None:
        history = Path(os.path.realpath(history_dir(manifest_path)))
        if within(target, history):
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
        unwritable = _unwritable(target)
    except OSError as exc:
        return os_reason(exc)
    if unwritable:
        return unwritable
    if not empty and not has_mark(target):
        return (
            f"it is not empty and has no {SITE_MARK} mark, so it is not a site "
            "valhalla-status built; choose a new or empty folder"
        )
    return None


def _unwritable(target: Path) -> str | None:
    """Why the folder ``target`` may not be replaced by this process, or None.

    Replacing a folder needs only its parent's permission: a folder made read-only would be
    swapped out all the same, and what it holds then left beside the site, where the build
    cannot remove it. Root passes every permission check, so the owner's write bit is asked.
    """
    info = target.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & stat.S_IWUSR:
        return f"it is read-only (mode {mode:04o}); make it writable with `chmod u+w` to build it"
    if not os.access(target, os.W_OK):
        return f"it is not writable by you (mode {mode:04o}, owner uid {info.st_uid})"
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


def remove_scratch(folder: Path) -> str | None:
    """Remove a folder the build made, its mark last; None once it is gone, else one line
    saying what is left and why.

    Cut short by a kill, what is left still carries the mark (or is empty), so the next build
    knows it for its own and clears it. Folders inside made read-only are given write
    permission back first (the build made them); what still cannot be removed (another user's
    files) is left.
    """
    if folder.is_symlink() or not folder.is_dir():
        return None
    try:
        _remove(folder)
    except PermissionError as first:
        try:
            _open_up(folder)
        except OSError:  # not ours to open up: what stopped the removal says why
            return _why(folder, first)
        try:
            _remove(folder)
        except OSError as exc:
            return _why(folder, exc)
    except OSError as exc:
        return _why(folder, exc)
    return None


def _remove(folder: Path) -> None:
    with os.scandir(folder) as scan:
        entries = [entry for entry in scan if entry.name != SITE_MARK]
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / SITE_MARK)
    os.rmdir(folder)


_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)


def _open_up(folder: Path) -> None:
    """Give the owner read, write and search permission on ``folder`` and on every folder
    inside it, never through a symbolic link (raises ``PermissionError`` for a folder that is
    not ours)."""
    pending = [os.fspath(folder)]
    while pending:
        path = pending.pop()
        fd = os.open(path, _OPEN_FOLDER)
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & stat.S_IRWXU != stat.S_IRWXU:
                os.fchmod(fd, mode | stat.S_IRWXU)
        finally:
            os.close(fd)
        with os.scandir(path) as scan:
            pending += [entry.path for entry in scan if entry.is_dir(follow_symlinks=False)]


def _why(folder: Path, exc: OSError) -> str:
    """The one line that names the folder left and why, with paths as the user types them."""
    failed = exc.filename
    where = f" ({_shown(failed)})" if failed and failed != os.fspath(folder) else ""
    return (
        f"cannot remove {_shown(folder)}, left by a build: {os_reason(exc)}{where}; "
        "remove it by hand"
    )


def _shown(path: str | os.PathLike[str]) -> str:
    try:
        return os.path.relpath(path)
    except (OSError, ValueError):  # no current folder; another drive
        return os.fspath(path)
