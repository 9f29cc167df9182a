"""Parallel writers on a schema_version 2 manifest: none lost, and a reader without the lock
never sees a change without its history entry, or an entry without its change."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import clean_env, entry_files, other_files, tool_command
from test_concurrency import base_manifest, environment

from valhalla_status.manifest import load_manifest, write_manifest
from valhalla_status.models import Manifest
from valhalla_status.rules.changes import pack_record
from valhalla_status.storage.layout import history_dir

WORKERS = 16


def layout_2_manifest(packs: int) -> Manifest:
    """``base_manifest(packs)`` as schema_version 2, its init entry recording what the manifest
    holds (an init with changes starts from them, not from the default packs), so that the
    history explains the main file."""
    manifest = base_manifest(packs)
    changes = {
        "description": [None, manifest.system.description],
        **{f"packs.{pack.id}": [None, pack_record(pack)] for pack in manifest.packs},
    }
    init = manifest.history[0].model_copy(update={"changes": changes})
    return manifest.model_copy(update={"schema_version": 2, "history": [init]})


@pytest.mark.slow
def test_parallel_changes_lose_nothing_and_readers_see_each_change_with_its_entry(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "manifest" / "valhalla.yaml"
    manifest.parent.mkdir()
    write_manifest(manifest, layout_2_manifest(WORKERS))
    env = environment(VALHALLA_LOCK_TIMEOUT="120")
    processes = [
        subprocess.Popen(
            tool_command(manifest, tmp_path / "site", "pack", "set", f"p{i:02d}", "--status",
                         "pending", "--by", f"worker-{i}", "--no-build"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]  # fmt: skip
    reads = 0
    while any(process.poll() is None for process in processes):
        read = load_manifest(manifest)
        pending = sum(p.status == "pending" for p in read.packs)
        assert len(read.history) == 1 + pending, "a change and its entry: both or neither"
        assert read.system.updated_at == read.history[-1].at
        reads += 1
        time.sleep(0.005)
    print(f"\nconcurrency/layout: {WORKERS} writers, {reads} reads without the lock")
    for i, process in enumerate(processes):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"worker {i}: {err}"
    final = load_manifest(manifest)
    assert [p.status for p in final.packs] == ["pending"] * WORKERS
    assert sorted(e.by for e in final.history[1:]) == sorted(f"worker-{i}" for i in range(WORKERS))
    names = list(entry_files(history_dir(manifest)))
    assert len(names) == WORKERS + 1
    assert other_files(history_dir(manifest)) == []
    seqs = sorted(int(n.split("-")[1]) for n in names)
    assert seqs == list(range(WORKERS + 1)), "each writer saw every earlier entry"


@pytest.mark.slow
def test_a_queue_of_parallel_writers_all_get_through_with_the_default_lock_timeout(
    tmp_path: Path,
) -> None:
    """Eight writers at once, each rebuilding the site, with no VALHALLA_LOCK_TIMEOUT: each
    waits its turn (saying whom it waits for when that takes over a second), none gives up."""
    manifest = tmp_path / "manifest" / "valhalla.yaml"
    manifest.parent.mkdir()
    write_manifest(manifest, layout_2_manifest(8))
    site = tmp_path / "site"
    processes = [
        subprocess.Popen(
            tool_command(manifest, site, "pack", "set", f"P{i:02d}", "--status", "pending",
                         "--by", f"worker-{i}"),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]  # fmt: skip
    waiting = re.compile(
        r"waiting for the lock on .+, held by "
        r"(pid \d+ \(valhalla-status pack set P0[0-7]\)|another valhalla-status process); "
        r"giving up after 60 s"
    )
    for i, process in enumerate(processes):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"worker {i}: {err}"
        *waits, said = err.splitlines()
        assert said == f"Pack P{i:02d}: installed → pending"
        assert len(waits) <= 1, err
        assert all(waiting.fullmatch(line) for line in waits), err
    final = load_manifest(manifest)
    assert [p.status for p in final.packs] == ["pending"] * 8
    assert sorted(e.by for e in final.history[1:]) == [f"worker-{i}" for i in range(8)]
    assert len(entry_files(history_dir(manifest))) == 9
    assert other_files(history_dir(manifest)) == []
    check = subprocess.run(
        tool_command(manifest, site, "build", "--check"),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (check.returncode, check.stderr) == (0, f"{site}: up to date\n")
