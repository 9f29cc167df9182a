"""Benchmarks of valhalla-status: start-up latency, build scaling, page size.

    python benchmarks/run.py                 # the full run (a few minutes)
    python benchmarks/run.py --quick         # tiny sizes and few runs (smoke test)

Prints a table and writes the figures as JSON (``--output``, default
benchmarks/results.json). Standard library plus the project; run it with the virtualenv's own
interpreter, since a shim in front of ``python3`` adds its own start-up time.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EPOCH = "1758326400"  # 2025-09-20T00:00:00Z: fixed, so every run writes the same bytes


def command_prefix() -> list[str]:
    """How a user runs the tool: the console script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("valhalla-status")
    return [str(script)] if script.exists() else [sys.executable, "-m", "valhalla_status"]


def run(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one cold run; a failing command stops the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{result.stderr}")
    return elapsed


def peak_rss_mib(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and peak resident memory (MiB) of one run, measured in a fresh parent."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "t = time.perf_counter() - t\n"
        "sys.exit(r.stderr.decode()[-2000:]) if r.returncode else None\n"
        "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *argv], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{result.stderr}")
    seconds, kib = result.stdout.split()
    return float(seconds), int(kib) / 1024


HEADER = [
    "# Valhalla status manifest: the source of truth for the platform's status.",
    "# Change it with `valhalla-status` (see README.md);",
    "# after a hand edit, run `valhalla-status fmt`.",
]
STATUSES = ("installed", "pending", "deprecated", "experimental")


def generate_manifest(path: Path, packs: int, layout: int = 1) -> None:
    """A valid manifest with ``packs`` packs, written as canonical text directly (fast).

    ``layout=1`` (the default) writes the one-file layout, which a copy of the file carries
    whole (the side-by-side benchmark copies just the file); ``layout=2`` writes the
    merge-friendly layout: the main file and its history folder ``<stem>.history/``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == 1:
        path.write_text("\n".join(_layout_1(packs)), encoding="utf-8")
        return
    entry = _init_entry(packs)
    name = f"20250920T000000Z-000000-{hashlib.sha256(entry.encode()).hexdigest()[:8]}.yaml"
    history = path.with_name(f"{path.stem}.history")
    history.mkdir(parents=True, exist_ok=True)
    for old in history.iterdir():
        old.unlink()
    (history / name).write_text(entry, encoding="utf-8")
    path.write_text("\n".join(_layout_2(packs)), encoding="utf-8")


def _pack(index: int) -> tuple[str, str, str, str]:
    return f"P{index}", f"Component {index}", f"Group {index % 20}", STATUSES[index % 7 % 4]


def _init_entry(packs: int) -> str:
    """The init entry that explains the main file: it records every pack it starts with (the
    history must say what the manifest holds)."""
    lines = ["at: '2025-09-20T00:00:00Z'", "by: benchmark", "action: init", "changes:"]
    for index in range(packs):
        pack_id, name, group, status = _pack(index)
        lines.append(
            f"  packs.{pack_id}: [null, {{id: {pack_id}, name: {name}, group: {group}, "
            f"status: {status}}}]"
        )
    if not packs:
        lines[-1] = "changes: {}"
    return "\n".join([*lines, "notes: null", ""])


def _layout_1(packs: int) -> list[str]:
    lines = [
        *HEADER,
        "schema_version: 1",
        "system:",
        "  name: Valhalla",
        "  description: Valhalla professional capital markets system",
        "  version: 1.0.0",
        "  backend_complete: false",
        "  notes: null",
        "  updated_at: '2025-09-20T00:00:00Z'",
        "  completed_at: null",
        "  extra: {}",
        "packs:",
    ]
    for index in range(packs):
        lines += [
            f"- id: P{index}",
            f"  name: Component {index}",
            f"  group: Group {index % 20}",
            f"  status: {STATUSES[index % 7 % 4]}",
        ]
    lines += [
        "history:",
        "- at: '2025-09-20T00:00:00Z'",
        "  by: benchmark",
        "  action: init",
        "  changes: {}",
        "  notes: null",
        "",
    ]
    return lines


def _layout_2(packs: int) -> list[str]:
    lines = [
        *HEADER,
        "schema_version: 2",
        "system:",
        "  name: Valhalla",
        "  version: 1.0.0",
        "  description: Valhalla professional capital markets system",
        "  backend_complete: false",
        "  completed_at: null",
        "  extra: {}",
        "  notes: null",
        "packs:",
    ]
    for index in range(packs):
        lines += [
            f"- id: P{index}",
            f"  status: {STATUSES[index % 7 % 4]}",
            f"  name: Component {index}",
            f"  group: Group {index % 20}",
        ]
    lines.append("")
    return lines


def latency(work: Path, env: dict[str, str], runs: int) -> list[dict[str, Any]]:
    """Cold-process latency of the common commands beside the two floors, runs alternating."""
    tool = command_prefix()
    statuses = ["pending", "installed"]
    cases: dict[str, Any] = {
        "python -c pass (floor)": lambda i: [sys.executable, "-c", "pass"],
        "import pydantic, yaml, jinja2, click (floor)": lambda i: [
            sys.executable,
            "-c",
            "import pydantic, yaml, jinja2, click",
        ],
        "pack set + rebuild (16 packs)": lambda i: [
            *tool,
            "pack",
            "set",
            "K",
            "--status",
            statuses[i % 2],
            "--by",
            "bench",
        ],
        "show --json": lambda i: [*tool, "show", "--json"],
        "check --file site/status.json": lambda i: [
            *tool,
            "check",
            "--file",
            "site/status.json",
        ],
        "build, site up to date (16 packs)": lambda i: [*tool, "build"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    ok = {"check --file site/status.json": (0, 1)}  # 1: not ready (backend in development)
    for i in range(2 + runs):  # the first two rounds warm the OS caches
        for name, argv in cases.items():
            elapsed = run(argv(i), work, env, ok.get(name, (0,)))
            if i >= 2:
                times[name].append(elapsed)
    floor_pass = statistics.median(times["python -c pass (floor)"])
    floor_import = statistics.median(times["import pydantic, yaml, jinja2, click (floor)"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(
            {
                "case": name,
                "median_s": round(median, 4),
                "vs_python": round(median / floor_pass, 2),
                "vs_import_floor": round(median / floor_import, 2),
                "runs": len(values),
            }
        )
    return rows


def median_run(
    argv: list[str] | Callable[[int], list[str]],
    cwd: Path,
    env: dict[str, str],
    runs: int,
    before: Callable[[int], None],
) -> float:
    """Median wall time of ``runs`` runs of ``argv``; ``before(i)`` prepares run ``i``."""
    times = []
    for i in range(runs):
        before(i)
        times.append(run(argv(i) if callable(argv) else argv, cwd, env))
    return statistics.median(times)


def scaling(root: Path, env: dict[str, str], sizes: list[int], runs: int) -> list[dict[str, Any]]:
    """Per pack count, medians of ``runs`` cold runs: validate; a full build into a new folder
    (and its peak memory); ``pack set`` of one pack with the rebuild it makes; a build with
    nothing to do. The manifest is the current layout (one history file)."""
    tool = command_prefix()
    statuses = ("pending", "installed")  # P0 starts installed: every run changes it
    rows = []
    for size in sizes:
        work = root / f"n{size}"
        manifest = work / "manifest" / "valhalla.yaml"
        generate_manifest(manifest, size, layout=2)
        site = work / "site"

        def fresh(_i: int, site: Path = site) -> None:
            shutil.rmtree(site, ignore_errors=True)

        def nothing(_i: int) -> None:
            pass

        validate_s = median_run([*tool, "validate"], work, env, runs, nothing)
        full_s = median_run([*tool, "build"], work, env, runs, fresh)
        fresh(0)
        _, full_mib = peak_rss_mib([*tool, "build"], work, env)

        def change(i: int) -> list[str]:
            return [*tool, "pack", "set", "P0", "--status", statuses[i % 2], "--by", "bench"]

        changed_s = median_run(change, work, env, runs, nothing)
        unchanged_s = median_run([*tool, "build"], work, env, runs, nothing)
        files = sum(1 for path in site.rglob("*") if path.is_file())
        rows.append(
            {
                "packs": size,
                "site_files": files,
                "manifest_mib": round(manifest.stat().st_size / 2**20, 2),
                "validate_s": round(validate_s, 3),
                "full_build_s": round(full_s, 3),
                "full_build_peak_mib": round(full_mib, 1),
                "pack_set_rebuild_s": round(changed_s, 3),
                "unchanged_build_s": round(unchanged_s, 3),
            }
        )
    return rows


def page_size(work: Path) -> dict[str, int]:
    page = (work / "site" / "index.html").read_bytes()
    return {"raw_bytes": len(page), "gzip_bytes": len(gzip.compress(page, compresslevel=9))}


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    heads = list(rows[0])
    cells = [[str(row[h]) for h in heads] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few runs")
    parser.add_argument("--runs", type=int, default=None, help="runs per case (medians)")
    parser.add_argument("--sizes", default=None, help="comma-separated pack counts")
    parser.add_argument("--output", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 15)
    sizes = [
        int(s) for s in (args.sizes or ("16,200" if args.quick else "16,1000,10000")).split(",")
    ]

    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "VALHALLA_MANIFEST": "manifest/valhalla.yaml"}
    env.pop("VALHALLA_SITE", None)
    with tempfile.TemporaryDirectory(prefix="valhalla-bench-") as tmp:
        root = Path(tmp)
        work = root / "latency"
        work.mkdir()
        run([*command_prefix(), "init", "--by", "bench"], work, env)
        latency_rows = latency(work, env, runs)
        size = page_size(work)
        scaling_rows = scaling(root, env, sizes, min(runs, 5))

    machine = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
    }
    results = {
        "machine": machine,
        "latency": latency_rows,
        "scaling": scaling_rows,
        "index_html": size,
    }
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"Machine: {machine['system']}, {machine['cpus']} CPUs, Python {machine['python']}")
    print("\nCold-process latency (median of alternating runs):\n")
    print(table(latency_rows))
    print("\nBuild and validate by pack count (medians of cold runs):\n")
    print(table(scaling_rows))
    print(
        f"\nindex.html (16 packs): {size['raw_bytes']:,} bytes raw, "
        f"{size['gzip_bytes']:,} bytes gzipped"
    )
    print(f"\nResults written to {args.output}")


if __name__ == "__main__":
    main()
