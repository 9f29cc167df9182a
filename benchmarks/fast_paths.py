"""What each fast path buys: a command's wall time with it and without it, runs interleaved.

    python benchmarks/fast_paths.py                        # every case, 5 runs of each variant
    python benchmarks/fast_paths.py --case links --runs 9  # one case
    python benchmarks/fast_paths.py --quick                # tiny sizes, one run (smoke test)

Each run is a cold process started the same way for both variants (``python -c`` calling the
CLI's ``main``; for ``serve``'s rebuild, a script doing what ``serve`` does after an edit, which
times the rebuild alone); "without" first runs a line of Python that switches the fast path
off. The two variants alternate run by run (ABBA), so a burst of load elsewhere on a shared
machine touches both alike; the figures are medians. ``pydantic-json`` is measured too, though
it stays for the bytes it writes (docs/DESIGN.md).
Standard library plus the project; run it with the virtualenv's own interpreter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from landing import entry, fast_import, main_file
from run import generate_manifest

LAUNCH = "{switch}\nfrom valhalla_status.cli import main\nmain(prog_name='valhalla-status')\n"
# What `serve` does after an edit, in the process that served the first build: the change, then
# the rebuild (timed). ``sys.argv[1]`` is the status to set.
REBUILD = """{switch}
import sys, time
from valhalla_status.manifest import load_manifest
from valhalla_status.service import set_pack
from valhalla_status.site import build_site
M = "manifest/valhalla.yaml"
build_site(load_manifest(M), "site", manifest_path=M)
set_pack(M, "P0", status=sys.argv[1], by="bench")
start = time.perf_counter()
build_site(load_manifest(M), "site", manifest_path=M)
print(time.perf_counter() - start)
"""
STATUSES = ("pending", "installed")  # P0 starts installed: every run of a change changes it


@dataclass(frozen=True)
class Case:
    """One fast path: the command a user waits for, at each size, with and without it."""

    name: str
    fast_path: str
    command: str
    sizes: tuple[int, ...]
    unit: str  # what a size counts
    setup: Callable[[Path, int], None]  # makes the workspace at ``root`` for ``size``
    argv: Callable[[int], list[str]]  # the command of run ``i``
    without: str  # Python run before the CLI that switches the fast path off
    ok: tuple[int, ...] = (0,)
    before: Callable[[Path], None] | None = None  # run before each timed run
    script: str | None = None  # instead of the CLI: Python that prints the seconds to count


def tool(args: list[str]) -> list[str]:
    return ["--manifest", "manifest/valhalla.yaml", "--site", "site", *args]


def cli(root: Path, args: list[str], env: dict[str, str]) -> None:
    argv = [sys.executable, "-m", "valhalla_status", *tool(args)]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")


ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
for _name in ("VALHALLA_MANIFEST", "VALHALLA_SITE", "SOURCE_DATE_EPOCH"):
    ENV.pop(_name, None)


def packs_and_site(root: Path, size: int) -> None:
    """``size`` packs (a main file and its history folder) and their site, built."""
    generate_manifest(root / "manifest" / "valhalla.yaml", size, layout=2)
    cli(root, ["build"], ENV)


def packs_only(root: Path, size: int) -> None:
    generate_manifest(root / "manifest" / "valhalla.yaml", size, layout=2)


def history_files(root: Path, size: int) -> None:
    """The 16 default packs and ``size`` history entries (one ``set-version`` each), outside
    git, and their site."""
    folder = root / "manifest" / "valhalla.history"
    folder.mkdir(parents=True)
    for n in range(size):
        name, text = entry(n)
        (folder / name).write_text(text, encoding="utf-8")
    last = size - 1
    (root / "manifest" / "valhalla.yaml").write_text(main_file(f"1.0.{last}" if last else "1.0.0"))
    cli(root, ["build"], ENV)


def history_in_git(root: Path, size: int) -> None:
    """``size`` history entries, one per commit, in a git repository (``landing.py``'s)."""
    fast_import(root / "repo", size)
    for item in (root / "repo").iterdir():
        shutil.move(str(item), root / item.name)
    (root / "repo").rmdir()


def forget_landings(root: Path) -> None:
    shutil.rmtree(root / ".git" / "valhalla-status", ignore_errors=True)


def no_site(root: Path) -> None:
    shutil.rmtree(root / "site", ignore_errors=True)


def pack_set(i: int) -> list[str]:
    return tool(["pack", "set", "P0", "--status", STATUSES[i % 2], "--by", "bench"])


def version(i: int) -> list[str]:
    return tool(["set-version", f"2.0.{i}", "--by", "bench"])


def status_check(root: Path, size: int) -> None:
    packs_and_site(root, size)


CASES = (
    Case(
        "links",
        "unchanged files hard-linked from the live site into the staging folder",
        "`pack set P0 --status …` and its rebuild",
        (16, 10_000),
        "packs",
        packs_and_site,
        pack_set,
        "import valhalla_status.site as s; s._link = lambda source, target: False",
    ),
    Case(
        "pydantic-json",
        "JSON written by pydantic-core's encoder (`documents.to_json`), the standard library's "
        "as its fallback",
        "`build` into a new folder",
        (16, 10_000),
        "packs",
        packs_only,
        lambda i: tool(["build"]),
        "import pydantic_core, valhalla_status.publishing.documents as d\n"
        "def refuse(*args, **kwargs): raise pydantic_core.PydanticSerializationError('off')\n"
        "d._encode = refuse",
        before=no_site,
    ),
    Case(
        "templates",
        "the Jinja2 environment kept per templates folder in the process (`site.environment`)",
        "`serve`'s rebuild after an edit (in process, timed alone)",
        (16, 1_000),
        "packs",
        packs_and_site,
        lambda i: [STATUSES[i % 2]],
        "import valhalla_status.site as s; s.environment = s.environment.__wrapped__",
        script=REBUILD,
    ),
    Case(
        "own-entry",
        "a change writes only its own history entry",
        "`set-version` and its rebuild",
        (1_000, 10_000),
        "history entries",
        history_files,
        version,
        "import valhalla_status.storage.transaction as t\n"
        "w = t.write_manifest\n"
        "t.write_manifest = lambda path, new, history_on_disk=0: w(path, new)",
    ),
    Case(
        "landings",
        "the landings read from git kept in the git folder",
        "`validate` in a git repository, one commit per history entry",
        (1_000, 10_000),
        "history entries",
        history_in_git,
        lambda i: tool(["validate"]),
        "import valhalla_status.storage.landing as l\n"
        "l._remembered_additions = lambda cwd, folder, commit, store: "
        "l._additions(cwd, folder, commit)",
    ),
    Case(
        "entries",
        "what each entry file was read as, kept in the git folder (`storage/entrycache.py`)",
        "`validate` in a git repository, one commit per history entry",
        (1_000, 10_000),
        "history entries",
        history_in_git,
        lambda i: tool(["validate"]),
        "import valhalla_status.storage.entrycache as e; e.EntryCache.get = lambda *a: None",
    ),
    Case(
        "gc-threshold",
        "the CLI collects reference cycles less often (`gc.set_threshold` in `cli.main`)",
        "`validate` in a git repository, one commit per history entry",
        (1_000, 10_000),
        "history entries",
        history_in_git,
        lambda i: tool(["validate"]),
        "import gc; gc.set_threshold = lambda *args: None",
    ),
    Case(
        "recent",
        "what the read commands need of the history kept in the git folder (`snapshot.py`)",
        "`summary` in a git repository, one commit per history entry",
        (1_000, 10_000),
        "history entries",
        history_in_git,
        lambda i: tool(["summary"]),
        "import valhalla_status.storage.snapshot as s\n"
        "s.Kept.recall = s.Kept.keep = lambda *a: None",
    ),
    Case(
        "recent-change",
        "a change that builds no site takes the history from the snapshot (`snapshot.py`)",
        "`pack set K --status … --no-build` in that repository",
        (1_000, 10_000),
        "history entries",
        history_in_git,
        lambda i: tool(["pack", "set", "K", "--status", STATUSES[i % 2], "--no-build"]),
        # without: every change reads the whole history (it still keeps the snapshot, so that
        # the interleaved runs with it find one)
        "import valhalla_status.storage.snapshot as s; s.Kept.recall = lambda *a: None",
    ),
    Case(
        "light-start",
        "each command imports the library modules it needs inside its own function",
        "`check --file site/status.json`",
        (16,),
        "packs",
        status_check,
        lambda i: tool(["check", "--file", "site/status.json"]),
        "import valhalla_status.service, valhalla_status.site, valhalla_status.readers.diff, "
        "valhalla_status.workspace, valhalla_status.publishing.signing",
        ok=(0, 1),  # 1: not ready (the backend is in development)
    ),
)


def timed(code: str, argv: list[str], root: Path, ok: tuple[int, ...], script: bool) -> float:
    """Wall time of one cold run, or for a script the seconds it prints."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=root, env=ENV, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return float(done.stdout) if script else elapsed


def measure(case: Case, root: Path, size: int, runs: int) -> tuple[float, float]:
    """Medians of ``runs`` runs with the fast path and without it, interleaved ABBA."""
    case.setup(root, size)
    launch = case.script or LAUNCH
    codes = {"with": launch.format(switch=""), "without": launch.format(switch=case.without)}
    script = case.script is not None
    times: dict[str, list[float]] = {"with": [], "without": []}
    # From the second run on, "with" finds what the first kept.
    if case.name.startswith(("landings", "recent", "entries", "gc-threshold")):
        timed(codes["with"], case.argv(0), root, case.ok, script)
    i = 0
    for run in range(runs):
        for variant in ("with", "without") if run % 2 == 0 else ("without", "with"):
            if case.before is not None:
                case.before(root)
            times[variant].append(timed(codes[variant], case.argv(i), root, case.ok, script))
            i += 1
    return statistics.median(times["with"]), statistics.median(times["without"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES])
    parser.add_argument("--runs", type=int, default=5, help="runs of each variant (medians)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run")
    options = parser.parse_args()
    chosen = [c for c in CASES if options.case is None or c.name in options.case]
    runs = 1 if options.quick else options.runs
    print("| fast path | command | size | with | without | buys |")
    print("|---|---|---|---|---|---|")
    for case in chosen:
        for size in (min(case.sizes),) if options.quick else case.sizes:
            size = min(size, 50) if options.quick else size
            with tempfile.TemporaryDirectory(prefix="valhalla-fast-") as scratch:
                fast, slow = measure(case, Path(scratch), size, runs)
            print(
                f"| {case.name} | {case.command} | {size:,} {case.unit} | {fast:.3f} s "
                f"| {slow:.3f} s | {slow / fast:.2f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
