"""Where the manifest and the site are, seen from where the user stands, and the repository's
``.gitignore``.

The manifest is found as git finds ``.git``: ``manifest/valhalla.yaml`` in the current folder,
else in its parent, and so on up. The walk stops at the top of a git work tree (a folder holding
``.git``) or at the filesystem root, so a manifest that belongs to another repository is never
picked up. As git refuses a repository owned by someone else (``safe.directory``), the walk
never adopts a manifest owned by another user: the first one found ends the walk, and if it, its
folder or the folder holding that is another user's, the command stops with one line saying so
(``--manifest`` names it on purpose). Paths are shown as the user would type them from the
current folder.

Paths here are strings handled with :mod:`os.path`, and the records are named tuples:
``check`` finds the site through this module and must start fast.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .errors import ValhallaError
from .storage.files import NotRegularFileError, mib, os_reason, read_regular_file

DEFAULT_MANIFEST = os.path.join("manifest", "valhalla.yaml")
DEFAULT_SITE = "site"

MAX_IGNORE_BYTES = 2**20  # a .gitignore larger than this is no one's by hand
IGNORE_HEADER = "# valhalla-status: the built site, lock files and the build's scratch files"


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as typed from the current folder: relative (``../site``) when that is possible."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return os.path.abspath(path)


def current_folder_gone() -> str | None:
    """Why the current folder cannot be used (it was deleted or moved away), or None.

    Relative paths (the defaults among them) cannot be resolved then; the message names the
    folder, as the system last knew it.
    """
    try:
        os.getcwd()
        return None
    except FileNotFoundError:
        pass
    try:
        name = os.readlink("/proc/self/cwd").removesuffix(" (deleted)")
    except OSError:
        name = os.environ.get("PWD", "")
    folder = f" {name}" if name else ""
    return (
        f"the current folder{folder} no longer exists (deleted or moved); cd to a folder that "
        "exists, or give --manifest and --site as absolute paths"
    )


def _is_top(folder: str) -> bool:
    """Whether ``folder`` is the top of a git work tree (``.git`` is a folder, or a file in a
    linked worktree or a submodule)."""
    return os.path.lexists(os.path.join(folder, ".git"))


def find_root(start: str | os.PathLike[str] = ".") -> str | None:
    """The nearest folder (absolute), from ``start`` up, that holds ``manifest/valhalla.yaml``.

    A manifest owned by another user ends the walk with :class:`ValhallaError` (see
    :func:`foreign_owner`): it is neither adopted nor walked past.
    """
    folder = os.path.abspath(start)
    while True:
        if os.path.lexists(os.path.join(folder, DEFAULT_MANIFEST)):
            owner = foreign_owner(folder)
            if owner is not None:
                raise ValhallaError(
                    f"{DEFAULT_MANIFEST} in {folder} is owned by another user (uid {owner}); "
                    "give --manifest to use it"
                )
            return folder
        if _is_top(folder) or os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)


def _trusted_owners() -> set[int]:
    """Whose files the current process takes for its own, as git decides for a repository:
    its effective user's; run as root, root's and, under ``sudo``, the invoking user's
    (``SUDO_UID``)."""
    euid = os.geteuid()
    owners = {euid}
    if euid == 0:
        sudo_uid = os.environ.get("SUDO_UID", "")
        if sudo_uid.isdecimal():
            owners.add(int(sudo_uid))
    return owners


def foreign_owner(root: str) -> int | None:
    """The owner (uid) of ``root``, its ``manifest`` folder or the manifest file, when that is
    not a user whose files this process takes for its own (see :func:`_trusted_owners`); None
    when all three are. The file and folders are not followed if they are links."""
    if not hasattr(os, "geteuid"):  # no user ids to compare (Windows)
        return None
    trusted = _trusted_owners()
    manifest = os.path.join(root, DEFAULT_MANIFEST)
    for path in (root, os.path.dirname(manifest), manifest):
        try:
            owner = os.lstat(path).st_uid
        except OSError:
            continue
        if owner not in trusted:
            return owner
    return None


class Location(NamedTuple):
    """The manifest and the site folder, as paths to show and to open."""

    manifest: str
    site: str
    root: str | None = None
    """The folder (absolute) the manifest was found in by walking up (None: given, or none
    found)."""


def locate(manifest: str | None, site: str | None, start: str | os.PathLike[str] = ".") -> Location:
    """Resolve the ``--manifest`` and ``--site`` options (None: not given).

    A manifest not given is looked for from ``start`` up (see :func:`find_root`: one owned by
    another user is refused); the site's default is then ``site`` beside the ``manifest``
    folder found. When the manifest is given, or there is none anywhere, the defaults are
    relative to the current folder (where ``init`` creates them).
    """
    root = find_root(start) if manifest is None else None
    if manifest is None:
        manifest = shown(os.path.join(root, DEFAULT_MANIFEST)) if root else DEFAULT_MANIFEST
    if site is None:
        site = shown(os.path.join(root, DEFAULT_SITE)) if root else DEFAULT_SITE
    return Location(manifest, site, root)


# --- .gitignore ----------------------------------------------------------------------------


def repository_top(path: str | os.PathLike[str]) -> str | None:
    """The top (absolute) of the git work tree holding ``path`` (None: not in one)."""
    folder = os.path.abspath(path)
    while True:
        if _is_top(folder):
            return folder
        if os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)


def _inside(path: str | os.PathLike[str], folder: str) -> str | None:
    """``path`` relative to ``folder`` in git's spelling, or None when it is not inside."""
    relative = os.path.relpath(os.path.abspath(path), folder)
    if relative == os.curdir or relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return relative.replace(os.sep, "/")


