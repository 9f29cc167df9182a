"""Atomic replacement of a file: a temp file beside it, fsync, ``os.replace``, fsync the folder.

A reader sees the old file or the new one, never a part; a writer killed half-way leaves only a
temp file, which the next writer removes.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ..errors import ValhallaError
from .files import os_reason
from .locking import real_file


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file beside it, fsync, ``os.replace``."""
    target = real_file(path)
    folder = target.parent
    temp = folder / f"{_temp_prefix(target)}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        mode = os.stat(target).st_mode & 0o777
    except OSError:
        mode = 0o644
    else:
        refuse_unwritable(path, mode)
    try:
        write_synced(temp, target, data, mode)
        fsync_folder(folder)
    except OSError as exc:
        raise ValhallaError(f"cannot write {os.fspath(path)}: {os_reason(exc)}") from None


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` (a rename, a new or removed file) last through a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(temp: Path, final: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to the new file ``temp``, fsync it, rename it to ``final``.

    ``temp`` never outlives a failure; the caller syncs the folder when the rename must last.
    """
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def refuse_unwritable(path: str | os.PathLike[str], mode: int) -> None:
    """Refuse to replace a file its owner may not write (or, not being root, we may not).

    Replacing a file needs only the folder's permission, so without this a read-only manifest
    would be replaced all the same; root passes every permission check, so the owner's write
    bit is what is asked.
    """
    if not mode & stat.S_IWUSR:
        raise ValhallaError(
            f"{os.fspath(path)} is read-only (mode {mode:04o}); not replacing it "
            "(make it writable with `chmod u+w` to change it)"
        )
    if os.geteuid() != 0 and not os.access(real_file(path), os.W_OK):
        raise ValhallaError(
            f"{os.fspath(path)} is not writable by you (mode {mode:04o}); not replacing it"
        )


def remove_stale_temp_files(path: str | os.PathLike[str]) -> None:
    """Remove temp files a killed writer left beside ``path`` (call with the lock held)."""
    target = real_file(path)
    prefix = _temp_prefix(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix):
            (target.parent / name).unlink(missing_ok=True)
