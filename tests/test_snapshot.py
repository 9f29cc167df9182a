"""What the read commands keep of a long history answers exactly as a full read does.

The read commands keep what they need of the history (its length, each pack's since, the newest
entries) in the git folder, trusted while the commit and the history's folders are unchanged.
Every step below changes what a read shows in another way (a change not committed, a commit, a
merge that lands a branch later, a reset, a file removed, added or left pending by hand), and
after each the reads with what was kept must equal the reads from nothing. A file system whose
clock ticks slower than the steps (every folder time equal) is covered by the racy rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import Clone, Team

from valhalla_status.storage import snapshot

HISTORY = "manifest/valhalla.history"
READS = (
    ("show", "--json"),
    ("summary",),
    ("pack", "show", "K"),
    ("history", "--limit", "3"),
    ("history", "--json", "--limit", "1000"),
)


def reads(clone: Clone) -> list[tuple[int, str, str]]:
    done = [clone.run(*args) for args in READS]
    return [(r.exit_code, r.stdout, r.stderr) for r in done]


def kept_files(clone: Clone) -> list[Path]:
    return sorted((clone.root / ".git" / "valhalla-status").glob("recent-*.json"))


def from_nothing(clone: Clone) -> list[tuple[int, str, str]]:
    for path in kept_files(clone):
        path.unlink()
    return reads(clone)


def entry_file(clone: Clone) -> Path:
    return sorted((clone.root / HISTORY).glob("*/*.yaml"))[-1]


def steps(team: Team) -> list[tuple[str, Callable[[], Any]]]:
    alice, bob = team.alice, team.bob
    kept_aside: list[bytes] = []

    def remove_entry() -> None:
        file = entry_file(alice)
        kept_aside.append(file.read_bytes())
        file.unlink()

    def put_back() -> None:
        (alice.root / HISTORY / "stray.yaml").unlink()
        (alice.root / HISTORY / f".pending-{'0' * 64}-x.yaml").unlink()
        alice.git("checkout", "-q", "--", ".")

    return [
        (
            "a change not committed",
            lambda: alice.change("pack", "set", "K", "--status", "pending", hour=1),
        ),
        ("committed", lambda: alice.commit("K pending", hour=2)),
        (
            "a change on another clone, pushed",
            lambda: (
                bob.git("pull", "-q", "origin", "main"),
                bob.change("pack", "set", "L", "--status", "experimental", hour=3),
                bob.commit("L", hour=3),
                bob.git("push", "-q", "origin", "main"),
            ),
        ),
        (
            "a branch made earlier, merged later",
            lambda: (
                alice.git("checkout", "-q", "-b", "late"),
                alice.change("pack", "set", "K", "--status", "deprecated", hour=4),
                alice.commit("K deprecated", hour=4),
                alice.git("checkout", "-q", "main"),
                alice.git("pull", "-q", "--no-rebase", "origin", "main", hour=5),
                alice.git("merge", "-q", "--no-ff", "--no-edit", "late", hour=6),
            ),
        ),
        ("the merge undone", lambda: alice.git("reset", "-q", "--hard", "HEAD~1")),
        ("an entry file removed by hand", remove_entry),
        (
            "an unknown file and a pending one",
            lambda: (
                (alice.root / HISTORY / "stray.yaml").write_text("x: 1\n"),
                (alice.root / HISTORY / f".pending-{'0' * 64}-x.yaml").write_text("x: 1\n"),
            ),
        ),
        ("put back", put_back),
        (
            "an entry copied directly into the history folder",
            lambda: (alice.root / HISTORY / entry_file(alice).name).write_bytes(
                entry_file(alice).read_bytes()
            ),
        ),
        (
            "the branch checked out",
            lambda: (
                (alice.root / HISTORY / entry_file(alice).name).unlink(),
                alice.git("checkout", "-q", "late"),
            ),
        ),
    ]


@pytest.fixture(params=["fine clock", "coarse clock"])
def clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The file system's clock: as it is, or one tick long over the whole test (every folder
    has the same times whatever changes, as on a file system with coarse timestamps)."""
    if request.param == "coarse clock":
        real = snapshot._stat
        tick = time.time_ns()

        def coarse(path: Path) -> snapshot.Stat | None:
            found = real(path)
            return None if found is None else (found[0], tick, tick)

        monkeypatch.setattr(snapshot, "_stat", coarse)
    return str(request.param)


@pytest.mark.slow
def test_reads_with_what_was_kept_equal_reads_from_nothing(team: Team, clock: str) -> None:
    alice = team.alice
    reads(alice)
    assert len(kept_files(alice)) == 1
    for label, step in steps(team):
        step()
        with_kept = reads(alice)
        assert with_kept == from_nothing(alice), label
        reads(alice)  # keep again, for the next step


def test_what_is_kept_is_used_while_nothing_changes(team: Team) -> None:
    """Unchanged, a read takes what was kept: a snapshot saying something else shows."""
    alice = team.alice
    before = alice.json("show", "--json")
    (kept,) = kept_files(alice)
    data = json.loads(kept.read_bytes())
    assert data["total"] == 1
    data["since"]["K"] = data["start"] + 3_600_000_000  # one hour after the init
    kept.write_text(json.dumps(data))
    after = alice.json("show", "--json")
    pack = next(p for p in after["packs"] if p["id"] == "K")
    assert pack["since"] != next(p for p in before["packs"] if p["id"] == "K")["since"]
    assert {**after, "packs": []} == {**before, "packs": []}