def ignore_patterns(
    manifest: str | os.PathLike[str], site: str | os.PathLike[str], top: str
) -> list[str]:
    """What a repository whose top is ``top`` ignores of the tool's files.

    The site folder, its lock file and the build's scratch folders beside it (hidden
    ``.<site>.valhalla-*`` names), the manifest's lock file and a killed writer's temp
    files (beside the manifest and in its history folder) and pending entries (in its history
    folder: the next writer renames one into place, so only the named entry is ever
    committed). Paths outside ``top`` are left out.
    """
    patterns = []
    site_path = _inside(site, top)
    if site_path is not None:
        site_path = _git_escaped(site_path)
        parent, _, name = site_path.rpartition("/")
        beside = f"/{parent}/" if parent else "/"
        patterns += [f"/{site_path}/", f"{beside}.{name}.lock"]
    patterns.append(".*.valhalla-*")
    folder = _inside(os.path.dirname(os.path.abspath(manifest)), top)
    if folder is not None:
        folder = _git_escaped(folder)
        patterns += [f"/{folder}/.*.lock", f"/{folder}/.*.tmp-*"]
        patterns += [f"/{folder}/*.history/.tmp-*", f"/{folder}/*.history/.pending-*"]
    elif os.path.abspath(_written_parent(manifest)) == top:
        patterns += ["/.*.lock", "/.*.tmp-*", "/*.history/.tmp-*", "/*.history/.pending-*"]
    return patterns


def _git_escaped(path: str) -> str:
    """``path`` as a ``.gitignore`` pattern that matches it alone: git's glob characters and
    the backslash are escaped, and a line break (which no pattern can hold) is matched by
    ``?``, so a folder named ``a<newline>b`` never becomes the two patterns ``a`` and ``b``."""
    escaped = "".join("\\" + c if c in "\\*?[]" else c for c in path)
    return escaped.replace("\n", "?").replace("\r", "?")


def _written_parent(path: str | os.PathLike[str]) -> str:
    """The lexical parent of ``path``, as pathlib gives it (``a/b`` → ``a``, ``..`` → ``.``).

    Only ``init`` and ``migrate`` need it, so pathlib is imported here rather than with the
    module."""
    from pathlib import PurePath

    return str(PurePath(path).parent)


def _same(line: str) -> str:
    """A pattern without the spellings that make no difference here (leading or trailing ``/``,
    surrounding blanks): ``site/``, ``/site`` and ``/site/`` are one entry."""
    return line.strip().strip("/")


class IgnoreResult(NamedTuple):
    path: str
    """The ``.gitignore`` file, as shown to the user."""
    added: list[str]


class IgnorePlan(NamedTuple):
    target: str
    """The ``.gitignore`` file."""
    data: bytes | None
    """Its new bytes; None: it has every pattern already."""
    added: list[str]


def ignore_outputs(location: Location) -> IgnoreResult:
    """Add the tool's files to the ``.gitignore`` at the top of the repository, each pattern
    once (see :func:`plan_ignore`)."""
    plan = plan_ignore(location)
    if plan.data is not None:
        from .manifest import atomic_write

        atomic_write(plan.target, plan.data)
    return IgnoreResult(shown(plan.target), plan.added)


def plan_ignore(location: Location) -> IgnorePlan:
    """What :func:`ignore_outputs` writes, or its refusal (a ``.gitignore`` that is no
    readable UTF-8 file, a path it cannot hold): a command asks before it writes anything.
    The ``.gitignore`` is the one at the top of the repository; outside git, the one in the
    folder the manifest was found in, else in the current folder.

    Lines already there are kept as they are, and a pattern is not added again when the file
    has it in any spelling, or negated (``!/site/``: the user commits the site on purpose).
    """
    manifest, site = location.manifest, location.site
    top = repository_top(_written_parent(manifest)) or location.root or os.path.abspath(".")
    target = os.path.join(top, ".gitignore")
    by_hand = "add the site to it by hand"
    try:
        # Only a regular file is read and replaced: never a link (its target is elsewhere), a
        # FIFO (waited on forever) or a folder.
        existing = (
            read_regular_file(target, MAX_IGNORE_BYTES, follow_symlinks=False)
            if os.path.lexists(target)
            else b""
        )
        if len(existing) > MAX_IGNORE_BYTES:
            raise ValhallaError(f"{shown(target)}: over {mib(MAX_IGNORE_BYTES)}; {by_hand}")
        text = existing.decode("utf-8")
    except UnicodeDecodeError:
        raise ValhallaError(f"{shown(target)}: not UTF-8; {by_hand}") from None
    except NotRegularFileError as exc:
        raise ValhallaError(f"{shown(target)} {os_reason(exc)}; {by_hand}") from None
    except OSError as exc:
        raise ValhallaError(f"cannot read {shown(target)}: {os_reason(exc)}") from None
    have = {_same(line.lstrip("!")) for line in text.splitlines()}
    missing = [p for p in ignore_patterns(manifest, site, top) if _same(p) not in have]
    if not missing:
        return IgnorePlan(target, None, [])
    newline = "\r\n" if "\r\n" in text else "\n"
    block = ([IGNORE_HEADER] if IGNORE_HEADER not in text.splitlines() else []) + missing
    if text and not text.endswith("\n"):
        text += newline
    if text.strip():
        text += newline  # a blank line between the user's lines and ours
    text += newline.join(block) + newline
    try:
        return IgnorePlan(target, text.encode("utf-8"), missing)
    except UnicodeEncodeError:
        raise ValhallaError(
            f"{shown(target)}: a path of the manifest or the site is not UTF-8 text, which "
            "a .gitignore holds; use a path that is"
        ) from None
