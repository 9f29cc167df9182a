"""Working where people stand, in a team's repository: the manifest found from any folder inside
it, global options after the command, ``--status`` in any case, git's range forms in ``diff``,
``pack list --group`` naming the groups, and ``init`` setting up ``.gitignore`` so that nothing
the tool makes shows up in ``git status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result
from conftest import EPOCH, MANIFEST_REL, Workspace, clean_env, small_manifest

from valhalla_status.cli import main

M = MANIFEST_REL
NB = "--no-build"


def git_env(**extra: str) -> dict[str, str]:
    return clean_env(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
        SOURCE_DATE_EPOCH=str(EPOCH),
        **extra,
    )


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), check=True, capture_output=True, text=True
    )
    return done.stdout


def tool(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A real ``valhalla-status`` process started in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "valhalla_status", *args],
        cwd=cwd,
        env=env or git_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return result.stderr


@pytest.fixture
def nested(ws: Workspace, epoch: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small manifest at the workspace's top, and cwd two folders below it."""
    ws.write(small_manifest())
    assert ws.run("fmt").exit_code == 0
    below = ws.root / "docs" / "notes"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    return below


# --- the manifest, found from where people stand ------------------------------------------------


def test_commands_in_a_subfolder_find_the_manifest_above_and_name_it_from_there(
    ws: Workspace, nested: Path
) -> None:
    up = "../../manifest/valhalla.yaml"
    assert ws.run("validate").stderr == f"{up}: valid (3 packs)\n"
    assert ws.run("fmt", "--check").stderr == f"{up}: canonical\n"
    assert ws.run("pack", "set", "h", "--status", "pending", NB).exit_code == 0
    assert ws.read()["packs"][0]["status"] == "pending"
    assert json.loads(ws.run("show", "--json").stdout)["packs"][0]["status"] == "pending"
    assert ws.run("init", NB).stderr == (
        f"No change: {up} already exists\n"
        "../../.gitignore: added the site folder, lock files and scratch files (7 patterns)\n"
    )
    assert not (nested / "manifest").exists(), "init made no second manifest below the first"


def test_the_site_default_is_beside_the_manifest_folder_that_was_found(
    ws: Workspace, nested: Path
) -> None:
    result = ws.run("build")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("../../site: built (")
    assert (ws.root / "site" / "status.json").is_file()
    assert not (nested / "site").exists()
    assert ws.run("build", "--check").stderr == "../../site: up to date\n"
    assert ws.run("check", "--min-version", "0.0.0").exit_code == 0  # reads ../../site


def test_a_located_error_names_the_manifest_as_typed_from_the_current_folder(
    ws: Workspace, nested: Path
) -> None:
    ws.manifest.write_text(
        ws.manifest.read_text(encoding="utf-8").replace("version: 1.0.0", "version: one"),
        encoding="utf-8",
    )
    message = one_line_error(ws.run("validate"))
    assert message.startswith("../../manifest/valhalla.yaml:")
    assert "system.version" in message
    deeper = nested / "x"
    deeper.mkdir()
    os.chdir(deeper)
    assert one_line_error(ws.run("validate")).startswith("../../../manifest/valhalla.yaml:")
    os.chdir(ws.root)
    assert one_line_error(ws.run("validate")).startswith("manifest/valhalla.yaml:")


def test_the_nearest_manifest_wins_and_the_walk_stops_at_the_top_of_a_git_repository(
    ws: Workspace, nested: Path
) -> None:
    inner = nested / "inner"
    assert ws.run("--manifest", str(inner / M), "init", NB).exit_code == 0
    (inner / "sub").mkdir()
    os.chdir(inner / "sub")  # the small manifest (3 packs) is further up
    assert ws.run("validate").stderr == "../manifest/valhalla.yaml: valid (16 packs)\n"
    os.chdir(inner / "manifest")
    assert ws.run("validate").stderr == "valhalla.yaml: valid (16 packs)\n"

    repo = nested / "repo"
    (repo / ".git").mkdir(parents=True)  # the top of a work tree: the manifest above is not its
    (repo / "src").mkdir()
    os.chdir(repo / "src")
    message = one_line_error(ws.run("validate"))
    assert message == f"{M}: no manifest here; run `valhalla-status init` to create one\n"
    assert ws.run("init", NB).exit_code == 0
    assert (repo / "src" / M).is_file(), "with none found, init creates it where the user is"