def test_a_full_read_keeps_what_was_kept_while_it_holds_and_explains_the_main_file(
    team: Team,
) -> None:
    alice = team.alice
    assert alice.run("validate").exit_code == 0
    (kept,) = kept_files(alice)
    held = kept.read_bytes()
    for command in (("validate",), ("build",)):
        assert alice.run(*command).exit_code == 0
        assert kept.read_bytes() == held, command  # nothing new to keep
    main = alice.root / "manifest" / "valhalla.yaml"
    main.write_bytes(main.read_bytes() + b"\n")  # another main file, the same manifest
    assert alice.run("validate").exit_code == 0
    explained = json.loads(kept.read_bytes())["explained"]
    assert explained == hashlib.sha256(main.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: {**data, "commit": "0" * 40},
        lambda data: {**data, "format": 0},
        lambda data: {**data, "folders": {**data["folders"], "": [0, 0, 0, ""]}},
        lambda data: {k: v for k, v in data.items() if k != "total"},
        lambda data: {**data, "newest": [[n, f"../../{n}", t] for n, _, t in data["newest"]]},
        lambda data: "not a snapshot",
        None,
    ],
    ids=[
        "another commit",
        "another format",
        "another folder",
        "incomplete",
        "a place outside the folder",
        "not an object",
        "not JSON",
    ],
)
def test_a_snapshot_that_does_not_hold_is_read_again(
    team: Team, damage: Callable[[Any], Any] | None
) -> None:
    alice = team.alice
    before = reads(alice)
    (kept,) = kept_files(alice)
    data = json.loads(kept.read_bytes())
    data["since"] = {"K": 0}  # would show if trusted
    kept.write_text("{not json" if damage is None else json.dumps(damage(data)))
    assert reads(alice) == before


def test_nothing_is_kept_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clone = Clone(tmp_path)
    for var in ("VALHALLA_MANIFEST", "VALHALLA_SITE", "SOURCE_DATE_EPOCH", "GIT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    clone.change("init", hour=0)
    clone.change("pack", "set", "K", "--status", "pending", hour=1)
    before = sorted(os.listdir(tmp_path))
    assert reads(clone) == reads(clone)
    assert reads(clone)[0][0] == 0
    assert sorted(os.listdir(tmp_path)) == before == [".gitignore", "manifest"]


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted((root / "manifest").rglob("*"))
        if path.is_file() and not path.name.startswith(".valhalla")
    }


@pytest.mark.slow
def ch(clone: Clone, *args: str, hour: float) -> Result:
    """A change as a user makes it without building the site."""
    return clone.run(*args, "--no-build", "--by", "someone", hour=hour)


def test_changes_made_with_what_was_kept_write_what_a_full_read_writes(
    team: Team, clock: str
) -> None:
    """Alice's changes use what was kept; Bob, on the same commit, reads everything before
    each. Every change, refusal and file written is the same, and Alice's history validates."""
    alice, bob = team.alice, team.bob
    main = "manifest/valhalla.yaml"

    def hand_edit(clone: Clone) -> None:
        path = clone.root / main
        path.write_text(path.read_text().replace("Analyst Essentials", "Analyst Basics"))

    removed: dict[Path, tuple[Path, bytes]] = {}

    def remove(clone: Clone) -> None:
        file = entry_file(clone)
        removed[clone.root] = (file, file.read_bytes())
        file.unlink()

    def put_back(clone: Clone) -> None:
        file, data = removed[clone.root]
        file.write_bytes(data)

    def undo_hand_edit(clone: Clone) -> None:
        path = clone.root / main
        path.write_text(path.read_text().replace("Analyst Basics", "Analyst Essentials"))

    steps: list[tuple[str, Callable[[Clone], Any]]] = [
        ("pack set", lambda c: ch(c, "pack", "set", "K", "--status", "pending", hour=1)),
        ("set-version", lambda c: ch(c, "set-version", "1.1.0", hour=2)),
        ("refused: pending", lambda c: ch(c, "backend", "complete", hour=3)),
        ("pack add", lambda c: ch(c, "pack", "add", "X", "--name", "Extra", hour=3)),
        ("stamped before the newest", lambda c: ch(c, "set-version", "1.2.0", hour=2.5)),
        ("committed", lambda c: c.commit("work", hour=4)),
        ("pack remove", lambda c: ch(c, "pack", "remove", "X", hour=5)),
        ("hand edit", hand_edit),
        (
            "refused: not explained",
            lambda c: ch(c, "pack", "set", "L", "--status", "pending", hour=6),
        ),
        ("hand edit undone", undo_hand_edit),
        ("pack set again", lambda c: ch(c, "pack", "set", "L", "--status", "pending", hour=7)),
        ("an entry removed by hand", remove),
        (
            "refused: an entry missing",
            lambda c: ch(c, "pack", "set", "M", "--status", "pending", hour=8),
        ),
        ("restored", put_back),
        (
            "backend incomplete note",
            lambda c: ch(c, "backend", "incomplete", "--notes", "n", hour=9),
        ),
    ]
    alice.run("summary")
    for label, step in steps:
        for path in kept_files(bob):
            path.unlink()
        said = [step(clone) for clone in (alice, bob)]
        if said[0] is not None and hasattr(said[0], "exit_code"):
            outcome = [(r.exit_code, r.stdout, r.stderr) for r in said]
            assert outcome[0] == outcome[1], label
        assert tree(alice.root) == tree(bob.root), label
    assert alice.run("validate").exit_code == 0, alice.run("validate").stderr
    assert reads(alice) == reads(bob)
