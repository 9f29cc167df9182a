"""Parallel changes on two branches merge with plain ``git merge``: no driver, no attributes.

Each test builds a real git repository with ``init``, makes changes on two branches with the
CLI, merges them with git, and checks what a team relies on: the merged manifest validates, is
canonical, its history holds every change in time order, and ``updated_at`` is the newest.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import EPOCH, MANIFEST_REL, Workspace

HOUR = 3600
Commands = list[tuple[str, ...]]


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


@dataclass
class Repo:
    ws: Workspace
    clock: int = EPOCH

    @property
    def root(self) -> Path:
        return self.ws.root

    def run(self, *args: str) -> Result:
        """One CLI command, stamped one hour after the previous one."""
        self.clock += HOUR
        env = {"SOURCE_DATE_EPOCH": str(self.clock)}
        return self.ws.run(*args, env=env)

    def change(self, *args: str) -> None:
        result = self.run(*args, "--no-build", "--by", "tester")
        assert result.exit_code == 0, result.output
        assert "No change" not in result.output, result.output

    def commit(self, message: str) -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", message)

    def branch(self, name: str, commands: Commands) -> None:
        git(self.root, "checkout", "-qb", name, "main")
        for command in commands:
            self.change(*command)
        self.commit(name)

    def json(self, *args: str) -> dict[str, object]:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        loaded = json.loads(result.stdout)
        assert isinstance(loaded, dict)
        return loaded


@pytest.fixture
def repo(ws: Workspace) -> Iterator[Repo]:
    git(ws.root, "init", "-q", "-b", "main")
    (ws.root / ".gitignore").write_text(".*.lock\nsite/\n")
    made = Repo(ws)
    result = made.run("init", "--by", "alice", "--no-build")
    assert result.exit_code == 0, result.output
    made.commit("init")
    yield made


def merge_branches(
    repo: Repo, ours: Commands, theirs: Commands
) -> subprocess.CompletedProcess[str]:
    repo.branch("ours", ours)
    repo.branch("theirs", theirs)
    git(repo.root, "checkout", "-q", "ours")
    return git(repo.root, "merge", "--no-edit", "theirs", check=False)


def assert_merged_tree_is_sound(repo: Repo, expected_changes: int) -> None:
    validate = repo.run("validate")
    assert validate.exit_code == 0, validate.output
    fmt = repo.run("fmt", "--check")
    assert fmt.exit_code == 0, fmt.output
    history = repo.json("history", "--json", "--limit", "100000")["history"]
    assert isinstance(history, list)
    times = [entry["at"] for entry in history]
    assert times == sorted(times, reverse=True), "history is newest first, in time order"
    assert len(history) == expected_changes + 1  # and the init entry
    assert history[-1]["action"] == "init"
    status = repo.json("show", "--json")
    assert status["updated_at"] == times[0]


CASES: dict[str, tuple[Commands, Commands]] = {
    "neighbour packs": (
        [("pack", "set", "K", "--status", "pending")],
        [("pack", "set", "L", "--status", "deprecated")],
    ),
    "first and second pack": (
        [("pack", "set", "H", "--status", "pending")],
        [("pack", "set", "I", "--status", "experimental")],
    ),
    "last two packs": (
        [("pack", "set", "W", "--status", "pending")],
        [("pack", "set", "V", "--status", "deprecated")],
    ),
    "first and last pack": (
        [("pack", "set", "H", "--status", "deprecated")],
        [("pack", "set", "W", "--status", "experimental")],
    ),
    "a pack and the system notes": (
        [("pack", "set", "H", "--status", "pending")],
        [("set-notes", "Maintenance window on Friday")],
    ),
    "a pack and multi-line system notes": (
        [("pack", "set", "H", "--status", "pending", "--notes", "vendor\nfix due")],
        [("set-notes", "line one\nline two")],
    ),
    "a pack added and another pack changed": (
        [("pack", "add", "X", "--name", "New Pack", "--group", "Professional")],
        [("pack", "set", "K", "--status", "pending")],
    ),
    "a pack added and the last pack changed": (
        [("pack", "add", "X", "--name", "New Pack", "--group", "Professional")],
        [("pack", "set", "W", "--status", "pending", "--notes", "waiting for vendor fix")],
    ),
    "a pack's status twice and the version": (
        [
            ("pack", "set", "K", "--status", "pending"),
            ("pack", "set", "K", "--status", "installed"),
        ],
        [("set-version", "1.1.0")],
    ),
    "complete and set-version": (
        [("complete", "--notes", "Backend verification passed")],
        [("set-version", "1.2.0")],
    ),
    "incomplete-then-complete and the version with notes": (
        [("complete",), ("incomplete",)],
        [("set-version", "2.0.0", "--notes", "Major release")],
    ),
    "a pack removed and its neighbours changed": (
        [("pack", "remove", "K", "--notes", "retired")],
        [("pack", "set", "J", "--status", "pending"), ("pack", "set", "L", "--status", "pending")],
    ),
    "a pack's note and its neighbour's status": (
        [("pack", "set", "K", "--notes", "checked by ops")],
        [("pack", "set", "L", "--status", "pending"), ("pack", "set", "J", "--notes", "ok")],
    ),
    "a pack's note cleared and its neighbour's note set": (
        [("pack", "set", "K", "--notes", "one"), ("pack", "set", "K", "--clear-notes")],
        [("pack", "set", "L", "--notes", "two")],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_parallel_changes_to_different_things_merge_with_plain_git(repo: Repo, case: str) -> None:
    ours, theirs = CASES[case]
    merged = merge_branches(repo, ours, theirs)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert_merged_tree_is_sound(repo, len(ours) + len(theirs))


@pytest.mark.parametrize("noted", [False, True], ids=["no note before", "a note before"])
def test_a_packs_status_and_its_note_changed_on_two_branches_merge(repo: Repo, noted: bool) -> None:
    if noted:
        repo.change("pack", "set", "K", "--notes", "checked by ops")
        repo.commit("a note on K")
    merged = merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending", "--keep-notes")],
        [("pack", "set", "K", "--notes", "vendor ticket 42")],
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert_merged_tree_is_sound(repo, 2 + noted)
    pack = repo.json("pack", "show", "K", "--json")
    assert (pack["status"], pack["notes"]) == ("pending", "vendor ticket 42")
    assert (
        "- id: K\n  status: pending\n  name: Executor Pro\n  notes: vendor ticket 42\n"
        "  group: Professional\n- id: L\n" in repo.ws.manifest.read_text()
    )


def test_the_merged_status_holds_both_branches_changes(repo: Repo) -> None:
    merged = merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix")],
        [("pack", "set", "M", "--status", "deprecated"), ("set-version", "1.1.0")],
    )
    assert merged.returncode == 0, merged.stderr
    status = repo.json("show", "--json")
    packs = {p["id"]: p for p in status["packs"]}  # type: ignore[attr-defined]
    assert packs["K"]["status"] == "pending"
    assert packs["K"]["notes"] == "waiting for vendor fix"
    assert packs["M"]["status"] == "deprecated"
    assert status["version"] == "1.1.0"
    # since: the time of each pack's own status change, whichever branch made it
    history = repo.json("history", "--json")["history"]
    by_field = {
        field: entry["at"]
        for entry in history  # type: ignore[attr-defined]
        for field in entry["changes"]
    }
    assert packs["K"]["since"] == by_field["packs.K.status"]
    assert packs["M"]["since"] == by_field["packs.M.status"]
    assert packs["H"]["since"] == history[-1]["at"]  # type: ignore[index]


def test_changes_made_at_the_same_second_on_both_branches_merge(repo: Repo) -> None:
    repo.branch("ours", [("pack", "set", "K", "--status", "pending")])
    repo.clock -= HOUR
    repo.branch("theirs", [("pack", "set", "M", "--status", "pending")])
    git(repo.root, "checkout", "-q", "ours")
    merged = git(repo.root, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode == 0, merged.stderr
    assert_merged_tree_is_sound(repo, 2)


def test_the_same_change_on_both_branches_merges_as_one_entry(repo: Repo) -> None:
    repo.branch("ours", [("pack", "set", "K", "--status", "pending")])
    repo.clock -= HOUR
    repo.branch("theirs", [("pack", "set", "K", "--status", "pending")])
    git(repo.root, "checkout", "-q", "ours")
    merged = git(repo.root, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode == 0, merged.stderr
    assert_merged_tree_is_sound(repo, 1)


def test_a_status_change_that_clears_the_note_conflicts_with_a_new_note(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--notes", "checked by ops")
    repo.commit("a note on K")
    merged = merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending")],
        [("pack", "set", "K", "--notes", "vendor ticket 42")],
    )
    assert merged.returncode != 0
    conflicted = git(repo.root, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["manifest/valhalla.yaml"]


def test_a_real_disagreement_conflicts(repo: Repo) -> None:
    merged = merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending")],
        [("pack", "set", "K", "--status", "deprecated")],
    )
    assert merged.returncode != 0
    assert "CONFLICT" in merged.stdout
    assert "manifest/valhalla.yaml" in merged.stdout
    assert "valhalla.history" not in merged.stdout  # the history files never conflict


def _resolve(repo: Repo, keep: str) -> None:
    """Resolve the conflict in the main file by hand, keeping ``keep`` as K's status line."""
    path = repo.ws.manifest
    lines = path.read_text().splitlines(keepends=True)
    out, inside = [], False
    for line in lines:
        if line.startswith("<<<<<<<"):
            inside = True
            out.append(keep)
        elif line.startswith(">>>>>>>"):
            inside = False
        elif not inside:
            out.append(line)
    path.write_text("".join(out))