def test_manifest_and_site_options_and_the_environment_still_override_the_walk(
    ws: Workspace, nested: Path
) -> None:
    elsewhere = ws.root / "other.yaml"
    other = small_manifest()
    other["packs"] = other["packs"][:1]
    elsewhere.write_text(json.dumps(other), encoding="utf-8")  # JSON is YAML
    shown = "../../other.yaml"
    assert ws.run("--manifest", shown, "validate").stderr == f"{shown}: valid (1 pack)\n"
    result = ws.run("validate", env={"VALHALLA_MANIFEST": shown})
    assert result.stderr == f"{shown}: valid (1 pack)\n"
    # A manifest given by name keeps the site where it always was: in the current folder.
    assert ws.run("--manifest", shown, "build").exit_code == 0
    assert (nested / "site" / "status.json").is_file()
    assert not (ws.root / "site").exists()
    result = ws.run("build", env={"VALHALLA_SITE": "out"})
    assert result.stderr.startswith("out: built")


@pytest.mark.slow
def test_real_processes_started_in_a_subfolder_of_a_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "status"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert tool(repo, "init", "--by", "alice").returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    deep = repo / "docs" / "runbooks"
    deep.mkdir(parents=True)
    done = tool(deep, "pack", "set", "K", "--status", "Pending", "--by", "bob")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "Pack K: installed → pending\n"
    done = tool(deep, "diff", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["old"], report["new"]) == ("HEAD", "../../manifest/valhalla.yaml")
    assert report["changes"]["packs.K.status"] == ["installed", "pending"]
    status = json.loads((repo / "site" / "status.json").read_text(encoding="utf-8"))
    assert [p["status"] for p in status["packs"] if p["id"] == "K"] == ["pending"]
    done = tool(deep, "validate")
    assert (done.returncode, done.stderr) == (0, "../../manifest/valhalla.yaml: valid (16 packs)\n")
    done = tool(deep, "build", "--site", "preview")
    assert done.returncode == 0 and done.stderr.startswith("preview: built ("), done.stderr
    assert (deep / "preview" / "index.html").is_file()


# --- global options after the command ---------------------------------------------------------


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(main), ids=" ".join)
def test_every_command_takes_manifest_and_site_after_its_name(
    ws: Workspace, path: tuple[str, ...]
) -> None:
    result = ws.run(*path, "--help")
    assert result.exit_code == 0
    assert "--manifest PATH" in result.stdout
    assert "--site DIR" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("validate", "--manifest", "x/s.yaml"), "x/s.yaml: valid (3 packs)\n"),
        (("fmt", "--check", "--manifest", "x/s.yaml"), "x/s.yaml: canonical\n"),
        (("pack", "set", "H", "--status", "pending", NB, "--manifest", "x/s.yaml"), None),
        (("pack", "--manifest", "x/s.yaml", "set", "H", "--status", "pending", NB), None),
        (("build", "--site", "out", "--manifest", "x/s.yaml"), "out: built ("),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_global_options_work_after_the_command(
    ws: Workspace, epoch: int, args: tuple[str, ...], expected: str | None
) -> None:
    custom = ws.root / "x" / "s.yaml"
    custom.parent.mkdir()
    custom.write_text(json.dumps(small_manifest()), encoding="utf-8")  # JSON is YAML
    assert ws.run("--manifest", "x/s.yaml", "fmt").exit_code == 0
    result = ws.run(*args)
    assert result.exit_code == 0, result.output
    if expected is not None:
        assert result.stderr.startswith(expected)
    if "set" in args:
        assert "status: pending" in custom.read_text(encoding="utf-8").split("- id: H")[1][:120]
    if "build" in args:
        status = json.loads((ws.root / "out" / "status.json").read_text(encoding="utf-8"))
        assert [p["id"] for p in status["packs"]] == ["H", "I", "S"]
    assert not ws.manifest.exists(), "the default manifest was never touched"


