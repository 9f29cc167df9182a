"""The README's Quick start and team walkthrough print what the README says they print.

The walkthrough is run as written, in a fresh repository, with the times the README gives
(SOURCE_DATE_EPOCH for the changes, the commit dates for git), and every line of output the
README shows for it must be the tool's real output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def at(clock: str) -> dict[str, str]:
    """The environment of a step made at ``clock`` (HH:MM) on 2025-11-30."""
    hours, minutes = map(int, clock.split(":"))
    epoch = 1764460800 + hours * 3600 + minutes * 60  # 2025-11-30T00:00:00Z
    return {
        **os.environ,
        "SOURCE_DATE_EPOCH": str(epoch),
        "GIT_AUTHOR_DATE": f"@{epoch} +0000",
        "GIT_COMMITTER_DATE": f"@{epoch} +0000",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "alice",
        "GIT_AUTHOR_EMAIL": "alice@example.org",
        "GIT_COMMITTER_NAME": "alice",
        "GIT_COMMITTER_EMAIL": "alice@example.org",
    }


@pytest.mark.slow
def test_the_readme_walkthrough_prints_what_the_readme_shows(tmp_path: Path) -> None:
    repo = tmp_path / "status"
    said: list[str] = []

    def run(clock: str, *argv: str) -> None:
        done = subprocess.run(
            argv, cwd=repo, env=at(clock), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        said.extend((done.stdout + done.stderr).splitlines())

    def tool(clock: str, *args: str) -> None:
        run(clock, sys.executable, "-m", "valhalla_status", *args)

    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=at("08:00"))
    tool("08:00", "init", "--by", "alice")
    run("08:00", "git", "add", "-A")
    run("08:00", "git", "commit", "-qm", "Valhalla status")
    tool("08:10", "pack", "set", "K", "--status", "pending", "--notes", "waiting for vendor fix",
         "--by", "alice")  # fmt: skip
    tool("08:10", "show")
    tool("08:10", "pack", "show", "k")
    run("08:10", "git", "add", "-A")
    run("08:10", "git", "commit", "-qm", "K pending")
    run("09:00", "git", "switch", "-qc", "n-pending", "main")
    tool("09:00", "pack", "set", "N", "--status", "pending", "--notes", "licence renewal",
         "--by", "alice")  # fmt: skip
    run("09:00", "git", "add", "-A")
    run("09:00", "git", "commit", "-qm", "N pending")
    run("09:30", "git", "switch", "-qc", "m-deprecated", "main")
    tool("09:30", "pack", "set", "M", "--status", "deprecated", "--notes", "replaced by N",
         "--by", "bob")  # fmt: skip
    tool("09:30", "set-version", "1.1.0", "--by", "bob")
    run("09:30", "git", "add", "-A")
    run("09:30", "git", "commit", "-qm", "M deprecated, 1.1.0")
    run("10:00", "git", "switch", "-q", "main")
    run("10:00", "git", "merge", "-q", "m-deprecated")
    run("11:00", "git", "merge", "-q", "--no-edit", "n-pending")
    tool("11:00", "validate")
    tool("11:00", "history")
    tool("11:00", "pack", "show", "N")

    text = README.read_text(encoding="utf-8")
    shown = text[text.index("## Quick start") : text.index("## Commands")]
    lines = [line[4:] for line in shown.splitlines() if line.startswith("    ")]
    outputs = [line for line in lines if not line.startswith(("$ ", "…")) and line.strip()]
    assert outputs, "the README shows output"
    for line in outputs:
        assert line in said, f"the README shows {line!r}, which the walkthrough did not print"
