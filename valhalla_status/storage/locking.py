"""The manifest's lock: one writer at a time, waiting at most a bounded time.

Two ``flock`` locks are held, always in this order:

1. the folder that holds the file. A folder cannot be deleted while the file is in it, so
   nothing (``git clean -fdX``, a person tidying up) can take this lock away from its holder;
2. the lock file beside it (``.<name>.lock``, ignored by git), which other tools and people can
   see and wait on. After locking it, the holder checks that the file it locked is still the
   one at the lock's path: a waiter that locked a file deleted in the meantime starts again.

The folder's lock is shared within one process (a process that holds it for the manifest may
take it again for a site in the same folder); the lock file's is not.

The holder writes its process id (and its command, when the CLI said which) into the lock file
while it holds the lock, and empties the file before letting go, so a writer kept waiting can
say whom it waits for: after a second it tells the callback set with :func:`tell_lock_waits`,
once (the library never prints).

Kept apart from the manifest's reading and writing so that light paths (an up-to-date build)
can take the lock without importing pydantic.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path

from ..errors import LockTimeoutError, ValhallaError
from .files import NotRegularFileError, os_reason, read_regular_file

LOCK_TIMEOUT_SECONDS = 60.0  # enough for a queue of parallel writers, each with its rebuild
_POLL_SECONDS = 0.05
WAIT_NOTICE_SECONDS = 1.0  # a wait this long is said, once
_MARK_BYTES = 256  # of the holder's mark in the lock file: its process id and command
# Errors that mean "this file system does not lock folders", not "someone holds it".
_CANNOT_LOCK_FOLDER = {errno.EBADF, errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP, errno.EACCES}


def real_file(path: str | os.PathLike[str]) -> Path:
    """The file a manifest path names: a symlink is written (and locked) through, not replaced."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def lock_path(path: str | os.PathLike[str]) -> Path:
    target = real_file(path)
    return target.parent / f".{target.name}.lock"


