"""Start-up time of the light commands, beside the floors they cannot go under.

    python benchmarks/startup.py              # 31 runs of each, interleaved
    python benchmarks/startup.py --runs 5     # a quick look

Prints the median wall time of each command (a cold process each run): ``python -c pass``,
``import click, json`` (the floor of a click tool reading JSON), ``valhalla-status --help``,
``valhalla-status check --file status.json`` and, when it is installed, ``jq -e
.backend_complete status.json``. The runs are interleaved, so a burst of load elsewhere touches
every command alike. Standard library plus the project; run it with the virtualenv's own
interpreter (a shim in front of ``python3`` adds its own start-up time).

The package's compiled bytecode is used, as in an installed copy: ``PYTHONDONTWRITEBYTECODE``
is dropped for the runs (with it and no ``__pycache__``, every run would compile the package's
source, a few milliseconds more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCH = "1758326400"  # a fixed time: every run reads the same status


def tool() -> list[str]:
    """How a user runs the tool: the console script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("valhalla-status")
    return [str(script)] if script.exists() else [sys.executable, "-m", "valhalla_status"]


def publish(folder: Path, env: dict[str, str]) -> Path:
    """A manifest of 16 packs and its site; the site's status.json."""
    manifest = folder / "manifest" / "valhalla.yaml"
    options = ["--manifest", str(manifest), "--site", str(folder / "site")]
    argv = [*tool(), *options, "init", "--by", "bench"]
    done = subprocess.run(argv, env=env, capture_output=True)
    if done.returncode:
        raise SystemExit(f"init failed:\n{done.stderr.decode()}")
    status = folder / "site" / "status.json"
    json.loads(status.read_text(encoding="utf-8"))  # there, and JSON
    return status


def commands(status: Path) -> dict[str, tuple[list[str], tuple[int, ...]]]:
    """Each case: its argv and the exit codes it may end with."""
    cases: dict[str, tuple[list[str], tuple[int, ...]]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], (0,)),
        "python -c 'import click, json'": ([sys.executable, "-c", "import click, json"], (0,)),
        "valhalla-status --help": ([*tool(), "--help"], (0,)),
        "valhalla-status check --file F": ([*tool(), "check", "--file", str(status)], (0, 1)),
    }
    jq = shutil.which("jq")
    if jq:
        cases["jq -e .backend_complete F"] = ([jq, "-e", ".backend_complete", str(status)], (0, 1))
    return cases


def once(argv: list[str], ok: tuple[int, ...], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31, help="runs of each command (default 31)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALHALLA_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: the warm-up run writes the .pyc
    env["SOURCE_DATE_EPOCH"] = EPOCH
    with tempfile.TemporaryDirectory(prefix="valhalla-startup-") as folder:
        env["VALHALLA_CACHE_DIR"] = os.path.join(folder, "cache")
        cases = commands(publish(Path(folder), env))
        times: dict[str, list[float]] = {name: [] for name in cases}
        for argv, ok in cases.values():  # one warm-up run each: the file cache, .pyc files
            once(argv, ok, env)
        for _ in range(args.runs):
            for name, (argv, ok) in cases.items():
                times[name].append(once(argv, ok, env))
    width = max(map(len, times))
    print(f"{'command':<{width}}  median   min      ({args.runs} runs each)")
    for name, values in times.items():
        median, low = statistics.median(values) * 1000, min(values) * 1000
        print(f"{name:<{width}}  {median:5.1f} ms {low:5.1f} ms")


if __name__ == "__main__":
    main()
