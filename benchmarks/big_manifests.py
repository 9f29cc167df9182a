"""How fast, and in how much memory, huge and broken manifests are read or refused.

    python benchmarks/big_manifests.py            # 100,000 packs, and a 32 MiB file
    python benchmarks/big_manifests.py --quick    # 10,000 packs, and a 4 MiB file

Each case runs ``valhalla-status validate`` in a fresh process and reports its wall time and
peak resident memory:

- ``valid``: a valid manifest at the pack limit (100,000 packs);
- ``typo-key`` / ``typo-value``: the same with one misspelt key (``statuss``) or value
  (``instaled``) in the middle; the error should cost about what loading costs;
- ``over-limit``: a file just under the 32 MiB size limit, holding about 647,000 packs; refused
  (over the pack limit) without reading it all.

Standard library plus the project; run it with the virtualenv's own interpreter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = """schema_version: 1
system:
  name: Valhalla
  description: Benchmark system
  version: 1.0.0
  backend_complete: false
  notes: null
  updated_at: '2025-09-20T00:00:00Z'
  completed_at: null
  extra: {}
packs:
"""
HISTORY = """history:
- at: '2025-09-20T00:00:00Z'
  by: bench
  action: init
  changes: {}
  notes: null
"""
MAX_BYTES = 32 * 1024 * 1024


def pack(index: int, key: str = "status", value: str = "installed") -> str:
    return f"- id: P{index:06d}\n  name: Pack {index}\n  group: G\n  {key}: {value}\n"


def manifest_text(packs: int, typo: str | None = None) -> str:
    lines = [HEADER]
    middle = packs // 2
    for index in range(packs):
        if index == middle and typo == "key":
            lines.append(pack(index, key="statuss"))
        elif index == middle and typo == "value":
            lines.append(pack(index, value="instaled"))
        else:
            lines.append(pack(index))
    lines.append(HISTORY)
    return "".join(lines)


def filling(limit: int) -> str:
    """As many packs as fit under ``limit`` bytes."""
    size = len(HEADER) + len(HISTORY)
    index = 0
    parts = [HEADER]
    while True:
        text = pack(index)
        if size + len(text) > limit:
            break
        parts.append(text)
        size += len(text)
        index += 1
    parts.append(HISTORY)
    return "".join(parts)


def measure(manifest: Path) -> tuple[float, float, int, str]:
    """Wall time (s), peak memory (MiB), exit code and last stderr line of ``validate``."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "t = time.perf_counter() - t\n"
        "kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "last = (r.stderr.strip().splitlines() or [''])[-1]\n"
        "print(t, kib, r.returncode, last[:150], sep='\\t')\n"
    )
    argv = [sys.executable, "-m", "valhalla_status", "--manifest", str(manifest), "validate"]
    result = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True
    )
    seconds, kib, code, last = result.stdout.rstrip("\n").split("\t")
    return float(seconds), int(kib) / 1024, int(code), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args()
    packs = 10_000 if args.quick else 100_000
    limit = 4 * 1024 * 1024 if args.quick else MAX_BYTES - 1
    with tempfile.TemporaryDirectory() as folder:
        cases = {
            "valid": manifest_text(packs),
            "typo-key": manifest_text(packs, "key"),
            "typo-value": manifest_text(packs, "value"),
            "over-limit": filling(limit),
        }
        print(f"{'case':<12}{'packs':>9}{'MiB':>7}{'seconds':>9}{'peak MiB':>10}  exit  message")
        for name, text in cases.items():
            path = Path(folder) / f"{name}.yaml"
            path.write_text(text, encoding="utf-8")
            count = text.count("\n- id: ")
            seconds, peak, code, last = measure(path)
            size = len(text.encode()) / 2**20
            shown = last.replace(str(path), name + ".yaml")
            figures = f"{count:>9,}{size:>7.1f}{seconds:>9.2f}{peak:>10.0f}  {code:>4}"
            print(f"{name:<12}{figures}  {shown}")


if __name__ == "__main__":
    main()
