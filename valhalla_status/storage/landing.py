"""When each change reached the branch: the landing order and time of the history, from git.

In a git work tree a change is published in the order it reached the current branch (the
branch's first-parent history), at the time it landed: the commit time of the first-parent
commit that added its history file (a merge commit, a squashed commit, or the commit itself
when rebased or pushed directly). A change not committed yet lands at its own time, after the
committed ones. Outside git every change lands at its own time; so it does in a shallow clone,
whose history is cut, and :func:`landings` says so.

One ``git log`` call reads the landings, however long the history; what it read up to a
commit is kept in the repository's git folder, so the next read asks git only about the
commits since (see below).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..models import HistoryEntry
from ..rules.history import entry_id
from .files import read_regular_file
from .layout import ENTRY_NAME

_GIT_TIMEOUT = 120
MAX_KEPT_BYTES = 2**31  # what is kept for a history far beyond the manifest's limits
MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Landings:
    """Entry file name -> (position on the branch, commit time in microseconds since the
    epoch), and why there are none when git's history could not be used (None: it was, or
    this is no git work tree)."""

    commits: dict[str, tuple[int, int]] = field(default_factory=dict)
    note: str | None = None
    kept_in: Path | None = None  # the file keeping them, in the git folder (None: none kept)


# Paths git takes from the environment, relative to the folder git was started in.
_GIT_PATHS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
)


def git_environment() -> dict[str, str]:
    """The environment git runs in: this process's, with a repository named by ``GIT_DIR``
    kept as git sees it from the current folder.

    git runs in the manifest's folder, where a relative ``GIT_DIR`` (a hook run by ``git
    --git-dir=.git commit`` has one) names another folder, and where git takes the current
    folder for the top of the work tree when ``GIT_DIR`` is set without ``GIT_WORK_TREE``.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    if not env.get("GIT_DIR"):
        return env
    try:
        for name in _GIT_PATHS:
            if env.get(name):
                env[name] = os.path.abspath(env[name])
    except OSError:  # the current folder is gone: git cannot resolve them either
        return env
    if not env.get("GIT_WORK_TREE"):
        try:
            top = subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],
                capture_output=True,
                timeout=_GIT_TIMEOUT,
                env=env,
            )
        except (OSError, subprocess.SubprocessError):
            return env
        if top.returncode == 0 and top.stdout.strip():
            env["GIT_WORK_TREE"] = os.fsdecode(top.stdout.rstrip(b"\n"))
    return env


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes] | None:
    command = ["git", "-c", "core.quotepath=off", "-c", "log.showSignature=false", *args]
    env = git_environment()
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT, env=env)
    except (OSError, subprocess.SubprocessError):
        return None


SHALLOW_NOTE = (
    "a shallow clone: changes are shown at the time they were made, not when they landed "
    "(fetch the whole history: `git fetch --unshallow`)"
)


def _existing(folder: Path) -> Path:
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def _work_tree(cwd: Path, revision: str = "HEAD") -> tuple[str, str, Path | None]:
    """``full``, ``shallow`` (a clone whose history is cut), or ``none`` (no git work tree, or
    no commit yet); the commit ``revision`` names; the repository's git folder."""
    state = _git(
        [
            "rev-parse",
            "--is-inside-work-tree",
            "--is-shallow-repository",
            "--git-common-dir",
            revision,
        ],
        cwd,
    )
    said = state.stdout.splitlines() if state is not None and state.returncode == 0 else []
    if said[:1] != [b"true"] or len(said) < 4:
        return "none", "", None
    kind = "shallow" if said[1] == b"true" else "full"
    return kind, said[3].decode(), cwd / os.fsdecode(said[2])


GitState = tuple[str, str, "Path | None"]


def git_state(folder: Path) -> GitState:
    """The git work tree the history ``folder`` (which need not exist) is in: ``full``,
    ``shallow`` or ``none``, the commit checked out, and the repository's git folder."""
    return _work_tree(_existing(folder.parent))


