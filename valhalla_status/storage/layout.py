"""The files of a manifest: the main file and, from schema_version 2, its history folder.

A schema_version 2 manifest ``manifest/valhalla.yaml`` keeps one file per change in
``manifest/valhalla.history/``, named ``<at>-<seq>-<hash>.yaml``, in the subfolder named after
the first two digits of its hash (see docs/LAYOUT.md); an entry file directly in the history
folder (where earlier versions wrote them) is read as well. A change in progress leaves
``.pending-<sha256 of the new main file>-<final name>`` in the history folder: it counts as
part of the history exactly when the main file's bytes have that hash (the change happened),
and the next writer renames it into place (also when the main file changed since but still
shows the change) or removes it. Temporary files start with ``.tmp-``.

Kept free of pydantic and YAML.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ValhallaError
from .atomic import fsync_folder, write_synced
from .files import MAX_MANIFEST_BYTES, NotRegularFileError, os_reason, read_regular_file
from .locking import real_file

HISTORY_SUFFIX = ".history"
ENTRY_NAME = re.compile(r"(\d{8}T\d{6}Z)-(\d{6,})-([0-9a-f]{8})\.yaml")
SUBFOLDER = re.compile(r"[0-9a-f]{2}")
PENDING_NAME = re.compile(r"\.pending-([0-9a-f]{64})-(.+)")
TEMP_PREFIX = ".tmp-"
MAX_ENTRY_BYTES = 1024 * 1024
EXAMPLE_NAME = "20261130T120000Z-000012-1a2b3c4d.yaml"
# Files an operating system or file manager writes into any folder it shows or shares, named
# here in lower case (the file systems that write them ignore case): Finder's .DS_Store, Icon\r
# and ._ AppleDouble files (on disks without extended attributes); Windows Explorer's
# Thumbs.db and desktop.ini; KDE's .directory; NFS's .nfs files of removed open files.
PLATFORM_FILES = frozenset(
    {
        ".ds_store",
        ".localized",
        ".apdisk",
        "icon\r",
        "thumbs.db",
        "ehthumbs.db",
        "ehthumbs_vista.db",
        "desktop.ini",
        ".directory",
    }
)
PLATFORM_PATTERN = re.compile(r"\._.*|\.nfs[0-9a-f]+", re.IGNORECASE | re.DOTALL)


def is_platform_file(name: str) -> bool:
    """Whether ``name`` is a file a platform writes by itself, never part of a history."""
    return name.lower() in PLATFORM_FILES or PLATFORM_PATTERN.fullmatch(name) is not None


def history_dir(path: str | os.PathLike[str]) -> Path:
    """The history folder of the manifest at ``path`` (beside the real file, named after it)."""
    target = real_file(path)
    return target.parent / f"{target.stem}{HISTORY_SUFFIX}"


# A manifest's history folder is named after its name without the suffix, so manifests whose
# names differ only in their suffix would share one: ``<stem>.yaml`` keeps it, and a manifest
# with any other name is refused while a file of its stem with one of these suffixes is beside it.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json", "")
OWNER_SUFFIX = ".yaml"


def sharing_manifest(path: str | os.PathLike[str]) -> Path | None:
    """The other manifest beside ``path`` that its history folder would be shared with (None:
    the folder is ``path``'s alone)."""
    target = real_file(path)
    return None if target.suffix == OWNER_SUFFIX else same_stem_manifest(target)


def same_stem_manifest(path: str | os.PathLike[str]) -> Path | None:
    """A file beside ``path`` whose name is ``path``'s without its suffix, with one of the
    manifests' suffixes (None: there is none)."""
    target = real_file(path)
    stem = target.stem
    for suffix in MANIFEST_SUFFIXES:
        other = target.parent / f"{stem}{suffix}"
        if other.name == target.name or not other.is_file():
            continue
        try:
            if target.exists() and os.path.samefile(other, target):
                continue  # the same file by another spelling (a file system ignoring case)
        except OSError:
            continue
        return other
    return None


def refuse_shared_folder(path: str | os.PathLike[str]) -> None:
    """Refuse a manifest whose history folder another manifest beside it has (see
    :func:`sharing_manifest`): one would read, and write, the other's history."""
    other = sharing_manifest(path)
    if other is None:
        return
    shown = Path(os.fspath(path))
    other_shown = shown.with_name(other.name) if not os.path.islink(path) else other
    raise ValhallaError(
        f"{shown}: its history folder {history_shown(str(shown))}/ would be shared with "
        f"{other_shown}, beside it (a history folder is named after its manifest without the "
        f"suffix, and belongs to the {OWNER_SUFFIX} one); give this manifest another name"
    )


def entry_place(name: str) -> str:
    """Where the entry file ``name`` is written in the history folder: in the subfolder named
    after the first two digits of its hash (so that no folder git compares commit by commit
    grows with the whole history)."""
    match = ENTRY_NAME.fullmatch(name)
    assert match is not None
    return f"{match.group(3)[:2]}/{name}"


def entry_name(place: str) -> str | None:
    """The entry a file of the history folder holds, by its place there (``1a/<name>``, or
    ``<name>`` as earlier versions wrote them); None: the file is no entry's."""
    folder, _, name = place.rpartition("/")
    match = ENTRY_NAME.fullmatch(name)
    if match is None:
        return None
    return name if not folder or folder == match.group(3)[:2] else None


def recorded_names(path: str | os.PathLike[str]) -> list[str]:
    """The recorded entries (files with an entry's name, in their place) in the history
    folder of ``path``."""
    return list(recorded_places(history_dir(path)))


def recorded_places(folder: Path) -> dict[str, str]:
    """The entry files in ``folder``: name -> place (see :func:`entry_name`); an entry both
    in its subfolder and directly in the folder is at the first."""
    found: dict[str, str] = {}
    for place in _listing(folder) or ():
        name = entry_name(place)
        if name is not None and (name not in found or place != name):
            found[name] = place
    return found


def history_shown(shown: str) -> str:
    """The history folder as a user names it, from the manifest's shown path."""
    path = Path(shown)
    return str(path.with_name(f"{path.stem}{HISTORY_SUFFIX}"))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class History:
    """The history files as read: final name -> bytes, the files that follow no rule (by
    their place in the folder), and where each entry was read from when that is not its place
    (see :func:`entry_place`)."""

    entries: dict[str, bytes]
    unknown: tuple[str, ...]
    places: dict[str, str] = field(default_factory=dict)

    def place(self, name: str) -> str:
        """Where the entry ``name`` was read from, in the folder."""
        return self.places.get(name) or entry_place(name)


EMPTY = History({}, ())


def refuse_linked_folder(folder: Path) -> None:
    """Refuse a history folder that is a symbolic link: reading or writing through it would
    reach files elsewhere (another manifest's history, or any folder)."""
    if folder.is_symlink():
        raise ValhallaError(
            f"{folder}: the history folder is a symbolic link; it must be a real folder "
            "beside the manifest"
        )


def _listing(folder: Path) -> tuple[str, ...] | None:
    """The files of a history folder, by their place: the names in it, each subfolder named
    like the entries' (``1a``) replaced by ``1a/<name>`` for the names in it; None: no folder."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return None
    places = []
    for name in names:
        if SUBFOLDER.fullmatch(name):
            try:
                if stat.S_ISDIR(os.lstat(folder / name).st_mode):
                    places += [f"{name}/{inside}" for inside in os.listdir(folder / name)]
                    continue
            except (FileNotFoundError, NotADirectoryError):
                continue  # gone while listed: the reader lists again and sees it changed
        places.append(name)
    return tuple(sorted(places))


def read_entry_file(path: str | os.PathLike[str]) -> bytes | None:
    """An entry file's bytes (at most the limit and one), or None when it is not a regular
    file (a symbolic link is never followed)."""
    try:
        return read_regular_file(path, MAX_ENTRY_BYTES, follow_symlinks=False)
    except NotRegularFileError:
        return None


def _reader(folder: Path) -> Callable[[str], bytes | None]:
    """:func:`read_entry_file` by a file's place in ``folder``."""
    prefix = os.path.join(folder, "")
    return lambda place: read_entry_file(prefix + place)


def classify(listed: tuple[str, ...], read: Callable[[str], bytes | None], main: bytes) -> History:
    """The history of a folder's files, by their places in it (see :func:`_listing`);
    ``read(place)`` gives a file's bytes (None: not a file). A pending file counts when it
    names the hash of ``main``; temporary files and the files a platform writes by itself
    (``.DS_Store``…) are no part of it; any other file is unknown."""
    entries: dict[str, bytes] = {}
    places: dict[str, str] = {}
    unknown: list[str] = []
    # An entry in its subfolder comes before a flat copy of it, wherever the listing puts it.
    named = sorted(((place, entry_name(place)) for place in listed), key=lambda i: i[0] == i[1])
    placed = {name for _, name in named if name is not None}
    pending_files = any(PENDING_NAME.fullmatch(place) for place, name in named if name is None)
    main_hash = digest(main) if pending_files else ""
    for place, name in named:
        if name is None:
            name, pending = _pending_entry(place, placed, main_hash)
        else:
            pending = False
        raw = None if name is None else read(place)
        if name is None or raw is None:
            # A folder or a link with the name of a writer's temporary or pending file is no
            # writer's: settling refuses it too.
            ignored = name is None and _scratch(place)
            if ignored and place.rpartition("/")[2].startswith(TEMP_PREFIX):
                ignored = read(place) is not None
            if not ignored and (not pending or name is not None):
                unknown.append(place)
        elif name not in entries:
            entries[name] = raw
            if place == name or pending:
                places[name] = place
        elif entries[name] != raw:
            unknown.append(place)  # the same entry in two places, differing: one is no entry
    return History(entries, tuple(unknown), places)


def _pending_entry(place: str, placed: set[str], main_hash: str) -> tuple[str | None, bool]:
    """The entry the pending file at ``place`` holds, and whether it is a pending file (see
    :func:`classify`); None: none (a pending file of a change that did not happen, or whose
    entry is in place, holds none either)."""
    pending = PENDING_NAME.fullmatch(place)
    if not pending or not ENTRY_NAME.fullmatch(pending.group(2)):
        return None, False
    name = pending.group(2)
    return (name if pending.group(1) == main_hash and name not in placed else None), True


def _scratch(place: str) -> bool:
    """Whether the file at ``place`` is a temporary file, or one a platform writes by itself."""
    base = place.rpartition("/")[2]
    return base.startswith(TEMP_PREFIX) or is_platform_file(base)


def read_state(
    path: str | os.PathLike[str],
    read_main: Callable[[], bytes],
    read: Callable[[str], bytes | None] | None = None,
) -> tuple[bytes, History]:
    """The main file's bytes and the history as one consistent state, without the lock.

    The folder is listed before and after reading; a writer that moved on in between means
    reading again. Files with final names never change once written. ``read`` gives what
    stands for a history file, by its name (default: its bytes).
    """
    folder = history_dir(path)
    refuse_linked_folder(folder)
    refuse_shared_folder(path)
    for _ in range(200):
        before = _listing(folder)
        main = read_main()
        if before is None:
            if _listing(folder) is None:
                return main, EMPTY
            continue
        try:
            history = classify(before, read or _reader(folder), main)
        except FileNotFoundError:
            continue
        except OSError as exc:  # the file that cannot be read is named, not only its folder
            where = os.fsdecode(exc.filename) if exc.filename else folder
            raise ValhallaError(f"cannot read {where}: {os_reason(exc)}") from None
        if _listing(folder) == before:
            return main, history
    raise ValhallaError(f"{folder}: the history kept changing while being read; try again")


def write_pending(folder: Path, main_hash: str, name: str, data: bytes) -> Path:
    """Write ``data`` as the pending file of ``name`` (temp, fsync, rename); returns its path."""
    temp = folder / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    pending = folder / f".pending-{main_hash}-{name}"
    write_synced(temp, pending, data)
    return pending


def move_into_place(folder: Path, source: str, name: str) -> None:
    """Rename the file ``source`` of ``folder`` to the place of entry ``name`` (its subfolder
    made and synced when new; the caller syncs ``folder``)."""
    final = folder / entry_place(name)
    if final.parent.is_symlink():
        raise ValhallaError(
            f"{final.parent}: a subfolder of the history is a symbolic link; it must be a real "
            "folder (move the link away)"
        )
    if not final.parent.is_dir():
        final.parent.mkdir()
        fsync_folder(folder)
    os.replace(folder / source, final)
    fsync_folder(final.parent)


def move_flat_entries(folder: Path) -> int:
    """Move the entry files directly in ``folder`` (as earlier versions wrote them) into their
    subfolders (call with the lock); an identical copy already there replaces the move. Returns
    how many were moved."""
    flat = [place for place in _listing(folder) or () if entry_name(place) == place]
    for name in flat:
        final = folder / entry_place(name)
        if final.is_file() and final.read_bytes() == (folder / name).read_bytes():
            (folder / name).unlink()
        else:
            move_into_place(folder, name, name)
    if flat:
        fsync_folder(folder)
    return len(flat)


def _remove(path: Path) -> None:
    """Remove a scratch file a writer left; a folder of that name is named, never removed."""
    try:
        path.unlink(missing_ok=True)
    except IsADirectoryError:
        raise ValhallaError(
            f"{path}: a folder with the name of the tool's scratch files; move it out of the "
            "history folder"
        ) from None


def settle(
    path: str | os.PathLike[str],
    shows: Callable[[bytes, str, bytes], bool] | None = None,
    reads: Callable[[str, bytes], bool] | None = None,
) -> None:
    """Finish or undo what a killed writer left in the history folder (call with the lock).

    A pending file of a change the main file shows is renamed to its final name: the main file
    has the hash in its name (its writer was killed before the rename) and ``reads(final name,
    entry)`` says it reads as an entry (a writer writes no other), or the main file changed
    since (a merge, a pull, a hand edit) and ``shows(main, final name, entry)`` says it still
    holds every value the entry set. Any other pending file (the change did not happen, or its
    entry is in place already), and every temporary file, is removed.
    """
    folder = history_dir(path)
    refuse_linked_folder(folder)
    refuse_shared_folder(path)
    try:  # writers leave pending and temporary files only directly in the folder
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    main: bytes | None = None
    touched = False
    for name in names:
        pending = PENDING_NAME.fullmatch(name)
        if pending:
            if main is None:
                try:
                    main = read_regular_file(real_file(path), MAX_MANIFEST_BYTES)
                except OSError:
                    return  # no main file to judge by (missing, a FIFO…): its reader says so
            if _happened(folder, pending, main, shows, reads):
                move_into_place(folder, name, pending.group(2))
            else:
                _remove(folder / name)
            touched = True
        elif name.startswith(TEMP_PREFIX):
            _remove(folder / name)
            touched = True
    if touched:
        fsync_folder(folder)


def _happened(
    folder: Path,
    pending: re.Match[str],
    main: bytes,
    shows: Callable[[bytes, str, bytes], bool] | None,
    reads: Callable[[str, bytes], bool] | None,
) -> bool:
    """Whether the pending file ``pending`` names holds a change the main file shows, and
    its final name is free."""
    final = pending.group(2)
    source = folder / pending.group(0)
    if not ENTRY_NAME.fullmatch(final) or final in recorded_places(folder) or source.is_symlink():
        return False
    raw = read_entry_file(source)
    if raw is None:
        return False
    if pending.group(1) == digest(main):
        return reads is None or reads(final, raw)
    return shows is not None and shows(main, final, raw)
