"""What reading the landing order from git costs: a build at 10,000 history entries, in a git
repository (one commit per change) and the same files outside git.

    python benchmarks/landing.py                      # 10,000 entries, 5 runs each
    python benchmarks/landing.py --entries 1000 --runs 3
    python benchmarks/landing.py --pythonpath ../old  # the same, with another checkout's code
    python benchmarks/landing.py --flat               # entry files directly in the history folder

The repository is written with ``git fast-import`` (10,000 commits in a second or two): an
``init`` entry, then one ``set-version`` change per commit, and the main file that history
explains. Entry files go where the tool writes them (a subfolder per first two digits of their
hash), or with ``--flat`` directly in the history folder, as earlier versions wrote them.
Each run is a cold ``valhalla-status build`` into a fresh folder (and a ``summary`` and a
``validate``): in git from nothing (as in a fresh clone: the landings kept in the git folder
removed first), in git with the landings that run kept, and on a copy of the files outside
git; the three are interleaved. Standard library plus the project;
with ``--pythonpath`` the tool runs as ``python -m valhalla_status`` from that folder instead.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from valhalla_status.rules.defaults import DEFAULT_PACKS
from valhalla_status.storage.layout import entry_place

EPOCH = 1758326400
HEADER = (
    "# Valhalla status manifest: the source of truth for the platform's status.\n"
    "# Change it with `valhalla-status` (see README.md);\n"
    "# after a hand edit, run `valhalla-status fmt`.\n"
)
PACKS = "".join(
    f"- id: {pack}\n  status: installed\n  name: {name}\n  group: {group}\n"
    for pack, name, group in DEFAULT_PACKS
)


def main_file(version: str) -> str:
    return (
        f"{HEADER}schema_version: 2\nsystem:\n  name: Valhalla\n  version: {version}\n"
        "  description: Valhalla professional capital markets system\n"
        "  backend_complete: false\n  completed_at: null\n  extra: {}\n  notes: null\n"
        f"packs:\n{PACKS}"
    )


def version(n: int) -> str:
    return f"1.0.{n}" if n else "1.0.0"


def entry(n: int) -> tuple[str, str]:
    """The n-th entry file (0: init) as (name, text), named as the tool names it."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + 60 * n))
    if n == 0:
        text = f"at: '{at}'\nby: bench\naction: init\nchanges: {{}}\nnotes: null\n"
    else:
        text = (
            f"at: '{at}'\nby: bench\naction: set-version\nchanges:\n"
            f"  version: [{version(n - 1)}, {version(n)}]\nnotes: null\n"
        )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(EPOCH + 60 * n))
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{stamp}-{n:06d}-{digest}.yaml", text


def fast_import(repo: Path, count: int, flat: bool = False) -> None:
    """A repository whose main branch adds one entry per commit (the last commit also writes
    the main file that the history explains)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    chunks: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        chunks.append(f"data {len(raw)}\n".encode() + raw + b"\n")

    for n in range(count):
        name, text = entry(n)
        chunks.append(f"commit refs/heads/main\nmark :{n + 1}\n".encode())
        chunks.append(f"committer bench <b@example.org> {EPOCH + 60 * n + 30} +0000\n".encode())
        data(f"change {n}")
        if n:
            chunks.append(f"from :{n}\n".encode())
        if n in (0, count - 1):
            chunks.append(b"M 100644 inline manifest/valhalla.yaml\n")
            data(main_file(version(n)))
        place = name if flat else entry_place(name)
        chunks.append(f"M 100644 inline manifest/valhalla.history/{place}\n".encode())
        data(text)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(chunks), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True)


def tool(pythonpath: str | None) -> list[str]:
    script = Path(sys.executable).with_name("valhalla-status")
    if pythonpath is None and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "valhalla_status"]


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{done.stderr.decode()}")
    return elapsed


# In order: from nothing (a fresh clone), then with what that read kept, then outside git.
CASES = (
    ("in git, from nothing", "git"),
    ("in git, landings kept", "git"),
    ("outside git", "plain"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pythonpath", help="run the tool from this checkout instead")
    parser.add_argument("--flat", action="store_true", help="entry files directly in the folder")
    options = parser.parse_args()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if options.pythonpath:
        env["PYTHONPATH"] = str(Path(options.pythonpath).resolve())
    argv = tool(options.pythonpath)
    with tempfile.TemporaryDirectory() as scratch:
        in_git = Path(scratch) / "repo"
        fast_import(in_git, options.entries, options.flat)
        outside = Path(scratch) / "plain"
        shutil.copytree(in_git / "manifest", outside / "manifest")
        kept = in_git / ".git" / "valhalla-status"
        times: dict[str, list[float]] = {}
        for run in range(options.runs):
            for command in ("build", "validate", "summary"):
                for label, folder in CASES:
                    if label.startswith("in git, from nothing"):
                        shutil.rmtree(kept, ignore_errors=True)
                    where = in_git if folder == "git" else outside
                    site = ["--site", str(Path(scratch) / f"site-{run}-{len(times)}")]
                    argv_ = [*argv, command, *(site if command == "build" else [])]
                    times.setdefault(f"{command}, {label}", []).append(timed(argv_, where, env))
    print(
        f"{options.entries:,} history entries ({options.entries:,} commits"
        f"{', flat folder' if options.flat else ''}), "
        f"median of {options.runs} cold runs:"
    )
    for label, values in times.items():
        print(f"  {label:34} {statistics.median(values):6.2f} s")


if __name__ == "__main__":
    main()