def landing_note(folder: Path) -> str | None:
    """Why changes in the history ``folder`` cannot be shown at the time they landed (a
    shallow clone), or None."""
    return SHALLOW_NOTE if _work_tree(_existing(folder.parent))[0] == "shallow" else None


def landings(
    folder: Path, revision: str | None = None, *, state: GitState | None = None
) -> Landings:
    """The landings of the entry files in the history ``folder`` (which need not exist) on the
    current branch, or at the commit ``revision`` (its first-parent history); ``state``: what
    :func:`git_state` said of the current branch, when the caller asked already."""
    cwd = _existing(folder.parent)
    kind, commit, git_dir = state if state and not revision else _work_tree(cwd, revision or "HEAD")
    if kind != "full":
        return Landings(note=SHALLOW_NOTE if kind == "shallow" else None)
    relative = os.path.relpath(folder, cwd)
    if revision is not None or git_dir is None:
        return Landings(_additions(cwd, relative, commit))
    store = store_path(git_dir, folder, "landings")
    return Landings(_remembered_additions(cwd, relative, commit, store), kept_in=store)


def _additions(cwd: Path, folder: str, commits: str, first: int = 0) -> dict[str, tuple[int, int]]:
    """Each entry file added on the first-parent history ``commits`` names (a commit, or a
    range ``A..B``): the position of the commit that added it (from ``first``) and its time."""
    log = _git(
        [
            "log",
            "--first-parent",
            "--diff-merges=first-parent",
            "--no-renames",
            "--no-ext-diff",
            "--diff-filter=A",
            "--name-only",
            "-z",
            "--reverse",
            "--format=%x01%ct",
            commits,
            "--",
            folder,
        ],
        cwd,
    )
    return _parse_log(log.stdout, first) if log is not None and log.returncode == 0 else {}


# --- what has been read, kept in the repository's git folder ----------------------------------
#
# Reading the landings diffs every first-parent commit's history folder against its parent's:
# with a flat folder that grows with commits x entries (about 10 s at 10,000 entries in 10,000
# commits). What a commit's first-parent history added never changes, so the landings read up
# to a commit are kept in <git folder>/valhalla-status/, one file per history folder, and the
# next read only asks git about the commits since (when that commit is still on the branch's
# first-parent history; otherwise it reads everything again and replaces the file).


def store_path(git_dir: Path, folder: Path, kind: str) -> Path:
    """The file keeping what was read of ``folder`` (its ``kind``: ``landings``…), named after
    the folder's place in the repository (the same in every clone, so a CI cache restored into
    another checkout still fits)."""
    where = os.path.relpath(os.path.abspath(folder), os.path.abspath(git_dir.parent))
    key = hashlib.sha256(os.fsencode(where)).hexdigest()[:16]
    return git_dir / "valhalla-status" / f"{kind}-{key}.json"


def _remembered_additions(
    cwd: Path, folder: str, commit: str, store: Path
) -> dict[str, tuple[int, int]]:
    tip, known = _read_store(store)
    if tip == commit:
        return known
    if tip is not None and _on_first_parent_history(cwd, tip, commit):
        first = 1 + max((position for position, _ in known.values()), default=-1)
        found = {**_additions(cwd, folder, f"{tip}..{commit}", first), **known}
    else:
        found = _additions(cwd, folder, commit)
    _write_store(store, commit, found)
    return found


def _on_first_parent_history(cwd: Path, ancestor: str, commit: str) -> bool:
    listed = _git(["rev-list", "--first-parent", commit], cwd)
    return (
        listed is not None
        and listed.returncode == 0
        and ancestor.encode() in set(listed.stdout.split())
    )


