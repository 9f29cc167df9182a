"""The record tells the truth after git: a team's history, merged, reverted and landed.

Each test is a team on real git repositories: a bare remote and two clones (alice's and bob's),
changes made with the CLI on branches, and git's own merge, squash, rebase and revert. Times are
pinned: a change is stamped with SOURCE_DATE_EPOCH, a commit with GIT_COMMITTER_DATE, so what
landed when is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import (
    Clone,
    Team,
    entry_files,
    git,
    human,
    iso,
    other_files,
    snapshot,
)

from valhalla_status.cli import main
from valhalla_status.storage.layout import entry_place

MANIFEST = "manifest/valhalla.yaml"
HISTORY = "manifest/valhalla.history"


def land(clone: Clone, branch: str, style: str, hour: float) -> None:
    """Bring ``branch`` into main the way a hosting service's button does."""
    clone.git("checkout", "-q", "main")
    if style == "merge":
        clone.git("merge", "-q", "--no-ff", "--no-edit", branch, hour=hour)
    elif style == "squash":
        clone.git("merge", "-q", "--squash", branch, hour=hour)
        clone.git("commit", "-qm", f"{branch} (squashed)", hour=hour)
    else:
        clone.git("checkout", "-q", branch)
        clone.git("rebase", "-q", "main", hour=hour)
        clone.git("checkout", "-q", "main")
        clone.git("merge", "-q", "--ff-only", branch, hour=hour)


# --- landing order and time ---------------------------------------------------------------------


@pytest.mark.parametrize("style", ["merge", "squash", "rebase"])
def test_a_change_that_lands_late_is_published_when_and_where_it_landed(
    team: Team, style: str
) -> None:
    bob, alice = team.bob, team.alice
    bob.git("checkout", "-q", "-b", "k-pending")
    bob.change("pack", "set", "K", "--status", "pending", "--notes", "vendor fix", hour=8)
    bob.commit("K pending", hour=8)
    for hour in (9, 10, 11):  # three other changes land on main first
        alice.change("set-version", f"1.{hour}.0", hour=hour)
        alice.commit(f"version at {hour}", hour=hour)
    alice.git("push", "-q", "origin", "main")
    bob.git("checkout", "-q", "main")
    bob.git("pull", "-q", "--ff-only", "origin", "main")
    land(bob, "k-pending", style, hour=15)

    history = bob.history()
    assert [entry["action"] for entry in history] == [
        "pack-set",
        "set-version",
        "set-version",
        "set-version",
        "init",
    ]
    newest = history[0]
    assert (newest["at"], newest["landed_at"]) == (iso(8), iso(15))
    assert bob.json("show", "--json")["updated_at"] == iso(15)
    assert bob.json("pack", "show", "K", "--json")["since"] == iso(15)
    line = bob.run("history", "--limit", "1").stdout
    assert line.startswith(f"{human(15)}  {newest['id']}  bob  pack-set  ")
    assert line.endswith(f"  [made {human(8)}]\n")
    assert bob.run("validate").exit_code == 0


def test_uncommitted_changes_land_at_their_own_time_after_the_committed_ones(team: Team) -> None:
    alice = team.alice
    alice.change("set-version", "1.1.0", hour=5)
    history = alice.history()
    assert [(e["action"], e["landed_at"]) for e in history] == [
        ("set-version", iso(5)),
        ("init", iso(0)),
    ]


def test_outside_git_every_change_lands_at_its_own_time(tmp_path: Path) -> None:
    clone = Clone(tmp_path / "plain")
    clone.root.mkdir()
    clone.change("init", hour=0)
    clone.change("set-version", "1.1.0", hour=2)
    assert [(e["at"], e["landed_at"]) for e in clone.history()] == [
        (iso(2), iso(2)),
        (iso(0), iso(0)),
    ]


def test_a_shallow_clone_shows_changes_at_their_own_time_and_build_says_so(
    team: Team, tmp_path: Path
) -> None:
    alice = team.alice
    alice.change("set-version", "1.1.0", hour=3)
    alice.commit("1.1.0", hour=7)
    alice.git("push", "-q", "origin", "main")
    assert alice.history()[0]["landed_at"] == iso(7)
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{team.remote}", "shallow")
    shallow = Clone(tmp_path / "shallow")
    assert shallow.history()[0]["landed_at"] == iso(3)
    built = shallow.run("build")
    assert built.exit_code == 0, built.output
    assert "note: a shallow clone: changes are shown at the time they were made" in built.stderr


