"""`diff` on real git repositories: each kind of change, each format, --exit-code, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from valhalla_status.cli import main

DAY1 = 1758326400  # 2025-09-20T00:00:00Z
DAY2 = DAY1 + 86400
MANIFEST = "manifest/valhalla.yaml"
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@dataclass
class Repo:
    root: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    def change(self, *args: str, when: int = DAY2) -> None:
        """A mutation by alice at ``when`` (no site build)."""
        self.monkeypatch.setenv("SOURCE_DATE_EPOCH", str(when))
        result = self.run(*args, "--by", "alice", "--no-build")
        assert result.exit_code == 0, result.stderr

    def entry_ids(self) -> list[str]:
        """The ids of the working manifest's history entries, oldest first."""
        document = json.loads(self.run("history", "--json", "--limit", "1000").stdout)
        return [entry["id"] for entry in document["history"][::-1]]

    def commit(self, message: str = "change") -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    """A git repository whose HEAD holds the default manifest (K pending), cwd at its root."""
    for var in ("VALHALLA_MANIFEST", "VALHALLA_SITE", "VALHALLA_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    git(root, "init", "-q", "-b", "main")
    made = Repo(root, monkeypatch)
    made.change("init", when=DAY1)
    made.change("pack", "set", "K", "--status", "pending", when=DAY1)
    made.commit("init")
    yield made


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


# --- no change, the default sides ------------------------------------------------------------


def test_no_change_says_so_and_exits_0_even_with_exit_code(repo: Repo) -> None:
    for args in ((), ("--exit-code",)):
        result = repo.run("diff", *args)
        assert (result.exit_code, result.stdout) == (
            0,
            "No status changes: HEAD → manifest/valhalla.yaml\n",
        )
        assert result.stderr == ""


def test_reformatting_alone_is_no_status_change(repo: Repo) -> None:
    text = repo.manifest.read_text(encoding="utf-8")
    text = text.replace("version: 1.0.0", 'version: "1.0.0"').replace(
        "status: pending", "status: 'pending'"
    )
    repo.manifest.write_text("# a hand edit\n" + text, encoding="utf-8")
    result = repo.run("diff", "--exit-code")
    assert (result.exit_code, lines(result)) == (
        0,
        ["No status changes: HEAD → manifest/valhalla.yaml"],
    )


# --- each kind of change ----------------------------------------------------------------------


def test_pack_status_change(repo: Repo) -> None:
    repo.change("pack", "set", "k", "--status", "installed")
    result = repo.run("diff")
    assert result.exit_code == 0
    assert lines(result) == [
        "Status changes: HEAD → manifest/valhalla.yaml",
        "  updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
        "  Pack K: pending → installed (Executor Pro)",
        "History: 1 entry added",
        f"  {repo.entry_ids()[-1]}  2025-09-21 00:00 UTC  alice  pack-set",
    ]


def test_version_backend_and_notes(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed")
    repo.change("set-version", "1.1.0", "--notes", "Release 1.1")
    repo.change("complete", "--notes", "Backend verification passed")
    set_k, version, complete = repo.entry_ids()[-3:]
    assert lines(repo.run("diff")) == [
        "Status changes: HEAD → manifest/valhalla.yaml",
        "  version 1.0.0 → 1.1.0",
        "  backend: in development → complete (completed_at 2025-09-21 00:00 UTC)",
        '  notes: (none) → "Backend verification passed"',
        "  updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
        "  Pack K: pending → installed (Executor Pro)",
        "History: 3 entries added",
        f"  {set_k}  2025-09-21 00:00 UTC  alice  pack-set",
        f'  {version}  2025-09-21 00:00 UTC  alice  set-version  "Release 1.1"',
        f'  {complete}  2025-09-21 00:00 UTC  alice  complete  "Backend verification passed"',
    ]


def test_backend_back_to_development_and_lower_version(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed", when=DAY1)
    repo.change("complete", when=DAY1)
    repo.change("set-version", "2.0.0", when=DAY1)
    repo.commit()
    repo.change("incomplete", "--notes", "Rollback\nsee the incident")
    repo.change("set-version", "1.9.0", "--force")
    assert lines(repo.run("diff"))[1:4] == [
        "  version 2.0.0 → 1.9.0 (lower)",
        "  backend: complete → in development",
        '  notes: (none) → "Rollback\\nsee the incident"',
    ]


def test_packs_added_removed_renamed_moved_and_reordered(repo: Repo) -> None:
    repo.change("pack", "add", "x1", "--name", "Ledger Sync", "--group", "Data")
    repo.change("pack", "remove", "W")
    repo.change("pack", "set", "H", "--name", "Analyst Basics", "--group", "Entry")
    assert lines(repo.run("diff"))[1:6] == [
        "  updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
        '  Pack H: name "Analyst Essentials" → "Analyst Basics"',
        '  Pack H: group "Professional" → "Entry" (Analyst Basics)',
        "  Pack X1 added: Ledger Sync (Data, pending)",
        "  Pack W removed: System Completion Metadata (was System infrastructure, installed)",
    ]
    repo.commit()
    text = repo.manifest.read_text(encoding="utf-8")
    block_h = "- id: H\n  status: installed\n  name: Analyst Basics\n  group: Entry\n"
    moved = text.replace(block_h, "") + block_h
    repo.manifest.write_text(moved, encoding="utf-8")
    assert lines(repo.run("diff")) == [
        "Status changes: HEAD → manifest/valhalla.yaml",
        "  Packs reordered",
    ]


def test_system_text_fields_and_extra(repo: Repo) -> None:
    text = repo.manifest.read_text(encoding="utf-8")
    text = text.replace("  name: Valhalla\n", "  name: Valhalla 2\n")
    text = text.replace("  extra: {}\n", "  extra:\n    region: eu\n    tier: 1\n")
    repo.manifest.write_text(text, encoding="utf-8")
    assert lines(repo.run("diff")) == [
        "Status changes: HEAD → manifest/valhalla.yaml",
        '  name: "Valhalla" → "Valhalla 2"',
        '  extra: changed "region", "tier"',
    ]


# --- sides: revisions, files, one argument ------------------------------------------------------


def test_two_revisions_one_revision_and_two_files(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed")
    repo.commit("K installed")
    repo.change("set-version", "1.0.1", when=DAY2 + 3600)
    between = repo.run("diff", "HEAD~1", "HEAD")
    assert lines(between)[0] == "Status changes: HEAD~1 → HEAD"
    assert "  Pack K: pending → installed (Executor Pro)" in lines(between)
    assert "  version 1.0.0 → 1.0.1" not in lines(between)
    one = repo.run("diff", "HEAD~1")
    assert lines(one)[:3] == [
        "Status changes: HEAD~1 → manifest/valhalla.yaml",
        "  version 1.0.0 → 1.0.1",
        "  updated: 2025-09-20 00:00 UTC → 2025-09-21 01:00 UTC",
    ]
    old = repo.root / "old.yaml"
    old.write_text(git(repo.root, "show", f"HEAD~1:{MANIFEST}"), encoding="utf-8")
    (repo.root / "old.history").mkdir()  # a manifest file's history is the folder beside it
    folder = "manifest/valhalla.history"
    for name in git(repo.root, "ls-tree", "-r", "--name-only", "HEAD~1", f"{folder}/").split():
        content = git(repo.root, "show", f"HEAD~1:{name}")
        copy = repo.root / "old.history" / name.removeprefix(f"{folder}/")
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(content, encoding="utf-8")
    files = repo.run("diff", "old.yaml", MANIFEST, "--exit-code")
    assert files.exit_code == 1
    assert lines(files)[0] == f"Status changes: old.yaml → {MANIFEST}"
    assert lines(files)[1:] == lines(one)[1:]


def test_manifest_path_is_taken_relative_to_the_repository_root(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed")
    elsewhere = repo.root / "deep" / "er"
    elsewhere.mkdir(parents=True)
    repo.monkeypatch.chdir(elsewhere)
    result = repo.run("--manifest", "../../manifest/valhalla.yaml", "diff", "--exit-code")
    assert result.exit_code == 1
    assert lines(result)[0] == "Status changes: HEAD → ../../manifest/valhalla.yaml"
    assert "  Pack K: pending → installed (Executor Pro)" in lines(result)


# --- formats -------------------------------------------------------------------------------------


def test_markdown_is_escaped_and_ready_to_paste(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed")
    repo.change(
        "pack",
        "add",
        "Z",
        "--name",
        "<img src=x>|*Bold*",
        "--group",
        "`G`",
        "--status",
        "installed",
    )
    repo.change("complete", "--notes", "Done | shipped\nfor _real_")
    ids = repo.entry_ids()[-3:]
    result = repo.run("diff", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout == (
        "### Valhalla status changes\n"
        "\n"
        "HEAD → manifest/valhalla.yaml\n"
        "\n"
        "- backend: in development → complete (completed\\_at 2025-09-21 00:00 UTC)\n"
        '- notes: (none) → "Done \\| shipped\\\\nfor \\_real\\_"\n'
        "- updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC\n"
        "\n"
        "| Pack | Name | Change |\n"
        "| --- | --- | --- |\n"
        "| K | Executor Pro | pending → installed |\n"
        "| Z | &lt;img src=x&gt;\\|\\*Bold\\* | added (\\`G\\`, installed) |\n"
        "\n"
        "**History**: 3 entries added\n"
        "\n"
        "| Entry | Made | By | Action | Notes |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"| {ids[0]} | 2025-09-21 00:00 UTC | alice | pack-set |  |\n"
        f"| {ids[1]} | 2025-09-21 00:00 UTC | alice | pack-add |  |\n"
        f"| {ids[2]} | 2025-09-21 00:00 UTC | alice | complete "
        "| Done \\| shipped for \\_real\\_ |\n"
    )


def test_markdown_without_changes(repo: Repo) -> None:
    assert repo.run("diff", "--format", "markdown").stdout == (
        "### Valhalla status: no changes\n\nHEAD → manifest/valhalla.yaml\n"
    )


def test_json_document(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed", "--group", "Core")
    added = repo.entry_ids()[-1]
    result = repo.run("diff", "--format", "json", "--exit-code")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "old": "HEAD",
        "new": MANIFEST,
        "changed": True,
        "changes": {
            "packs.K.group": ["Professional", "Core"],
            "packs.K.status": ["pending", "installed"],
            "updated_at": ["2025-09-20T00:00:00Z", "2025-09-21T00:00:00Z"],
        },
        "packs_reordered": False,
        "history_added": [
            {
                "at": "2025-09-21T00:00:00Z",
                "by": "alice",
                "action": "pack-set",
                "changes": {
                    "packs.K.group": ["Professional", "Core"],
                    "packs.K.status": ["pending", "installed"],
                },
                "notes": None,
                "id": added,
                "landed_at": "2025-09-21T00:00:00Z",
            }
        ],
        "history_removed": [],
        "history_edited": [],
        "summary": [
            "  updated: 2025-09-20 00:00 UTC → 2025-09-21 00:00 UTC",
            "  Pack K: pending → installed (Executor Pro)",
            '  Pack K: group "Professional" → "Core" (Executor Pro)',
            "History: 1 entry added",
            f"  {added}  2025-09-21 00:00 UTC  alice  pack-set",
        ],
    }


def test_going_backwards_shows_history_removed(repo: Repo) -> None:
    repo.change("set-notes", "hello")
    repo.commit()
    result = repo.run("diff", "HEAD", "HEAD~1", "--format", "json")
    document = json.loads(result.stdout)
    assert document["changes"]["notes"] == ["hello", None]
    assert [e["action"] for e in document["history_removed"]] == ["set-notes"]
    assert document["history_added"] == []


def test_unknown_format_is_a_usage_error(repo: Repo) -> None:
    result = repo.run("diff", "--format", "html")
    assert result.exit_code == 2
    assert "'html' is not one of 'text', 'markdown', 'json'" in result.stderr


# --- errors: one clear line, exit 1 --------------------------------------------------------------


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    return result.stderr.rstrip("\n")


def test_unknown_revision(repo: Repo) -> None:
    for bad in ("no-such-branch", "HEAD~5", "-rf"):
        line = one_error_line(repo.run("diff", "--", bad))
        assert (
            line == f"error: unknown revision {bad!r} (not a commit in {repo.root}, and not a file)"
        )


def test_manifest_missing_at_revision(repo: Repo) -> None:
    git(repo.root, "rm", "-q", "-r", "--cached", "manifest")
    git(repo.root, "commit", "-q", "-m", "untrack")
    line = one_error_line(repo.run("diff"))
    assert line == "error: manifest/valhalla.yaml does not exist at revision HEAD"


def test_folder_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(DAY1))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--by", "a", "--no-build"]).exit_code == 0
    line = one_error_line(runner.invoke(main, ["diff"]))
    assert line == (
        f"error: {tmp_path / 'manifest'} is not inside a git repository; "
        "give two manifest files to compare"
    )
    # Two files need no git.
    result = runner.invoke(main, ["diff", MANIFEST, MANIFEST, "--exit-code"])
    assert (result.exit_code, result.stdout) == (0, f"No status changes: {MANIFEST} → {MANIFEST}\n")


def test_invalid_manifest_on_the_new_side(repo: Repo) -> None:
    text = repo.manifest.read_text(encoding="utf-8")
    number = text.splitlines().index("  status: pending") + 1
    repo.manifest.write_text(text.replace("status: pending", "status: pendin"), encoding="utf-8")
    assert one_error_line(repo.run("diff")) == (
        f"error: invalid manifest: {MANIFEST}:{number}: packs[3].status: 'pendin' is not one of "
        "installed, pending, deprecated, experimental"
    )


def test_invalid_manifest_on_the_old_side(repo: Repo) -> None:
    good = repo.manifest.read_text(encoding="utf-8")
    bad = good.replace("version: 1.0.0", "version: '1.0'").replace("status: pending", "status: x")
    repo.manifest.write_text(bad, encoding="utf-8")
    repo.commit("broken")
    repo.manifest.write_text(good, encoding="utf-8")
    line = one_error_line(repo.run("diff"))
    assert line.startswith(f"error: invalid manifest: HEAD:{MANIFEST}:")
    assert line.endswith(" (and 1 more problem)")
    conflicted = good.replace("packs:\n", "<<<<<<< HEAD\npacks:\n")
    repo.manifest.write_text(conflicted, encoding="utf-8")
    repo.commit("conflict")
    number = conflicted.splitlines().index("<<<<<<< HEAD") + 1
    assert one_error_line(repo.run("diff", "HEAD", "HEAD~1")) == (
        f"error: invalid manifest: HEAD:{MANIFEST}:{number}: merge-conflict marker '<<<<<<<'; "
        "resolve the conflict first"
    )


def test_missing_working_file(repo: Repo) -> None:
    repo.manifest.unlink()
    assert one_error_line(repo.run("diff")) == (
        f"error: invalid manifest: {MANIFEST}: no manifest here; "
        "run `valhalla-status init` to create one"
    )


def test_real_process_writes_a_job_summary(repo: Repo) -> None:
    repo.change("pack", "set", "K", "--status", "installed")
    summary = repo.root / "summary.md"
    with summary.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "valhalla_status", "diff", "main", "--format", "markdown"],
            cwd=repo.root,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert (done.returncode, done.stderr) == (0, "")
    assert "| K | Executor Pro | pending → installed |\n" in summary.read_text(encoding="utf-8")


def test_oversized_manifest_at_a_revision_is_not_read(repo: Repo) -> None:
    repo.monkeypatch.setattr("valhalla_status.readers.diff.MAX_MANIFEST_BYTES", 100)
    assert one_error_line(repo.run("diff", "HEAD", "HEAD")) == (
        f"error: HEAD:{MANIFEST}: file is over the 32 MiB limit (not parsed)"
    )
