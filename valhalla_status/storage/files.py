"""Reading files that come from outside: regular files only, and never more than a limit.

A FIFO opened for reading blocks until a writer appears, and ``/dev/zero`` never ends, while
``stat`` says both are empty. So a file is opened without blocking, checked with ``fstat`` on the
open descriptor (no race with a rename), refused unless it is a regular file, and read up to a
limit counted in bytes actually read. Standard library only (the client imports this).
"""

from __future__ import annotations

import errno
import os
import stat

MAX_MANIFEST_BYTES = 32 * 2**20
"""The manifest's main file's size limit, counted on the bytes read."""
MAX_TEMPLATE_BYTES = 16 * 2**20


def os_reason(exc: OSError, *, naming_file: bool = False) -> str:
    """An OS error in the words messages use: its reason (``Permission denied``), and with
    ``naming_file`` the file it names, in brackets."""
    reason = str(exc.strerror or exc)
    if naming_file and exc.filename:
        reason += f" ({exc.filename})"
    return reason


def mib(limit: int) -> str:
    """A size limit as messages say it: ``32 MiB``."""
    return f"{limit // 2**20} MiB"


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """The path names something other than a regular file (a folder, FIFO, device, socket)."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        code = errno.EISDIR if kind == "a folder" else errno.EINVAL
        super().__init__(code, f"is {kind}, not a regular file", os.fspath(path))
        self.kind = kind


def kind_of(mode: int) -> str:
    """``a FIFO (named pipe)``, ``a folder``…: what a non-regular file's mode says it is."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(
    path: str | os.PathLike[str], *, dir_fd: int | None = None, follow_symlinks: bool = True
) -> int:
    """A descriptor open for reading on the regular file at ``path`` (never blocks on a FIFO).

    Raises NotRegularFileError for anything else (with ``follow_symlinks=False``, for a
    symbolic link too), or the OSError of ``open``.
    """
    fd, _ = _open_regular(path, dir_fd, follow_symlinks)
    try:
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_regular(
    path: str | os.PathLike[str], dir_fd: int | None, follow_symlinks: bool
) -> tuple[int, int]:
    """A descriptor open without blocking on the regular file at ``path``, and its size."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise NotRegularFileError(path, "a symbolic link") from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotRegularFileError(path, kind_of(status.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, status.st_size


def read_regular_file(
    path: str | os.PathLike[str], limit: int, *, follow_symlinks: bool = True
) -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path`` (more than ``limit`` bytes
    back means the file is over the limit, whatever its size claims).

    Raises NotRegularFileError for a folder, FIFO, device or socket, or the OSError of reading.
    """
    # A regular file never blocks, so it is read as opened.
    fd, size = _open_regular(path, None, follow_symlinks)
    try:
        # One read of the size and a byte more finds the end of a file that did not grow (a
        # read asked for more than a file holds stops at its end); a buffer as large as the
        # limit would cost more than reading a small file. A size of 0 may be unknown (a
        # kernel's file): read until a read is empty.
        chunks: list[bytes] = []
        total = 0
        wanted = min(size, limit) + 1
        while wanted > 0:
            chunk = os.read(fd, wanted)
            chunks.append(chunk)
            total += len(chunk)
            if not chunk or (len(chunk) < wanted and 0 < size <= total):
                break
            wanted = min(limit + 1 - total, 1 << 16)
        return b"".join(chunks)
    finally:
        os.close(fd)