def _read_store(store: Path) -> tuple[str | None, dict[str, tuple[int, int]]]:
    try:
        data = json.loads(read_kept(store))
        known = {
            str(name): (int(position), int(moment) * MICROS)
            for name, (position, moment) in data["additions"].items()
        }
        return str(data["commit"]), known
    except (OSError, ValueError, TypeError, KeyError, OverflowError):
        return None, {}  # none yet, or unreadable: read everything again


def _write_store(store: Path, commit: str, found: dict[str, tuple[int, int]]) -> None:
    additions = {name: [position, when // MICROS] for name, (position, when) in found.items()}
    keep_json(store, {"commit": commit, "additions": additions})


def read_kept(store: Path) -> bytes:
    """The bytes of a file kept in the git folder; only a regular file is read (a FIFO or a
    device put there is never waited on: OSError, as for a file that is not there)."""
    return read_regular_file(store, MAX_KEPT_BYTES)


def keep_json(store: Path, data: object) -> None:
    """Replace ``store`` (a file in the git folder) with ``data`` as JSON (see
    :func:`keep_bytes`)."""
    keep_bytes(store, json.dumps(data).encode())


def keep_bytes(store: Path, data: bytes) -> None:
    """Replace ``store`` (a file in the git folder) with ``data``; a git folder that cannot be
    written keeps nothing, and the next read works it out again."""
    with contextlib.suppress(OSError):
        store.parent.mkdir(exist_ok=True)
        temp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
        temp.write_bytes(data)
        os.replace(temp, store)


def _parse_log(output: bytes, first: int = 0) -> dict[str, tuple[int, int]]:
    commits: dict[str, tuple[int, int]] = {}
    for position, chunk in enumerate(output.split(b"\x01")[1:], start=first):
        header, _, names = chunk.partition(b"\0")
        try:
            when = int(header) * MICROS
        except ValueError:
            continue
        for raw in names.split(b"\0"):
            name = os.fsdecode(raw.strip(b"\n")).rsplit("/", 1)[-1]
            if ENTRY_NAME.fullmatch(name):
                commits.setdefault(name, (position, when))
    return commits


def micros(moment: datetime) -> int:
    """A time as microseconds since the epoch (exact, unlike a float timestamp)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def landing_order(made: list[tuple[str, int]], found: Landings) -> list[tuple[int, int]]:
    """The landing order of entries given as ``(file name, time made)`` in their own order
    (times in microseconds, see :func:`micros`): ``(index into made, time landed)``, in the
    order they landed.

    Committed entries in the order of the commits that added them, then the others in their
    own order, at their own time. Landing times never go back along that order, and a change
    never lands before it was made: a commit dated earlier (a clock that was behind) lands its
    changes at the latest of their own time and the time of the change before.
    """
    if not found.commits:
        return [(index, at) for index, (_, at) in enumerate(made)]
    committed: list[tuple[int, int, int]] = []
    pending: list[tuple[int, int, int]] = []
    for index, (name, at) in enumerate(made):
        commit = found.commits.get(name)
        if commit is None:
            pending.append((0, index, at))
        else:
            committed.append((commit[0], index, commit[1]))
    committed.sort(key=lambda item: item[:2])
    order: list[tuple[int, int]] = []
    latest = -(2**63)
    for _, index, when in committed + pending:
        latest = max(when, made[index][1], latest)
        order.append((index, latest))
    return order


def removed_names(found: Landings, entries: Sequence[HistoryEntry]) -> list[str]:
    """The entry files that landed on the branch since its ``init`` and are gone now (a
    ``git revert`` of a change, a file deleted by hand): a recorded change is never removed."""
    present = {f"{entry_id(entry)}.yaml" for entry in entries}
    inits = [found.commits.get(f"{entry_id(e)}.yaml") for e in entries if e.action == "init"]
    if None in inits:
        return []  # the history was started again (``init --force``) and is not committed yet
    start = max((landed[0] for landed in inits if landed is not None), default=0)
    return sorted(
        name
        for name, (position, _) in found.commits.items()
        if position >= start and name not in present
    )
