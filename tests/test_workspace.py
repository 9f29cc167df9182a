"""Where the manifest is found: never in another user's files unless it is named.

As git refuses a repository owned by someone else (``safe.directory``), the walk up from the
current folder never adopts a manifest that another user owns (the folder holding it, its
``manifest`` folder or the file): the walk ends there with one line naming the folder and the
owner, and nothing is read from or written into their files. ``--manifest`` and
``VALHALLA_MANIFEST`` still name such a manifest on purpose.

These tests run as root in the sandbox and give the files to another uid with ``os.chown``;
elsewhere they give the process another user id instead (``os.geteuid``, the boundary the
check reads), which makes the same files another user's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import MANIFEST_REL, Workspace, clean_env, dump, small_manifest, snapshot

from valhalla_status import workspace
from valhalla_status.errors import ValhallaError
from valhalla_status.workspace import find_root, foreign_owner

OTHER = 12345
ROOT = os.geteuid() == 0
NB = "--no-build"

# Give a path to another user: (the path) -> the uid it now belongs to, as the process sees it.
GiveAway = Callable[[Path], int]


@pytest.fixture
def give_away(monkeypatch: pytest.MonkeyPatch) -> GiveAway:
    """Make a path (not what is inside it) another user's."""
    monkeypatch.delenv("SUDO_UID", raising=False)

    def give(path: Path) -> int:
        if ROOT:
            os.chown(path, OTHER, OTHER, follow_symlinks=False)
            return OTHER
        # Not root: the process becomes another user, so every file of ours is theirs.
        me = os.getuid()
        monkeypatch.setattr(os, "geteuid", lambda: me + OTHER)
        return me

    return give


@pytest.fixture
def shared(ws: Workspace, give_away: GiveAway) -> tuple[Path, Path, int]:
    """Another user's manifest and built site in ``shared/``; the current folder is
    ``shared/mine`` (the user's own). Returns (shared, mine, the other user's uid)."""
    folder = ws.root / "shared"
    folder.mkdir()
    (folder / "manifest").mkdir()
    (folder / MANIFEST_REL).write_text(small_manifest_text(), encoding="utf-8")
    os.chdir(folder)
    assert ws.run("build").exit_code == 0
    mine = folder / "mine"
    mine.mkdir()
    os.chdir(mine)
    uid = give_away(folder)
    give_away(folder / "manifest")
    give_away(folder / MANIFEST_REL)
    return folder, mine, uid


def small_manifest_text() -> str:
    return dump(small_manifest())


def refusal(folder: Path, uid: int) -> str:
    return (
        f"error: {MANIFEST_REL} in {folder} is owned by another user (uid {uid}); "
        "give --manifest to use it\n"
    )


COMMANDS = [
    (("init", NB), 1),
    (("init", "--force", NB), 1),
    (("build",), 1),
    (("build", "--check"), 1),
    (("validate",), 1),
    (("show",), 1),
    (("history",), 1),
    (("diff",), 1),
    (("fmt",), 1),
    (("migrate",), 1),
    (("pack", "list"), 1),
    (("pack", "set", "H", "--status", "pending"), 1),
    (("set-notes", "mine now"), 1),
    (("check", "--min-version", "0.0.0"), 3),
    (("check",), 3),
    (("build", "--site", "out"), 1),
]