def test_after_a_resolution_that_leaves_a_marker_validate_names_its_line(repo: Repo) -> None:
    merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending")],
        [("pack", "set", "K", "--status", "deprecated")],
    )
    text = repo.ws.manifest.read_text()
    marker_line = text.splitlines().index(
        next(line for line in text.splitlines() if line.startswith("======="))
    )
    # keep both sides' content but forget the middle marker
    repo.ws.manifest.write_text(
        "".join(
            line
            for line in text.splitlines(keepends=True)
            if not line.startswith(("<<<<<<<", ">>>>>>>"))
        )
    )
    result = repo.run("validate")
    assert result.exit_code == 1
    assert f"manifest/valhalla.yaml:{marker_line}: merge-conflict marker '======='" in (
        result.output
    )


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        ("  status: pendign\n", "packs[3].status: 'pendign' is not one of installed"),
        ("  stauts: pending\n", "packs[3].stauts: unknown field 'stauts' (did you mean 'status'?)"),
        ("  status: pending\n  status: deprecated\n", "packs[3].status: duplicate key 'status'"),
        ("", "packs[3].status: required field is missing"),
    ],
)
def test_after_a_wrong_hand_resolution_validate_says_what_is_wrong(
    repo: Repo, kept: str, message: str
) -> None:
    merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending")],
        [("pack", "set", "K", "--status", "deprecated")],
    )
    _resolve(repo, kept)
    result = repo.run("validate")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if message in line)
    assert line.startswith("manifest/valhalla.yaml:")
    assert int(line.split(":")[1]) > 0