def test_given_before_and_after_the_command_the_one_after_wins(ws: Workspace, epoch: int) -> None:
    ws.write(small_manifest())
    assert ws.run("--site", "a", "build", "--site", "b").stderr.startswith("b: built")
    assert (ws.root / "b" / "index.html").is_file() and not (ws.root / "a").exists()
    result = ws.run("build", "--site", "c", env={"VALHALLA_SITE": "a"})
    assert result.stderr.startswith("c: built") and not (ws.root / "a").exists()
    result = ws.run("validate", "--manifest", M, env={"VALHALLA_MANIFEST": "missing.yaml"})
    assert result.stderr == f"{M}: valid (3 packs)\n"
    result = ws.run("--manifest", "missing.yaml", "validate", "--manifest", M)
    assert result.stderr == f"{M}: valid (3 packs)\n"
    result = ws.run("--manifest", M, "validate", "--manifest", "missing.yaml")
    assert one_line_error(result).startswith("missing.yaml: no manifest here")
    result = ws.run("check", "--site", "b", "--min-version", "1.0.0")
    assert result.exit_code == 0, result.output


# --- --status in any case ---------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["PENDING", "Pending", "pEnDiNg", "pending"])
def test_status_accepts_any_case_on_pack_add_set_and_list(
    ws: Workspace, epoch: int, spelling: str
) -> None:
    ws.write(small_manifest())
    assert ws.run("pack", "set", "h", "--status", spelling, NB).exit_code == 0
    add = ("pack", "add", "X", "--name", "New", "--group", "G")
    assert ws.run(*add, "--status", spelling.swapcase(), NB).exit_code == 0
    data = ws.read()
    assert [p["status"] for p in data["packs"]] == ["pending", "pending", "installed", "pending"]
    listed = json.loads(ws.run("pack", "list", "--status", spelling, "--json").stdout)
    assert [p["id"] for p in listed["packs"]] == ["H", "I", "X"]
    result = ws.run("pack", "set", "S", "--status", "DEPRECATED", NB)
    assert result.exit_code == 0 and ws.read()["packs"][2]["status"] == "deprecated"


def test_a_status_that_is_no_status_in_any_case_is_a_usage_error(ws: Workspace, epoch: int) -> None:
    ws.write(small_manifest())
    for wrong in ("PEND", "installed ", "Ínstalled"):
        result = ws.run("pack", "set", "H", "--status", wrong, NB)
        assert result.exit_code == 2
        assert "installed" in result.stderr and "Traceback" not in result.output


# --- pack list --group ------------------------------------------------------------------------


def test_pack_list_with_an_unknown_group_names_the_groups_that_exist(
    ws: Workspace, epoch: int
) -> None:
    ws.write(small_manifest())
    expected = 'error: no group "Infra"; the groups are: Professional, System infrastructure\n'
    assert one_line_error(ws.run("pack", "list", "--group", "Infra")) == expected
    assert one_line_error(ws.run("pack", "list", "--group", "Infra", "--json")) == expected
    result = ws.run("pack", "list", "--group", "infra", "--status", "pending")
    assert result.exit_code == 1 and "no group" in result.stderr
    result = ws.run("pack", "list", "--group", "bad\x1bname")
    assert one_line_error(result).count("\n") == 1 and "\x1b" not in result.stderr
    # A group that exists, in any case, even with no pack of the status asked for, is no error.
    result = ws.run("pack", "list", "--group", "SYSTEM INFRASTRUCTURE", "--status", "pending")
    assert (result.exit_code, result.stdout) == (
        0,
        "0 packs: 0 installed, 0 pending, 0 deprecated, 0 experimental\n",
    )


