"""What each command costs with a long history: 100,000 entries by default.

    python benchmarks/history_scale.py                       # 100,000 entries, 3 runs each
    python benchmarks/history_scale.py --entries 10000 --runs 5
    python benchmarks/history_scale.py --pythonpath ../old   # the same with another checkout

A git repository holds an ``init`` entry and then one ``set-version`` change per entry, all in
one commit (what the landings cost with many commits is ``benchmarks/landing.py``), and the
main file that history explains. Each command runs cold (a new process) in that repository,
first once to let the tool keep what it keeps in the git folder, then ``--runs`` times; the
median is printed with the peak memory. Every command is undone with ``git checkout`` / ``git
clean`` before the next; the changes (``--no-build``) come last and follow each other, as a
user's do (``K`` pending, installed, pending…), after ``validate`` and ``build`` have checked
the whole history (the first change after new commits or a hand edit checks it all again, as
``validate`` does).
Standard library plus the project; with ``--pythonpath`` the tool runs as
``python -m valhalla_status`` from that folder instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from landing import entry, main_file, version

from valhalla_status.storage.layout import entry_place

COMMANDS = (
    ("summary", ["summary"]),
    ("show --json", ["show", "--json"]),
    ("pack show K", ["pack", "show", "K"]),
    ("history --limit 10", ["history", "--limit", "10"]),
    ("validate", ["validate"]),
    ("build", ["build", "--site", "{site}"]),
    ("a change (--no-build)", ["pack", "set", "K", "--status", "{status}", "--no-build"]),
)


def make_repository(root: Path, count: int) -> None:
    folder = root / "manifest" / "valhalla.history"
    folder.mkdir(parents=True)
    for n in range(count):
        name, text = entry(n)
        file = folder / entry_place(name)
        file.parent.mkdir(exist_ok=True)
        file.write_text(text, encoding="utf-8")
    (root / "manifest" / "valhalla.yaml").write_text(main_file(version(count - 1)), "utf-8")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=b@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "history"], cwd=root, check=True)


def tool(pythonpath: str | None) -> list[str]:
    script = Path(sys.executable).with_name("valhalla-status")
    if pythonpath is None and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "valhalla_status"]


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the peak memory (MiB) of one run."""
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert child.stderr is not None
    said = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{said.decode()}")
    return elapsed, usage.ru_maxrss / 1024


def undo(cwd: Path) -> None:
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=cwd, check=True)
    subprocess.run(["git", "clean", "-qfdx", "manifest"], cwd=cwd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pythonpath", help="run the tool from this checkout instead")
    options = parser.parse_args()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env["SOURCE_DATE_EPOCH"] = str(2_000_000_000)  # after every entry
    if options.pythonpath:
        env["PYTHONPATH"] = str(Path(options.pythonpath).resolve())
    argv = tool(options.pythonpath)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        make_repository(root, options.entries)
        site = str(Path(scratch) / "site")
        print(f"{options.entries:,} history entries, median of {options.runs} cold runs")
        print("| command | first run | median | peak memory |")
        print("|---|---|---|---|")
        for label, args in COMMANDS:
            changes = label.startswith("a change")

            def command(n: int, args: list[str] = args) -> list[str]:
                status = ("pending", "installed")[n % 2]
                return [*argv, *(a.format(site=site, status=status) for a in args)]

            first, _ = timed(command(0), root, env)
            if not changes:
                undo(root)
            runs = []
            for n in range(1, options.runs + 1):
                runs.append(timed(command(n), root, env))
                if not changes:
                    undo(root)  # changes follow each other (K pending, installed, …)
            undo(root)
            median = statistics.median(t for t, _ in runs)
            peak = max(m for _, m in runs)
            print(f"| `{label}` | {first:.2f} s | {median:.2f} s | {peak:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