def test_after_a_good_hand_resolution_the_tree_is_sound(repo: Repo) -> None:
    merge_branches(
        repo,
        [("pack", "set", "K", "--status", "pending")],
        [("pack", "set", "K", "--status", "deprecated")],
    )
    _resolve(repo, "  status: deprecated\n")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-qm", "merge")
    assert_merged_tree_is_sound(repo, 2)
    status = repo.json("show", "--json")
    assert status["packs"][3]["status"] == "deprecated"  # type: ignore[index]


def test_two_packs_added_on_both_branches_conflict_only_at_the_end_of_the_list(
    repo: Repo,
) -> None:
    merged = merge_branches(
        repo,
        [("pack", "add", "X", "--name", "Ex", "--group", "Professional")],
        [("pack", "add", "Y", "--name", "Why", "--group", "Professional")],
    )
    assert merged.returncode != 0
    conflicted = git(repo.root, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["manifest/valhalla.yaml"]


def test_complete_on_one_clone_and_a_pack_pending_on_another_merge_cleanly_and_validate_refuses(
    repo: Repo, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo.root, "push", "-q", str(remote), "main")
    one, two = tmp_path / "one", tmp_path / "two"
    for clone in (one, two):
        git(tmp_path, "clone", "-q", str(remote), str(clone))

    def run(clone: Path, *args: str) -> Result:
        return repo.run(
            "--manifest", str(clone / MANIFEST_REL), "--site", str(clone / "site"), *args
        )

    assert run(one, "complete", "--no-build", "--by", "alice").exit_code == 0
    git(one, "add", "-A")
    git(one, "commit", "-qm", "complete")
    git(one, "push", "-q", "origin", "main")
    set_pending = run(two, "pack", "set", "L", "--status", "pending", "--no-build", "--by", "bob")
    assert set_pending.output == "Pack L: installed → pending\n"
    git(two, "add", "-A")
    git(two, "commit", "-qm", "L pending")
    pulled = git(two, "pull", "--no-rebase", "--no-edit", "origin", "main")
    assert "CONFLICT" not in pulled.stdout + pulled.stderr

    text = (two / MANIFEST_REL).read_text()
    assert "  backend_complete: true\n" in text
    line = text.splitlines().index("- id: L") + 2  # its status, the line after the id
    assert text.splitlines()[line - 1] == "  status: pending"
    problem = (
        f"{MANIFEST_REL}:{line}: packs[4].status: pending while the backend is complete; "
        "set the pack's status (valhalla-status pack set L --status installed) or mark the "
        "backend in development (valhalla-status incomplete)\n"
    )
    expected = f"{two}/{problem}"
    validate = run(two, "validate")
    assert (validate.exit_code, validate.stdout, validate.stderr) == (1, "", expected)
    build = run(two, "build")
    assert (build.exit_code, build.stderr) == (1, expected)
    assert not (two / "site").exists()
    diff = run(two, "diff", "HEAD^2", "HEAD")
    assert (diff.exit_code, diff.stderr) == (1, f"error: invalid manifest: HEAD:{problem}")
    # the way out the message names settles it
    settled = run(two, "incomplete", "--no-build", "--by", "bob")
    assert (settled.exit_code, settled.output) == (0, "Backend marked in development\n")
    assert run(two, "validate").output == f"{two / MANIFEST_REL}: valid (16 packs)\n"
