"""Atomicity: a reader polling the site during rebuilds, and builds killed mid-way, only ever
see a whole old site or a whole new one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import Workspace, clean_env, small_manifest

from valhalla_status.manifest import parse_manifest
from valhalla_status.site import check_site, render_site

BUILDER = textwrap.dedent(
    """
    import sys
    from valhalla_status.manifest import load_manifest
    from valhalla_status.site import build_site

    first, second, site, rounds = sys.argv[1:]
    manifests = [load_manifest(second), load_manifest(first)]
    for n in range(int(rounds)):
        build_site(manifests[n % 2], site)
    """
)


def two_manifests(ws: Workspace) -> tuple[Path, Path]:
    """Two manifests whose sites differ in every page and in the pack files."""
    first = small_manifest()
    second = small_manifest()
    second["system"]["notes"] = "Second " * 200
    second["packs"].append({"id": "Z", "name": "Zeta", "group": "Zed", "status": "pending"})
    paths = (ws.root / "first.yaml", ws.root / "second.yaml")
    for path, data in zip(paths, (first, second), strict=True):
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return paths


def rendered(path: Path) -> dict[str, bytes]:
    return render_site(parse_manifest(path.read_text(encoding="utf-8")))


def builder(ws: Workspace, first: Path, second: Path, rounds: int) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-c",
        BUILDER,
        str(first),
        str(second),
        str(ws.root / "site"),
        str(rounds),
    ]
    return subprocess.Popen(args, cwd=ws.root, env=clean_env(), stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_reader_never_sees_a_partial_file_during_30_rebuilds(ws: Workspace) -> None:
    first, second = two_manifests(ws)
    versions = [rendered(first), rendered(second)]
    ws.manifest.parent.mkdir()
    ws.manifest.write_bytes(first.read_bytes())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    pages = {v["index.html"] for v in versions}
    statuses = {v["status.json"] for v in versions}
    seen: set[bytes] = set()
    reads = 0
    process = builder(ws, first, second, 30)
    while process.poll() is None:
        status = (site / "status.json").read_bytes()
        page = (site / "index.html").read_bytes()
        assert status in statuses
        assert page in pages
        json.loads(status)
        seen.add(status)
        reads += 1
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    assert reads > 0
    assert seen == statuses
    assert check_site(parse_manifest(first.read_text(encoding="utf-8")), site) == {}


def test_a_build_killed_at_any_moment_leaves_a_whole_site(ws: Workspace) -> None:
    first, second = two_manifests(ws)
    manifests = [parse_manifest(p.read_text(encoding="utf-8")) for p in (first, second)]
    ws.manifest.parent.mkdir()
    ws.manifest.write_bytes(first.read_bytes())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    for delay in (0.0, 0.02, 0.05, 0.08, 0.13, 0.21, 0.34):
        process = builder(ws, first, second, 1000)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert any(check_site(m, site) == {} for m in manifests), delay
    result = ws.run("build")
    assert result.exit_code == 0
    assert sorted(p.name for p in ws.root.iterdir() if p.name != ".site.lock") == [
        "first.yaml",
        "manifest",
        "second.yaml",
        "site",
    ]
    assert check_site(manifests[0], site) == {}