class _Timeout(Exception):
    pass


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is the file now at ``path`` (not a deleted or replaced one)."""
    try:
        there = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _flock(
    open_file: Callable[[], int], path: Path, deadline: float, waiting: Callable[[], None]
) -> int:
    """Open ``path`` with ``open_file`` and lock it, polling until ``deadline`` (calling
    ``waiting`` at each poll).

    Starts again whenever the file locked is no longer the one at ``path``.
    """
    while True:
        fd = open_file()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise _Timeout from None
            waiting()
            time.sleep(_POLL_SECONDS)
            continue
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # locked a file that was deleted or replaced meanwhile: again


class _FolderLocks:
    """The folder locks this process holds: ``(device, inode) -> [fd, depth]``."""

    def __init__(self) -> None:
        self.held: dict[tuple[int, int], list[int]] = {}
        self.guard = threading.Lock()

    def acquire(
        self, folder: Path, deadline: float, waiting: Callable[[], None]
    ) -> tuple[int, int] | None:
        """Lock ``folder``; the key to release it with, or None if folders cannot be locked."""
        try:
            info = os.stat(folder)
        except OSError:
            return None  # no folder: opening the file will say so
        key = (info.st_dev, info.st_ino)
        with self.guard:
            if key in self.held:
                self.held[key][1] += 1
                return key

        def open_folder() -> int:
            return os.open(folder, os.O_RDONLY | os.O_DIRECTORY)

        try:
            fd = _flock(open_folder, Path(os.path.realpath(folder)), deadline, waiting)
        except OSError as exc:
            if exc.errno in _CANNOT_LOCK_FOLDER:
                return None  # the lock file alone still serialises writers
            raise
        with self.guard:
            if key in self.held:  # another thread of this process got there first
                os.close(fd)
                self.held[key][1] += 1
            else:
                self.held[key] = [fd, 1]
        return key

    def release(self, key: tuple[int, int] | None) -> None:
        if key is None:
            return
        with self.guard:
            entry = self.held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del self.held[key]
                os.close(entry[0])


_FOLDERS = _FolderLocks()


def lock_timeout() -> float:
    """``VALHALLA_LOCK_TIMEOUT`` in seconds, or the default of 60."""
    setting = os.environ.get("VALHALLA_LOCK_TIMEOUT", "")
    try:
        timeout = float(setting) if setting else LOCK_TIMEOUT_SECONDS
        if not 0 <= timeout < float("inf"):
            raise ValueError
    except ValueError:
        raise ValhallaError(
            f"VALHALLA_LOCK_TIMEOUT={setting!r} is not a number of seconds (0 or more)"
        ) from None
    return timeout


class _Telling:
    """What a block of :func:`tell_lock_waits` set: the notice still to give (None once
    given) and the command that marks the locks taken."""

    def __init__(self, notice: Callable[[str], None], command: str | None) -> None:
        self.notice: Callable[[str], None] | None = notice
        self.command = command


_TELLING: ContextVar[_Telling | None] = ContextVar("valhalla_lock_telling", default=None)


@contextmanager
def tell_lock_waits(notice: Callable[[str], None], command: str | None = None) -> Iterator[None]:
    """Within this block, the first wait for a lock over a second calls ``notice`` with a line
    saying what is waited for and whom (the CLI prints it); later waits are not said again.
    A lock taken is marked with ``command`` (one line, like ``valhalla-status pack set``)
    beside the process id, for whoever waits for it."""
    token = _TELLING.set(_Telling(notice, command))
    try:
        yield
    finally:
        _TELLING.reset(token)


def _holder(target: Path) -> str:
    """Who holds the lock at ``target``, as its lock file says: the holder's process id, and
    its command when it wrote one; if no live process is named, another one of ours."""
    try:
        written = read_regular_file(target, _MARK_BYTES, follow_symlinks=False)
    except (OSError, NotRegularFileError):
        written = b""
    pid_line, _, rest = written[:_MARK_BYTES].decode("utf-8", "replace").partition("\n")
    pid = int(pid_line) if pid_line.isascii() and pid_line.isdigit() and len(pid_line) < 10 else 0
    try:
        if pid > 0:
            os.kill(pid, 0)  # ProcessLookupError: a holder killed before emptying the file
    except PermissionError:
        pass  # alive: another user's process
    except OSError:
        pid = 0
    if pid <= 0:
        return "another valhalla-status process"
    command = rest.partition("\n")[0].strip()
    return f"pid {pid}" + (f" ({command})" if command else "")


def _wait_notice(path: str | os.PathLike[str], target: Path, timeout: float) -> Callable[[], None]:
    """What a waiter calls at each poll: after a second, the notice is given, if it is still
    to give (a wait that gives up within the second is never said)."""
    telling = _TELLING.get() if timeout > WAIT_NOTICE_SECONDS else None
    started = time.monotonic()

    def waiting() -> None:
        if telling is None or telling.notice is None:
            return
        if time.monotonic() - started < WAIT_NOTICE_SECONDS:
            return
        notice, telling.notice = telling.notice, None
        notice(
            f"waiting for the lock on {os.fspath(path)}, held by {_holder(target)}; "
            f"giving up after {timeout:g} s"
        )

    return waiting


def _mark_holder(fd: int) -> None:
    """Write this process's id, and its command if known, into the lock file it holds."""
    telling = _TELLING.get()
    command = " ".join((telling.command or "").split()) if telling else ""
    mark = f"{os.getpid()}\n{command}\n".encode()[:_MARK_BYTES]
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, mark, 0)
    except OSError:
        pass  # the lock holds all the same; waiters then cannot say whom they wait for


@contextmanager
def manifest_lock(path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold the manifest's exclusive lock (waiting at most ``timeout`` seconds).

    A lock file this made is removed again when the work under the lock fails, so a refused
    command leaves the folder as it found it (a waiter that locked the removed file starts
    again, as for any lock file removed under it).
    """
    if timeout is None:
        timeout = lock_timeout()
    deadline = time.monotonic() + timeout
    target = lock_path(path)
    made = not os.path.lexists(target)
    waiting = _wait_notice(path, target, timeout)

    def open_lock_file() -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        return os.open(target, flags, 0o644)

    folder: tuple[int, int] | None = None
    fd: int | None = None
    try:
        folder = _FOLDERS.acquire(target.parent, deadline, waiting)
        fd = _flock(open_lock_file, target, deadline, waiting)
        _mark_holder(fd)
    except _Timeout:
        _FOLDERS.release(folder)
        raise LockTimeoutError(
            f"{os.fspath(path)} is locked by another valhalla-status process "
            f"(waited {timeout:g} s); try again"
        ) from None
    except OSError as exc:
        _FOLDERS.release(folder)
        reason = os_reason(exc)
        if exc.errno == errno.ELOOP:
            reason = "the lock file is a symbolic link; remove it"
        raise ValhallaError(f"cannot lock {os.fspath(path)}: {reason} ({target})") from None
    except BaseException:
        _FOLDERS.release(folder)
        raise
    try:
        yield
    except BaseException:
        if made:
            with suppress(OSError):
                os.unlink(target)
        raise
    finally:
        try:
            with suppress(OSError):
                os.ftruncate(fd, 0)  # whoever takes the lock next writes its own id
            os.close(fd)  # closing the file releases its lock
        finally:
            _FOLDERS.release(folder)