# --- stable identities ------------------------------------------------------------------------


def feed_ids(clone: Clone) -> dict[str, str]:
    """Feed entry title -> <id>, from the built feed."""
    import xml.etree.ElementTree as ET

    result = clone.run("build")
    assert result.exit_code == 0, result.output
    atom = "{http://www.w3.org/2005/Atom}"
    root = ET.parse(clone.root / "site" / "feed.xml").getroot()
    return {
        str(entry.findtext(f"{atom}title")): str(entry.findtext(f"{atom}id"))
        for entry in root.iter(f"{atom}entry")
    }


def test_feed_ids_and_page_anchors_of_older_entries_stay_when_a_change_lands_between(
    team: Team,
) -> None:
    bob, alice = team.bob, team.alice
    bob.git("checkout", "-q", "-b", "late")
    bob.change("pack", "set", "K", "--status", "deprecated", hour=1)
    bob.commit("K deprecated", hour=1)
    for hour in (2, 3):
        alice.change("set-version", f"1.{hour}.0", hour=hour)
        alice.commit(f"{hour}", hour=hour)
    alice.git("push", "-q", "origin", "main")
    bob.git("checkout", "-q", "main")
    bob.git("pull", "-q", "--ff-only", "origin", "main")
    before = feed_ids(bob)
    anchors_before = {e["id"] for e in bob.history()}
    land(bob, "late", "merge", hour=4)
    after = feed_ids(bob)
    assert {title: after[title] for title in before} == before
    assert len(after) == len(before) + 1
    page = (bob.root / "site" / "history.html").read_text()
    for entry_id in anchors_before:
        assert f'id="change-{entry_id}"' in page


# --- append-only history, undo as a new change --------------------------------------------------


def test_git_revert_of_a_merged_change_fails_validate_and_points_to_revert(team: Team) -> None:
    alice = team.alice
    alice.git("checkout", "-q", "-b", "k")
    alice.change("pack", "set", "K", "--status", "pending", hour=1)
    alice.commit("K pending", hour=1)
    land(alice, "k", "merge", hour=2)
    entry = alice.history()[0]["id"]
    file = f"{HISTORY}/{entry_place(f'{entry}.yaml')}"
    alice.git("revert", "--no-edit", "-m", "1", "HEAD", hour=3)

    said = alice.fails("validate")
    assert said == (
        f"error: {file}: a recorded change was removed (it landed on this branch, and the file "
        f"is gone); put the file back from git (`git log --diff-filter=D -- {file}` shows the "
        f"commit that removed it), then undo the change with `valhalla-status revert {entry}`\n"
    )
    assert alice.git("log", "--format=%s", "--diff-filter=D", "--", file) == (
        "Revert \"Merge branch 'k'\"\n"
    )
    against_base = alice.fails("validate", "--base", "HEAD~1")
    assert f"{file}: removed since HEAD~1;" in against_base
    assert f"`git checkout HEAD~1 -- {file}`" in against_base
    assert f"`valhalla-status revert {entry}`" in against_base

    # The way that validates: put the file back, then revert with the tool.
    alice.git("checkout", "HEAD~1", "--", file)
    alice.change("revert", entry, hour=4)
    history = alice.history()
    assert history[0]["action"] == "revert"
    assert history[0]["changes"] == {"packs.K.status": ["pending", "installed"]}
    assert history[0]["notes"] == f"Revert of {entry}"
    assert alice.json("pack", "show", "K", "--json")["status"] == "installed"
    assert alice.run("validate").exit_code == 0
    assert alice.run("validate", "--base", "HEAD~1").exit_code == 0
    built = alice.run("build")
    assert built.exit_code == 0, built.output
    assert "Change reverted" in (alice.root / "site" / "history.html").read_text()


