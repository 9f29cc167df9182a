"""The scenario matrix of docs/LAYOUT.md: what git does with parallel status changes, and what
the checks then say. Every row is run, not written by hand.

    python docs/scenarios.py            # rewrite the matrix in docs/LAYOUT.md
    python docs/scenarios.py --print    # print it instead

Each scenario starts from a fresh repository (``valhalla-status init`` at 00:00), makes its
changes on two branches with the CLI (times from SOURCE_DATE_EPOCH, commit times from
GIT_COMMITTER_DATE, one hour apart), and lands the second branch on main with each of the three
merge styles a hosting service offers. The columns: does git merge it cleanly, what
``validate`` says afterwards, the history as published (newest first, each change at the hour
it landed, and the hour it was made where that differs), K's ``since`` and ``updated_at``.
Needs git and this checkout's package (run it with the virtualenv's interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

EPOCH = 1758326400  # 2025-09-20 00:00 UTC
LAYOUT = Path(__file__).with_name("LAYOUT.md")
START, END = "<!-- scenario matrix: start -->", "<!-- scenario matrix: end -->"
STYLES = ("merge commit", "squash", "rebase")


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hour = 0

    def env(self) -> dict[str, str]:
        stamp = f"@{EPOCH + self.hour * 3600} +0000"
        return {
            **os.environ,
            "SOURCE_DATE_EPOCH": str(EPOCH + self.hour * 3600),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org",
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
        }

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=self.root, env=self.env(), capture_output=True, text=True
        )

    def tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "valhalla_status", *args]
        return subprocess.run(argv, cwd=self.root, env=self.env(), capture_output=True, text=True)

    def change(self, *args: str) -> None:
        """A change on the current branch, committed, one hour after the last step."""
        self.hour += 1
        done = self.tool(*args, "--no-build", "--by", "ops")
        if done.returncode:
            raise SystemExit(f"{' '.join(args)}: {done.stderr}")
        self.git("add", "-A")
        self.git("commit", "-qm", " ".join(args))

    def branch(self, name: str, *changes: tuple[str, ...]) -> None:
        self.git("checkout", "-q", "-b", name, "main")
        for change in changes:
            self.change(*change)
        self.git("checkout", "-q", "main")

    def land(self, branch: str, style: str) -> bool:
        """Land ``branch`` on main; False when git stops on a conflict."""
        self.hour += 1
        if style == "merge commit":
            return self.git("merge", "-q", "--no-ff", "--no-edit", branch).returncode == 0
        if style == "squash":
            if self.git("merge", "-q", "--squash", branch).returncode:
                return False
            return self.git("commit", "-qm", f"{branch} (squashed)").returncode == 0
        self.git("checkout", "-q", branch)
        if self.git("rebase", "-q", "main").returncode:
            return False
        self.git("checkout", "-q", "main")
        return self.git("merge", "-q", "--ff-only", branch).returncode == 0


def validate_says(repo: Repo) -> str:
    done = repo.tool("validate")
    if done.returncode == 0:
        return "valid"
    lines = [line.removeprefix("error: ") for line in done.stderr.splitlines() if line.strip()]
    first = lines[0]
    for marker in (": packs[", ": system.", "manifest/valhalla.history/"):
        if marker in first and marker != "manifest/valhalla.history/":
            first = first[first.index(marker) + 2 :]
    first = first.split("; ")[0]
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return f"fails: {first}{more}"


def hour(stamp: str) -> str:
    return f"{int((int(stamp[8:10]) - 20) * 24 + int(stamp[11:13])):02d}:00"


def shown(repo: Repo) -> tuple[str, str, str]:
    done = repo.tool("history", "--json", "--limit", "20")
    if done.returncode:
        return "(refused: invalid)", "", ""
    history = json.loads(done.stdout)["history"]
    words = []
    for entry in history:
        word = f"{entry['action']} {hour(entry['landed_at'])}"
        if entry["landed_at"] != entry["at"]:
            word += f" (made {hour(entry['at'])})"
        words.append(word)
    status = json.loads(repo.tool("show", "--json").stdout)
    since = next(p["since"] for p in status["packs"] if p["id"] == "K")
    return ", ".join(words), hour(since), hour(status["updated_at"])


Scenario = Callable[[Repo, str], bool]


def different_packs(repo: Repo, style: str) -> bool:
    repo.branch("a", ("pack", "set", "K", "--status", "pending"))
    repo.branch("b", ("pack", "set", "M", "--status", "deprecated"))
    return repo.land("a", style) and repo.land("b", style)


def status_and_note(repo: Repo, style: str) -> bool:
    repo.branch("a", ("pack", "set", "K", "--status", "experimental", "--keep-notes"))
    repo.branch("b", ("pack", "set", "K", "--notes", "vendor ticket 42"))
    return repo.land("a", style) and repo.land("b", style)


def same_field(repo: Repo, style: str) -> bool:
    repo.branch("a", ("pack", "set", "K", "--status", "pending"))
    repo.branch("b", ("pack", "set", "K", "--status", "deprecated"))
    return repo.land("a", style) and repo.land("b", style)


def complete_and_pending(repo: Repo, style: str) -> bool:
    repo.branch("a", ("complete",))
    repo.branch("b", ("pack", "set", "L", "--status", "pending"))
    return repo.land("a", style) and repo.land("b", style)


def lands_late(repo: Repo, style: str) -> bool:
    repo.branch("late", ("pack", "set", "K", "--status", "pending"))
    for minor in (1, 2, 3):
        repo.change("set-version", f"1.{minor}.0")
    return repo.land("late", style)


def git_revert(repo: Repo, style: str) -> bool:
    repo.branch("a", ("pack", "set", "K", "--status", "pending"))
    landed = repo.land("a", style)
    repo.hour += 1
    parent = ["-m", "1"] if style == "merge commit" else []
    return landed and repo.git("revert", "--no-edit", *parent, "HEAD").returncode == 0


def tool_revert(repo: Repo, style: str) -> bool:
    repo.branch("a", ("pack", "set", "K", "--status", "pending"))
    landed = repo.land("a", style)
    newest = json.loads(repo.tool("history", "--json", "--limit", "1").stdout)["history"][0]
    repo.git("checkout", "-q", "-b", "undo", "main")
    repo.change("revert", newest["id"])
    repo.git("checkout", "-q", "main")
    return landed and repo.land("undo", style)


def hand_edit(repo: Repo, style: str) -> bool:
    repo.git("checkout", "-q", "-b", "a", "main")
    manifest = repo.root / "manifest" / "valhalla.yaml"
    text = manifest.read_text(encoding="utf-8")
    edited = text.replace("- id: K\n  status: installed", "- id: K\n  status: deprecated")
    manifest.write_text(edited)
    repo.hour += 1
    repo.git("commit", "-qam", "K deprecated by hand")
    repo.git("checkout", "-q", "main")
    return repo.land("a", style)


SCENARIOS: dict[str, Scenario] = {
    "K pending / M deprecated": different_packs,
    "K's status / K's note": status_and_note,
    "K pending / K deprecated": same_field,
    "`complete` / L pending": complete_and_pending,
    "K pending, landed after 3 other changes": lands_late,
    "K pending landed, then `git revert` of it": git_revert,
    "K pending landed, then `valhalla-status revert`": tool_revert,
    "K deprecated by a hand edit": hand_edit,
}


def run(name: str, scenario: Scenario, style: str) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Repo(Path(scratch))
        repo.git("init", "-q", "-b", "main")
        (repo.root / ".gitignore").write_text("site/\n.*.lock\n")
        done = repo.tool("init", "--no-build", "--by", "ops")
        if done.returncode:
            raise SystemExit(done.stderr)
        repo.git("add", "-A")
        repo.git("commit", "-qm", "init")
        if not scenario(repo, style):
            return f"| {name} | {style} | no: conflict in the main file | | | | |"
        history, since, updated = shown(repo)
        said = validate_says(repo).replace("|", "\\|")
        return f"| {name} | {style} | yes | {said} | {history} | {since} | {updated} |"


def matrix() -> str:
    rows = [
        "| scenario (branch A / branch B) | merge style | merges cleanly? | `validate` says "
        "| `history` (newest first, landed) | K `since` | `updated_at` |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, scenario in SCENARIOS.items():
        rows += [run(name, scenario, style) for style in STYLES]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="print the matrix only")
    table = matrix()
    if parser.parse_args().print:
        print(table, end="")
        return
    text = LAYOUT.read_text(encoding="utf-8")
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    LAYOUT.write_text(f"{before}{START}\n{table}{END}{after}", encoding="utf-8")


if __name__ == "__main__":
    main()