@pytest.mark.parametrize(("args", "code"), COMMANDS)
def test_no_command_adopts_a_manifest_another_user_owns_in_a_parent_folder(
    ws: Workspace, shared: tuple[Path, Path, int], args: tuple[str, ...], code: int
) -> None:
    folder, mine, uid = shared
    before = snapshot(ws.root)
    result = ws.run(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", refusal(folder, uid))
    assert snapshot(ws.root) == before
    assert sorted(os.listdir(mine)) == []


def test_check_json_says_why_nothing_was_read(
    ws: Workspace, shared: tuple[Path, Path, int]
) -> None:
    folder, _mine, uid = shared
    result = ws.run("check", "--json")
    assert result.exit_code == 3
    assert '"source": null' in result.stdout
    reason = refusal(folder, uid).removeprefix("error: ").rstrip("\n")
    assert f'"error": "{reason}"' in result.stdout


def test_the_manifest_option_and_the_environment_still_name_it(
    ws: Workspace, shared: tuple[Path, Path, int]
) -> None:
    folder, _mine, _uid = shared
    given = str(folder / MANIFEST_REL)
    assert ws.run("--manifest", given, "validate").stderr == f"{given}: valid (3 packs)\n"
    result = ws.run("validate", env={"VALHALLA_MANIFEST": given})
    assert result.stderr == f"{given}: valid (3 packs)\n"
    # init in the user's own folder, named on purpose, is theirs.
    assert ws.run("--manifest", MANIFEST_REL, "init", NB).exit_code == 0
    assert (Path.cwd() / MANIFEST_REL).is_file()


def test_the_walk_does_not_go_past_another_users_manifest_to_one_further_up(
    ws: Workspace, give_away: GiveAway
) -> None:
    ws.write(small_manifest())  # the user's own, at the top
    inner = ws.root / "a" / "b"
    (inner / "manifest").mkdir(parents=True)
    (inner / MANIFEST_REL).write_text(small_manifest_text(), encoding="utf-8")
    (inner / "c").mkdir()
    os.chdir(inner / "c")
    uid = give_away(inner / MANIFEST_REL)
    result = ws.run("validate")
    assert (result.exit_code, result.stderr) == (1, refusal(inner, uid))


def test_inside_a_git_work_tree_another_users_manifest_is_refused_too(
    ws: Workspace, give_away: GiveAway
) -> None:
    repo = ws.root / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "manifest").mkdir()
    (repo / MANIFEST_REL).write_text(small_manifest_text(), encoding="utf-8")
    (repo / "src").mkdir()
    os.chdir(repo / "src")
    uid = give_away(repo)
    result = ws.run("build")
    assert (result.exit_code, result.stderr) == (1, refusal(repo, uid))
    assert not (repo / "site").exists()


# Which of the three is another user's: the folder holding manifest/, manifest/, the file.
PARTS = ["", "manifest", MANIFEST_REL]


@pytest.mark.parametrize("part", PARTS)
def test_any_of_the_three_owned_by_another_user_is_refused(
    ws: Workspace, give_away: GiveAway, part: str
) -> None:
    top = ws.root / "top"
    (top / "manifest").mkdir(parents=True)
    (top / MANIFEST_REL).write_text(small_manifest_text(), encoding="utf-8")
    (top / "deep" / "er").mkdir(parents=True)
    os.chdir(top / "deep" / "er")
    assert find_root() == str(top)
    uid = give_away(top / part if part else top)
    with pytest.raises(ValhallaError) as caught:
        find_root()
    assert caught.value.message == refusal(top, uid).removeprefix("error: ").rstrip("\n")


# (effective uid of the process, SUDO_UID, owner of the files) -> adopted?
OWNERS = [
    (1000, None, 1000, True),
    (1000, None, 1001, False),
    (1000, None, 0, False),  # root's files are not a user's own
    (1000, "1001", 1001, False),  # SUDO_UID counts only for root
    (0, None, 0, True),  # root's own
    (0, None, 1000, False),
    (0, "1000", 1000, True),  # `sudo valhalla-status` in the user's own folder
    (0, "1000", 1001, False),
    (0, "", 1000, False),
    (0, "x", 1000, False),
    (0, "1000", 0, True),
]


@pytest.mark.parametrize(("euid", "sudo_uid", "owner", "adopted"), OWNERS)
def test_whose_files_are_taken_for_the_users_own_as_git_decides(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    euid: int,
    sudo_uid: str | None,
    owner: int,
    adopted: bool,
) -> None:
    (tmp_path / "manifest").mkdir()
    (tmp_path / MANIFEST_REL).write_text("x", encoding="utf-8")
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    if sudo_uid is None:
        monkeypatch.delenv("SUDO_UID", raising=False)
    else:
        monkeypatch.setenv("SUDO_UID", sudo_uid)
    real_lstat = os.lstat

    def lstat(path: str) -> os.stat_result:
        info = real_lstat(path)
        fields = list(info)
        fields[4] = owner  # st_uid
        return os.stat_result(fields)

    monkeypatch.setattr(workspace.os, "lstat", lstat)
    assert foreign_owner(str(tmp_path)) == (None if adopted else owner)


def test_a_real_process_refuses_another_users_manifest(
    ws: Workspace, shared: tuple[Path, Path, int]
) -> None:
    folder, mine, uid = shared
    if ROOT:
        argv = [sys.executable, "-m", "valhalla_status", "build"]
    else:  # the same process with another user id, as the fixture gives it
        code = (
            f"import os; os.geteuid = lambda: {os.getuid() + OTHER}; "
            "from valhalla_status.cli import main; main(prog_name='valhalla-status')"
        )
        argv = [sys.executable, "-c", code, "build"]
    env = clean_env()
    env.pop("SUDO_UID", None)
    before = snapshot(ws.root)
    done = subprocess.run(argv, cwd=mine, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", refusal(folder, uid))
    assert snapshot(ws.root) == before