def drop_a_recorded_change(clone: Clone) -> str:
    """Two notes changes committed, then the first one's file removed in a commit (the main
    file still holds what the history says); the removed entry's id."""
    clone.change("set-notes", "to be dropped", hour=1)
    clone.commit("notes", hour=1)
    clone.change("set-notes", "kept", hour=2)
    clone.commit("more notes", hour=2)
    dropped = str(clone.history()[1]["id"])
    clone.git("rm", "-q", f"{HISTORY}/{entry_place(f'{dropped}.yaml')}", hour=3)
    clone.commit("drop a recorded change", hour=3)
    return dropped


def test_a_repository_named_by_git_dir_is_read_as_git_reads_it_from_the_current_folder(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook of ``git --git-dir=.git commit`` runs with a relative GIT_DIR; one run from a
    linked worktree, or a user, may set an absolute one without GIT_WORK_TREE."""
    alice = team.alice
    dropped = drop_a_recorded_change(alice)
    commands = [["validate"], ["diff", "HEAD~1..HEAD"], ["history", "--json"], ["show", "--json"]]
    plain = [alice.run(*command) for command in commands]
    assert plain[0].exit_code == 1
    assert "a recorded change was removed" in plain[0].stderr
    assert f"{dropped}" in plain[1].stdout

    monkeypatch.chdir(alice.root)
    for git_dir in (".git", str(alice.root / ".git")):
        for command, expected in zip(commands, plain, strict=True):
            said = CliRunner().invoke(main, command, env={"GIT_DIR": git_dir})
            assert (said.exit_code, said.stdout, said.stderr) == (
                expected.exit_code,
                expected.stdout,
                expected.stderr,
            ), (git_dir, command)


def test_revert_refuses_when_a_later_change_set_the_field_to_something_else(team: Team) -> None:
    alice = team.alice
    alice.change("set-version", "1.1.0", hour=1)
    alice.change("set-version", "1.2.0", hour=2)
    first, second = (e["id"] for e in alice.history()[1::-1])
    assert alice.fails("revert", first) == (
        f"error: not reverting {first}: version was changed again later (set-version "
        f"{second}); revert that change first, or make the change you mean directly\n"
    )
    alice.change("revert", second[-8:], hour=3)  # the hash alone names it
    alice.change("revert", first, hour=4)  # the later change is undone: the field is back
    assert alice.json("show", "--json")["version"] == "1.0.0"
    assert alice.fails("revert", "nope") == (
        "error: no history entry 'nope'; `valhalla-status history` shows each entry's id\n"
    )
    init = alice.history()[-1]["id"]
    assert "the init entry records no change to undo" in alice.fails("revert", init)


def test_an_edited_entry_is_named_by_validate_and_fmt_and_never_renamed(team: Team) -> None:
    alice = team.alice
    alice.change("set-version", "1.1.0", hour=1)
    entry = alice.history()[0]["id"]
    folder = alice.root / HISTORY
    path = entry_files(folder)[f"{entry}.yaml"]
    assert path == folder / entry_place(f"{entry}.yaml")
    path.write_text(path.read_text().replace("1.1.0", "1.1.1"))
    alice.root.joinpath(MANIFEST).write_text(
        alice.root.joinpath(MANIFEST).read_text().replace("1.1.0", "1.1.1")
    )
    expected = (
        f"{HISTORY}/{entry_place(f'{entry}.yaml')}: edited after it was recorded (its text "
        "no longer matches "
        "its name); a recorded change is never edited: put back its recorded text (e.g. "
        "`git checkout HEAD -- FILE`) and make the change you meant as a new one\n"
    )
    assert alice.fails("validate").endswith(expected)
    assert alice.fails("fmt", "--check").endswith(expected)
    assert alice.fails("fmt").endswith(expected)
    assert list(entry_files(folder).items())[-1] == (path.name, path)  # not renamed
    assert other_files(folder) == []


# --- the manifest is what its history says ------------------------------------------------------


def test_a_hand_edit_fails_validate_located_and_record_makes_it_a_change(team: Team) -> None:
    alice = team.alice
    init = alice.history()[0]["id"]
    manifest = alice.root / MANIFEST
    text = manifest.read_text()
    manifest.write_text(
        text.replace("- id: W\n  status: installed", "- id: W\n  status: deprecated")
    )
    line = manifest.read_text().splitlines().index("  status: deprecated") + 1
    assert alice.fails("validate") == (
        f'{MANIFEST}:{line}: packs[15].status: "deprecated" here, but the history says '
        f'"installed" (init {init}); record the edit with `valhalla-status record --notes '
        "WHY`, or put the value back\n"
    )
    assert alice.run("build").exit_code == 1
    alice.change("record", "--notes", "W retired by hand", hour=1)
    newest = alice.history()[0]
    assert (newest["action"], newest["changes"], newest["notes"]) == (
        "record",
        {"packs.W.status": ["installed", "deprecated"]},
        "W retired by hand",
    )
    assert alice.json("pack", "show", "W", "--json")["since"] == iso(1)
    assert alice.run("validate").exit_code == 0
    built = alice.run("build")
    assert built.exit_code == 0, built.output
    page = (alice.root / "site" / "history.html").read_text()
    assert f'<li id="change-{newest["id"]}">' in page
    assert "Hand edit recorded" in page
    assert (
        "No change: the history already explains the manifest"
        in alice.run("record", "--notes", "again", "--no-build").stderr
    )


def test_a_conflict_resolved_against_the_history_fails_validate(team: Team) -> None:
    alice = team.alice
    alice.git("checkout", "-q", "-b", "pending")
    alice.change("pack", "set", "K", "--status", "pending", hour=1)
    alice.commit("K pending", hour=1)
    alice.git("checkout", "-q", "-b", "deprecated", "main")
    alice.change("pack", "set", "K", "--status", "deprecated", hour=2)
    alice.commit("K deprecated", hour=2)
    deprecated = alice.history()[0]
    land(alice, "pending", "merge", hour=3)
    alice.git("merge", "--no-edit", "deprecated", hour=4, check=False)  # conflicts
    manifest = alice.root / MANIFEST
    text = manifest.read_text()
    start, end = text.index("<<<<<<<"), text.index(">>>>>>>")
    resolved = text[:start] + "  status: pending\n" + text[text.index("\n", end) + 1 :]
    manifest.write_text(resolved)  # "keep mine": K stays pending
    alice.commit("merge deprecated", hour=4)
    assert deprecated["changes"] == {"packs.K.status": ["installed", "deprecated"]}
    said = alice.fails("validate")
    assert said.startswith(f"{MANIFEST}:")
    assert (
        f'packs[3].status: "pending" here, but the history says "deprecated" '
        f"(pack-set {deprecated['id']})" in said
    )


# --- the review says exactly what a change does -------------------------------------------------


def diff_entries(clone: Clone, *args: str) -> tuple[list[str], list[str], list[str]]:
    document = clone.json("diff", *args, "--format", "json")
    return tuple(  # type: ignore[return-value]
        [entry["id"] for entry in document[key]]
        for key in ("history_added", "history_removed", "history_edited")
    )


def test_diff_of_a_branch_that_merged_main_in_lists_only_its_own_entries(team: Team) -> None:
    alice = team.alice
    alice.git("checkout", "-q", "-b", "feature")
    alice.change("pack", "set", "L", "--status", "experimental", hour=1)
    alice.commit("L", hour=1)
    mine = alice.history()[0]["id"]
    alice.git("checkout", "-q", "main")
    for hour in (2, 3):
        alice.change("set-version", f"1.{hour}.0", hour=hour)
        alice.commit(f"{hour}", hour=hour)
    alice.git("checkout", "-q", "feature")
    alice.git("merge", "-q", "--no-edit", "main", hour=4)  # main merged into the branch
    assert diff_entries(alice, "main...HEAD") == ([mine], [], [])
    # A pull request's merge ref: the branch merged into main's tip, not on main.
    alice.git("checkout", "-q", "--detach", "main")
    alice.git("merge", "-q", "--no-ff", "--no-edit", "feature", hour=5)
    alice.git("update-ref", "refs/pull/1/merge", "HEAD")
    assert diff_entries(alice, "main...refs/pull/1/merge") == ([mine], [], [])


def test_diff_of_two_main_files_without_their_history_folders_compares_what_they_hold(
    team: Team, tmp_path: Path
) -> None:
    alice = team.alice
    old = tmp_path / "old.yaml"
    old.write_text(alice.git("show", f"HEAD:{MANIFEST}"))
    alice.change("pack", "set", "K", "--status", "pending", hour=1)
    alice.commit("K", hour=1)
    new = tmp_path / "new.yaml"
    new.write_text(alice.git("show", f"HEAD:{MANIFEST}"))
    result = alice.run("diff", str(old), str(new))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Status changes: {old} → {new}\n  Pack K: installed → pending (Executor Pro)\n"
    )


# --- a main file of one layout beside a history folder of the other -----------------------------


def test_a_v1_main_file_beside_a_v2_history_folder_is_invalid_and_migrate_joins_them(
    team: Team,
) -> None:
    alice = team.alice
    manifest = alice.root / MANIFEST
    v1 = (
        "schema_version: 1\nsystem:\n  name: Valhalla\n  description: d\n  version: 1.0.0\n"
        "  backend_complete: false\n  notes: null\n  updated_at: '2025-09-20T02:00:00Z'\n"
        "  completed_at: null\n  extra: {}\npacks:\n- id: H\n  name: Analyst Essentials\n"
        "  group: Professional\n  status: installed\nhistory:\n- at: '2025-09-20T02:00:00Z'\n"
        "  by: carol\n  action: set-notes\n  changes: {}\n  notes: kept on the old branch\n"
    )
    manifest.write_text(v1)  # a "keep mine" resolution of a v1-against-migrated conflict
    folder_entries = entry_files(alice.root / HISTORY)
    assert alice.fails("validate") == (
        f"{MANIFEST}: this file is schema_version 1 (its history inside it), but {HISTORY}/ "
        "holds 1 history files of schema_version 2 (a branch of each layout merged?); run "
        "`valhalla-status migrate` to move this file's history into the folder\n"
    )
    result = alice.run("migrate", "--by", "carol", hour=3)
    assert result.exit_code == 0, result.output
    after = entry_files(alice.root / HISTORY)
    # the folder's entries stay where they are; the file's join them
    assert folder_entries.items() < after.items()
    assert other_files(alice.root / HISTORY) == []
    assert [e["action"] for e in alice.history()] == ["migrate", "set-notes", "init"]
    assert alice.run("validate").exit_code == 0


def test_validate_base_judges_a_branch_by_where_it_left_the_base(team: Team) -> None:
    alice = team.alice
    alice.git("checkout", "-q", "-b", "behind")
    alice.change("pack", "set", "M", "--status", "deprecated", hour=1)
    alice.commit("M", hour=1)
    alice.git("checkout", "-q", "main")
    alice.change("set-version", "1.1.0", hour=2)  # main moves on; the branch lacks this entry
    alice.commit("1.1.0", hour=2)
    alice.git("checkout", "-q", "behind")
    result = alice.run("validate", "--base", "main")
    assert (result.exit_code, result.stderr) == (0, f"{MANIFEST}: valid (16 packs)\n")


@pytest.mark.parametrize("base", ["", " "])
def test_validate_refuses_a_base_that_names_no_revision(team: Team, base: str) -> None:
    """Compared with HEAD itself, a removal already committed would pass unseen."""
    alice = team.alice
    drop_a_recorded_change(alice)
    assert "a recorded change was removed" in alice.fails("validate")
    assert alice.fails("validate", "--base", base) == (
        f"error: --base: {base!r} names no revision; give a branch, tag or commit\n"
    )


def test_landings_kept_in_the_git_folder_give_what_a_fresh_read_gives(team: Team) -> None:
    """What was read up to a commit is kept in .git/valhalla-status/ and only the commits since
    are read next time: the history is the same as read from nothing, across new commits, a
    late merge and a switch to a branch that does not hold the kept commit."""
    alice = team.alice
    kept = alice.root / ".git" / "valhalla-status"

    def fresh() -> list[dict[str, Any]]:
        for path in kept.glob("*"):
            path.unlink()
        return alice.history()

    alice.change("set-version", "1.1.0", hour=1)
    alice.commit("1.1.0", hour=1)
    assert alice.history() == fresh()
    assert len(list(kept.glob("landings-*.json"))) == 1
    alice.git("checkout", "-q", "-b", "late", "HEAD~1")
    alice.change("pack", "set", "K", "--status", "deprecated", hour=2)
    alice.commit("K", hour=2)
    alice.git("checkout", "-q", "main")
    alice.history()  # kept at main's tip
    alice.change("set-version", "1.2.0", hour=3)
    alice.commit("1.2.0", hour=3)
    alice.git("merge", "-q", "--no-edit", "late", hour=4)
    incremental = alice.history()
    assert incremental == fresh()
    assert incremental[0]["landed_at"] == iso(4)
    alice.git("checkout", "-q", "late")  # the kept commit is not on this branch
    assert alice.history() == fresh()
    (kept / next(p.name for p in kept.glob("landings-*.json"))).write_text("{not json")
    assert alice.history() == fresh()  # an unreadable file is read again, not trusted


def test_the_history_starts_at_its_newest_init(team: Team) -> None:
    """`init --force` killed after it replaced the main file, before it removed the old
    entries: the old entries are not part of the history, which is the new manifest's."""
    alice = team.alice
    alice.change("set-version", "1.1.0", hour=1)
    alice.commit("1.1.0", hour=1)
    folder = alice.root / HISTORY
    old = snapshot(folder)
    assert sorted(old) == sorted(map(entry_place, entry_files(folder)))
    alice.change("init", "--force", hour=2)
    for place, data in old.items():  # what a killed `init --force` leaves
        (folder / place).parent.mkdir(exist_ok=True)
        (folder / place).write_bytes(data)
    history = alice.history()
    assert [(e["action"], e["at"]) for e in history] == [("init", iso(2))]
    assert alice.run("validate").exit_code == 0
    assert alice.json("show", "--json")["version"] == "1.0.0"


def test_entries_committed_flat_then_moved_into_subfolders_keep_their_landing(
    tmp_path: Path,
) -> None:
    """A repository of an earlier version, whose entries were committed directly in the history
    folder, moves them into their subfolders in a later commit (`git mv`): each entry keeps the
    time and the order it landed in."""
    repo = Clone(tmp_path / "repo")
    repo.root.mkdir()
    repo.git("init", "-q", "-b", "main")
    folder = repo.root / HISTORY

    def commit_flat(message: str, hour: float) -> None:
        for name, path in entry_files(folder).items():
            if path.parent != folder:
                path.rename(folder / name)
                path.parent.rmdir()
        repo.commit(message, hour=hour)

    repo.change("init", hour=0)
    commit_flat("init", hour=1)
    repo.change("set-version", "1.1.0", hour=2)
    repo.change("pack", "set", "K", "--status", "pending", hour=3)
    commit_flat("two changes", hour=5)  # both land at 5, in the order they were made
    repo.change("set-notes", "late", hour=4)  # made before the last landing, lands after it
    commit_flat("late", hour=6)
    names = list(entry_files(folder))
    assert [path.parent for path in entry_files(folder).values()] == [folder] * 4
    kept = repo.root / ".git" / "valhalla-status"
    before = repo.history()
    assert [(e["action"], e["landed_at"]) for e in before] == [
        ("set-notes", iso(6)),
        ("pack-set", iso(5)),
        ("set-version", iso(5)),
        ("init", iso(1)),
    ]

    for name in names:
        (folder / entry_place(name)).parent.mkdir(exist_ok=True)
        repo.git("mv", f"{HISTORY}/{name}", f"{HISTORY}/{entry_place(name)}")
    repo.commit("entries into their subfolders", hour=10)
    assert sorted(repo.git("show", "--name-status", "--format=", "HEAD").splitlines()) == sorted(
        f"R100\t{HISTORY}/{name}\t{HISTORY}/{entry_place(name)}" for name in names
    )
    assert repo.history() == before  # read on from what was kept before the move
    for path in kept.glob("*"):
        path.unlink()
    assert repo.history() == before  # read from nothing
    assert repo.run("validate").exit_code == 0
