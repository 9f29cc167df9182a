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
from datetime import datetime, timezone
from pathlib import Path

from .history import entry_id
from .layout import ENTRY_NAME
from .models import HistoryEntry, LandedEntry

_GIT_TIMEOUT = 120


@dataclass(frozen=True)
class Landings:
    """Entry file name -> (position on the branch, commit time), and why there are none when
    git's history could not be used (None: it was, or this is no git work tree)."""

    commits: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    note: str | None = None


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes] | None:
    command = ["git", "-c", "core.quotepath=off", "-c", "log.showSignature=false", *args]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
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


def landing_note(folder: Path) -> str | None:
    """Why changes in the history ``folder`` cannot be shown at the time they landed (a
    shallow clone), or None."""
    return SHALLOW_NOTE if _work_tree(_existing(folder.parent))[0] == "shallow" else None


def landings(folder: Path, revision: str | None = None) -> Landings:
    """The landings of the entry files in the history ``folder`` (which need not exist) on the
    current branch, or at the commit ``revision`` (its first-parent history)."""
    cwd = _existing(folder.parent)
    kind, commit, git_dir = _work_tree(cwd, revision or "HEAD")
    if kind != "full":
        return Landings(note=SHALLOW_NOTE if kind == "shallow" else None)
    relative = os.path.relpath(folder, cwd)
    if revision is not None or git_dir is None:
        return Landings(_additions(cwd, relative, commit))
    return Landings(_remembered_additions(cwd, relative, commit, _store(git_dir, folder)))


def _additions(
    cwd: Path, folder: str, commits: str, first: int = 0
) -> dict[str, tuple[int, datetime]]:
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


def _store(git_dir: Path, folder: Path) -> Path:
    key = hashlib.sha256(os.fsencode(os.path.abspath(folder))).hexdigest()[:16]
    return git_dir / "valhalla-status" / f"landings-{key}.json"


def _remembered_additions(
    cwd: Path, folder: str, commit: str, store: Path
) -> dict[str, tuple[int, datetime]]:
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


def _read_store(store: Path) -> tuple[str | None, dict[str, tuple[int, datetime]]]:
    try:
        data = json.loads(store.read_bytes())
        known = {
            str(name): (int(position), datetime.fromtimestamp(int(moment), timezone.utc))
            for name, (position, moment) in data["additions"].items()
        }
        return str(data["commit"]), known
    except (OSError, ValueError, TypeError, KeyError, OverflowError):
        return None, {}  # none yet, or unreadable: read everything again


def _write_store(store: Path, commit: str, found: dict[str, tuple[int, datetime]]) -> None:
    additions = {
        name: [position, int(when.timestamp())] for name, (position, when) in found.items()
    }
    data = json.dumps({"commit": commit, "additions": additions}).encode()
    with contextlib.suppress(OSError):  # a read-only git folder: nothing is kept
        store.parent.mkdir(exist_ok=True)
        temp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
        temp.write_bytes(data)
        os.replace(temp, store)


def _parse_log(output: bytes, first: int = 0) -> dict[str, tuple[int, datetime]]:
    commits: dict[str, tuple[int, datetime]] = {}
    for position, chunk in enumerate(output.split(b"\x01")[1:], start=first):
        header, _, names = chunk.partition(b"\0")
        try:
            when = datetime.fromtimestamp(int(header), timezone.utc)
        except (ValueError, OverflowError, OSError):
            continue
        for raw in names.split(b"\0"):
            name = os.fsdecode(raw.strip(b"\n")).rsplit("/", 1)[-1]
            if ENTRY_NAME.fullmatch(name):
                commits.setdefault(name, (position, when))
    return commits


def land(entries: list[LandedEntry], found: Landings) -> list[LandedEntry]:
    """``entries`` (in their own order) in landing order, each with the time it landed.

    Landing times never go back along that order, and a change never lands before it was
    made: a commit dated earlier (a clock that was behind) lands its changes at the latest of
    their own time and the time of the change before.
    """
    if not found.commits:
        return entries
    committed: list[tuple[int, int, LandedEntry]] = []
    pending: list[tuple[int, int, LandedEntry]] = []
    for index, entry in enumerate(entries):
        landed = found.commits.get(f"{entry.id}.yaml")
        if landed is None:
            pending.append((0, index, entry.model_copy(update={"landed_at": entry.at})))
        else:
            committed.append((landed[0], index, entry.model_copy(update={"landed_at": landed[1]})))
    committed.sort(key=lambda item: item[:2])
    result = []
    latest = None
    for _, _, entry in committed + pending:
        moment = (
            max(entry.landed_at, entry.at)
            if latest is None
            else max(entry.landed_at, entry.at, latest)
        )
        if moment != entry.landed_at:
            entry = entry.model_copy(update={"landed_at": moment})
        result.append(entry)
        latest = moment
    return result


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
