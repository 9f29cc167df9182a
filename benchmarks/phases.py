"""Where the time of one cold ``build`` goes, phase by phase, at 16, 1,000 and 10,000 packs.

    python benchmarks/phases.py                  # 7 cold processes per size
    python benchmarks/phases.py --runs 3 --packs 16

Each run is a new Python process that does what ``valhalla-status build`` does, timing each
step with ``time.perf_counter``: importing the libraries every Python tool of this kind needs
(click, PyYAML, Jinja2, pydantic: the "import floor"), pydantic's models (``BaseModel`` is
imported lazily, and the first model loads pydantic's plugin machinery), the project's own
modules, reading and validating the manifest, compiling the templates, rendering every file,
then writing them into a new folder beside the site, syncing it and swapping it in. The process
start itself is measured apart (``python -c pass``). Medians over the runs, in milliseconds.

The package's compiled bytecode is used, as in an installed copy (``PYTHONDONTWRITEBYTECODE`` is
dropped). Standard library plus the project; run it with the virtualenv's own interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import generate_manifest

# Runs in the child: prints one JSON object of phase -> seconds.
CHILD = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import click, yaml, jinja2, pydantic
mark("import floor (click, yaml, jinja2, pydantic)")
from pydantic import BaseModel
mark("pydantic's models (BaseModel)")
import valhalla_status.models
mark("the manifest models (and pydantic's plugin loader)")
import valhalla_status.cli, valhalla_status.manifest, valhalla_status.site
mark("the project's other modules")
from valhalla_status.manifest import load_manifest
from valhalla_status import site
manifest = load_manifest(sys.argv[1])
mark("read and validate the manifest")
env = site.environment(None)
for name in ("index.html", "404.html", "feed.xml", "badge.svg", "history.html", "_style.css"):
    env.get_template(name)
for name in env.list_templates():
    env.get_template(name)
mark("compile the templates")
files = site.render_site(manifest)
mark("render every file")
site.build_site(manifest, sys.argv[2])
mark("render again, write, sync and swap")
print(json.dumps({b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--packs", default="16,1000,10000", help="comma-separated pack counts")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        start = []
        for _ in range(args.runs):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            start.append(time.perf_counter() - began)
        print(f"python -c pass: {statistics.median(start) * 1000:.0f} ms (process start and exit)")
        for packs in (int(n) for n in args.packs.split(",")):
            manifest = root / f"m{packs}" / "valhalla.yaml"
            generate_manifest(manifest, packs)
            runs: list[dict[str, float]] = []
            walls = []
            for run in range(args.runs):
                site = root / f"site-{packs}-{run}"
                began = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, str(manifest), str(site)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                walls.append(time.perf_counter() - began)
                runs.append(json.loads(done.stdout))
            print(f"\n{packs:,} packs: whole process {statistics.median(walls) * 1000:.0f} ms")
            for phase in runs[0]:
                median = statistics.median(r[phase] for r in runs)
                print(f"  {median * 1000:7.1f} ms  {phase}")
            rest = statistics.median(w - sum(r.values()) for w, r in zip(walls, runs, strict=True))
            print(f"  {rest * 1000:7.1f} ms  the rest: process start, interpreter exit")


if __name__ == "__main__":
    main()