def test_pack_list_group_on_a_manifest_without_packs(ws: Workspace, epoch: int) -> None:
    data = small_manifest()
    data["packs"] = []
    ws.write(data)
    expected = 'error: no group "Professional"; the groups are: none (there are no packs)\n'
    assert one_line_error(ws.run("pack", "list", "--group", "Professional")) == expected


# --- diff: git's range forms --------------------------------------------------------------------


@pytest.fixture
def history_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with three commits of the manifest (K pending, then M deprecated), and
    a side branch off the first commit (the version set to 1.1.0)."""
    for var in ("VALHALLA_MANIFEST", "VALHALLA_SITE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    git(repo, "init", "-q", "-b", "main")
    steps = [
        ("init", "--by", "alice"),
        ("pack", "set", "K", "--status", "pending", "--by", "bob"),
        ("pack", "set", "M", "--status", "deprecated", "--by", "carol"),
    ]
    for number, step in enumerate(steps):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH + 60 * number))
        result = Workspace(repo, click.testing.CliRunner()).run(*step, NB)
        assert result.exit_code == 0, result.output
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", step[0])
    git(repo, "checkout", "-q", "-b", "side", "HEAD~2")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH + 600))
    assert Workspace(repo, click.testing.CliRunner()).run("set-version", "1.1.0", NB).exit_code == 0
    git(repo, "commit", "-q", "-am", "version")
    git(repo, "checkout", "-q", "main")
    return repo


def diff_json(*args: str) -> dict[str, Any]:
    result = Workspace(Path.cwd(), click.testing.CliRunner()).run("diff", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize(
    ("range_form", "two_sides", "labels"),
    [
        ("HEAD~2..HEAD", ("HEAD~2", "HEAD"), ("HEAD~2", "HEAD")),
        ("HEAD~2..", ("HEAD~2", "HEAD"), ("HEAD~2", "HEAD")),
        ("..HEAD~1", ("HEAD", "HEAD~1"), ("HEAD", "HEAD~1")),
        ("HEAD^!", ("HEAD~1", "HEAD"), ("HEAD^", "HEAD")),
        ("HEAD~1^!", ("HEAD~2", "HEAD~1"), ("HEAD~1^", "HEAD~1")),
        ("HEAD^-", ("HEAD~1", "HEAD"), ("HEAD^", "HEAD")),
        ("main..side", ("main", "side"), ("main", "side")),
        ("main...side", ("main~2", "side"), ("main...side (merge base)", "side")),
        ("side...main", ("main~2", "main"), ("side...main (merge base)", "main")),
    ],
)
def test_diff_reads_git_range_forms_as_the_two_revisions_they_name(
    history_repo: Path, range_form: str, two_sides: tuple[str, str], labels: tuple[str, str]
) -> None:
    by_range, by_sides = diff_json(range_form), diff_json(*two_sides)
    assert (by_range["old"], by_range["new"]) == labels
    for key in ("changes", "history_added", "history_removed", "changed"):
        assert by_range[key] == by_sides[key]
    assert by_range["changed"]


def test_diff_range_forms_in_words(history_repo: Path) -> None:
    result = Workspace(history_repo, click.testing.CliRunner()).run("diff", "HEAD^!")
    assert result.stdout.startswith("Status changes: HEAD^ → HEAD\n")
    assert "  Pack M: installed → deprecated (Tracker Manager)\n" in result.stdout
    assert "Pack K" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("HEAD~1..HEAD", "HEAD"),
            "error: 'HEAD~1..HEAD' is a revision range: give a range, or OLD and NEW, not both\n",
        ),
        (("HEAD~9..",), "error: unknown revision 'HEAD~9' in 'HEAD~9..'"),
        (("main..nope",), "error: unknown revision 'nope' in 'main..nope'"),
        (("HEAD~2^!",), "error: HEAD~2 has no parent commit to compare it with ('HEAD~2^!')\n"),
        (("nope^!",), "error: unknown revision 'nope' in 'nope^!'"),
        (("../old.yaml",), "error: unknown revision '../old.yaml'"),
        (("--", "-x..HEAD"), "error: unknown revision '-x' in '-x..HEAD'"),
    ],
)
def test_a_bad_range_is_one_clear_line(
    history_repo: Path, args: tuple[str, ...], message: str
) -> None:
    result = Workspace(history_repo, click.testing.CliRunner()).run("diff", *args)
    error = one_line_error(result)
    assert error.startswith(message)
    assert error.count("\n") == 1


def test_a_file_whose_name_looks_like_a_range_is_read_as_a_file(history_repo: Path) -> None:
    git(history_repo, "show", f"HEAD~2:{M}")
    old = history_repo / "v1..v2.yaml"
    old.write_text(git(history_repo, "show", f"HEAD~2:{M}"), encoding="utf-8")
    # A manifest file's history is the folder beside it, named after it.
    history = M.removesuffix(".yaml") + ".history"
    (history_repo / "v1..v2.history").mkdir()
    for name in git(history_repo, "ls-tree", "-r", "--name-only", "HEAD~2", f"{history}/").split():
        text = git(history_repo, "show", f"HEAD~2:{name}")
        copy = history_repo / "v1..v2.history" / name.removeprefix(f"{history}/")
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(text)
    document = diff_json("v1..v2.yaml")
    assert (document["old"], document["new"]) == ("v1..v2.yaml", M)
    assert document["changes"]["packs.K.status"] == ["installed", "pending"]


# --- init sets up the repository --------------------------------------------------------------

PATTERNS = [
    "/site/",
    "/.site.lock",
    ".*.valhalla-*",
    "/manifest/.*.lock",
    "/manifest/.*.tmp-*",
    "/manifest/*.history/.tmp-*",
    "/manifest/*.history/.pending-*",
]
HEADER = "# valhalla-status: the built site, lock files and the build's scratch files"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "\n".join([HEADER, *PATTERNS]) + "\n"),
        ("", "\n".join([HEADER, *PATTERNS]) + "\n"),
        ("*.pyc\n.venv/", "*.pyc\n.venv/\n\n" + "\n".join([HEADER, *PATTERNS]) + "\n"),
        ("*.pyc\n", "*.pyc\n\n" + "\n".join([HEADER, *PATTERNS]) + "\n"),
        ("*.pyc\r\n", "*.pyc\r\n\r\n" + "\r\n".join([HEADER, *PATTERNS]) + "\r\n"),
        # Already there in another spelling, or negated on purpose: not added again.
        (
            "site/\n/manifest/.*.lock\n",
            "site/\n/manifest/.*.lock\n\n"
            + "\n".join([HEADER, *PATTERNS[1:3], *PATTERNS[4:]])
            + "\n",
        ),
        ("!/site/\n", "!/site/\n\n" + "\n".join([HEADER, *PATTERNS[1:]]) + "\n"),
    ],
    ids=["none", "empty", "no final newline", "user lines", "crlf", "other spelling", "negated"],
)
def test_init_adds_the_tool_files_to_gitignore_once_keeping_the_users_lines(
    ws: Workspace, epoch: int, before: str | None, after: str
) -> None:
    gitignore = ws.root / ".gitignore"
    if before is not None:
        gitignore.write_bytes(before.encode())
    assert ws.run("init", NB).exit_code == 0
    assert gitignore.read_bytes() == after.encode()
    for _ in range(2):
        result = ws.run("init", NB)
        assert result.stderr == f"No change: {M} already exists\n"
        assert gitignore.read_bytes() == after.encode()


def test_init_in_an_existing_repository_sets_up_its_gitignore_too(
    ws: Workspace, epoch: int
) -> None:
    ws.write(small_manifest())
    result = ws.run("init", NB)
    assert result.stderr == (
        f"No change: {M} already exists\n"
        ".gitignore: added the site folder, lock files and scratch files (7 patterns)\n"
    )
    assert (ws.root / ".gitignore").read_text(encoding="utf-8").splitlines()[1:] == PATTERNS


def test_init_writes_the_gitignore_at_the_top_of_the_repository_with_paths_from_there(
    ws: Workspace, epoch: int
) -> None:
    (ws.root / ".git").mkdir()
    (ws.root / "ops").mkdir()
    os.chdir(ws.root / "ops")
    result = ws.run("init", NB)
    assert result.stderr == (
        f"Created {M} with 16 packs\n"
        "../.gitignore: added the site folder, lock files and scratch files (7 patterns)\n"
    )
    lines = (ws.root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == [
        "/ops/site/",
        "/ops/.site.lock",
        ".*.valhalla-*",
        "/ops/manifest/.*.lock",
        "/ops/manifest/.*.tmp-*",
        "/ops/manifest/*.history/.tmp-*",
        "/ops/manifest/*.history/.pending-*",
    ]
    assert not (ws.root / "ops" / ".gitignore").exists()


def test_init_leaves_out_of_gitignore_what_is_outside_the_repository(
    ws: Workspace, epoch: int
) -> None:
    (ws.root / ".git").mkdir()
    outside = ws.root.parent / "published"
    assert ws.run("init", "--site", str(outside)).exit_code == 0
    assert (outside / "index.html").is_file()
    lines = (ws.root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == [
        ".*.valhalla-*",
        "/manifest/.*.lock",
        "/manifest/.*.tmp-*",
        "/manifest/*.history/.tmp-*",
        "/manifest/*.history/.pending-*",
    ]
    assert ws.run("init", "--site", "site", NB).stderr.endswith("(2 patterns)\n")
    lines = (ws.root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[-2:] == PATTERNS[:2] and lines.count(HEADER) == 1


def manifest_files_only(status: str) -> list[str]:
    """The paths in ``git status --porcelain`` output, each checked to be a manifest file: in
    the manifest folder, and not hidden (lock and temp files are hidden)."""
    paths = [line[3:] for line in status.splitlines()]
    for path in paths:
        assert path.startswith("manifest/") and not path.rsplit("/", 1)[1].startswith("."), path
    return paths


@pytest.mark.slow
def test_git_status_shows_only_the_manifest_after_init_build_and_a_change(tmp_path: Path) -> None:
    repo = tmp_path / "status"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("*.pyc", encoding="utf-8")  # the user's, no final newline
    assert tool(repo, "init", "--by", "alice").returncode == 0  # init builds the site too
    status = git(repo, "status", "--porcelain", "-uall").splitlines()
    assert status[0] == "?? .gitignore"
    assert "manifest/valhalla.yaml" in manifest_files_only("\n".join(status[1:]))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    sub = repo / "docs"
    sub.mkdir()
    changes = [
        ("build",),
        ("pack", "set", "K", "--status", "pending"),
        ("pack", "add", "X", "--name", "Extra", "--group", "Professional"),
        ("set-version", "1.1.0"),
        ("set-notes", "rolling out"),
        ("pack", "set", "K", "--status", "installed"),
        ("pack", "set", "X", "--status", "experimental"),
        ("complete",),
        ("build", "--check"),
    ]
    for args in changes:
        done = tool(sub, *args)
        assert done.returncode == 0, done.stderr
    # What a killed build or writer leaves behind is ignored too.
    for leftover in (".site.valhalla-staging-1a2b", ".site.valhalla-old-1a2b"):
        (repo / leftover).mkdir()
        (repo / leftover / "index.html").write_text("x", encoding="utf-8")
    (repo / "manifest" / ".valhalla.yaml.tmp-99-abcd").write_text("x", encoding="utf-8")
    (repo / "manifest" / "valhalla.history" / ".tmp-99-abcd").write_text("x", encoding="utf-8")
    assert (repo / "site" / "index.html").is_file()
    status = git(repo, "status", "--porcelain", "-uall")
    assert "manifest/valhalla.yaml" in manifest_files_only(status)
    assert git(repo, "status", "--porcelain", "--ignored").count("!! site/") == 1
