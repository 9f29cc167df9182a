"""The manifest's lock: one writer at a time, waiting at most a bounded time.

Kept apart from the manifest's reading and writing so that light paths (an up-to-date build)
can take the lock without importing pydantic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LockTimeoutError, ValhallaError

LOCK_TIMEOUT_SECONDS = 10.0


def real_file(path: str | os.PathLike[str]) -> Path:
    """The file a manifest path names: a symlink is written (and locked) through, not replaced."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def lock_path(path: str | os.PathLike[str]) -> Path:
    target = real_file(path)
    return target.parent / f".{target.name}.lock"


@contextmanager
def manifest_lock(path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold the manifest's exclusive lock (waiting at most ``timeout`` seconds)."""
    from filelock import FileLock, Timeout

    if timeout is None:
        setting = os.environ.get("VALHALLA_LOCK_TIMEOUT", "")
        try:
            timeout = float(setting) if setting else LOCK_TIMEOUT_SECONDS
            if not 0 <= timeout < float("inf"):
                raise ValueError
        except ValueError:
            raise ValhallaError(
                f"VALHALLA_LOCK_TIMEOUT={setting!r} is not a number of seconds (0 or more)"
            ) from None
    lock = FileLock(lock_path(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeoutError(
            f"{os.fspath(path)} is locked by another valhalla-status process "
            f"(waited {timeout:g} s); try again"
        ) from None
    except OSError as exc:
        raise ValhallaError(
            f"cannot lock {os.fspath(path)}: {exc.strerror or exc} ({lock_path(path)})"
        ) from None
    try:
        yield
    finally:
        lock.release()
