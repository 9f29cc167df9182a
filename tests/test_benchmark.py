"""The benchmark script runs end to end (tiny sizes); its figures are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clean_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_script_runs_and_writes_its_results(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    options = ["--runs", "1", "--sizes", "16,50", "--output", str(output)]
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", *options],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text())
    assert [row["case"] for row in results["latency"]] == [
        "python -c pass (floor)",
        "import pydantic, yaml, jinja2, click (floor)",
        "pack set + rebuild (16 packs)",
        "show --json",
        "check --file site/status.json",
        "build, site up to date (16 packs)",
    ]
    assert all(row["median_s"] > 0 and row["runs"] == 1 for row in results["latency"])
    assert [row["packs"] for row in results["scaling"]] == [16, 50]
    assert results["index_html"]["gzip_bytes"] < results["index_html"]["raw_bytes"]
    assert "Cold-process latency" in result.stdout
