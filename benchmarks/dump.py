"""How long writing a manifest's canonical text takes, with the fast path and without it.

    python benchmarks/dump.py                          # 10,000 packs, both layouts
    python benchmarks/dump.py --packs 1000 --runs 5
    python benchmarks/dump.py --checkouts /old/checkout .   # also `pack set` + rebuild, cold

In process: ``dump_manifest`` (packs written directly where PyYAML would write them as they
are) against one PyYAML call over the whole document, the way every dump was written before;
the two must give the same bytes. With ``--checkouts``: a cold ``valhalla-status pack set P0
--status ...`` (which writes the manifest and rebuilds the site) with each checkout's code on
``PYTHONPATH``, the checkouts taking turns run by run. Medians; run it with the virtualenv's
own interpreter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import EPOCH, generate_manifest

from valhalla_status import canonical
from valhalla_status.manifest import load_manifest


def median_s(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(root: Path, packs: int, runs: int) -> None:
    print(f"dump_manifest, {packs:,} packs, median of {runs}:")
    for layout in (1, 2):
        path = root / f"layout{layout}" / "valhalla.yaml"
        generate_manifest(path, packs, layout=layout)
        manifest = load_manifest(path)
        fast = canonical.dump_manifest(manifest)
        if fast != canonical.pyyaml_dump(manifest) or fast != path.read_text(encoding="utf-8"):
            raise SystemExit(f"layout {layout}: the fast path's text differs")
        before = median_s(lambda m=manifest: canonical.pyyaml_dump(m), runs)
        after = median_s(lambda m=manifest: canonical.dump_manifest(m), runs)
        print(
            f"  layout {layout}: one PyYAML call {before:.3f} s, fast path {after:.3f} s "
            f"({before / after:.1f}x)"
        )


def cold_pack_set(root: Path, packs: int, runs: int, checkouts: list[str]) -> None:
    work = root / "cli"
    generate_manifest(work / "manifest" / "valhalla.yaml", packs, layout=2)
    tool = [sys.executable, "-m", "valhalla_status", "--manifest", "manifest/valhalla.yaml"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    env.pop("VALHALLA_SITE", None)
    subprocess.run([*tool, "build"], cwd=work, env=env, check=True, capture_output=True)
    times: dict[str, list[float]] = {checkout: [] for checkout in checkouts}
    statuses = ("pending", "installed")  # P0 starts installed: every run changes it
    count = 0
    for i in range(1 + runs):  # the first round warms the OS caches
        for checkout in checkouts:
            env["PYTHONPATH"] = str(Path(checkout).resolve())
            argv = [*tool, "pack", "set", "P0", "--status", statuses[count % 2], "--by", "bench"]
            count += 1
            start = time.perf_counter()
            result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(f"{checkout}: {result.stderr}")
            if i:
                times[checkout].append(elapsed)
    print(f"`pack set P0` + rebuild, {packs:,} packs, cold, median of {runs}:")
    for checkout, values in times.items():
        every = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {checkout}: {statistics.median(values):.3f} s  ({every})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--checkouts", nargs="*", default=[], help="code to time `pack set` with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        in_process(Path(folder), args.packs, args.runs)
        if args.checkouts:
            cold_pack_set(Path(folder), args.packs, args.runs, args.checkouts)


if __name__ == "__main__":
    main()
