"""Concurrency: no lost update, no stuck lock, no hang.

Every test here runs real ``python -m valhalla_status`` processes against real files: the
guarantee is about processes racing for one manifest, so threads or mocks would prove nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import holding_lock, tool_command

from valhalla_status.manifest import load_manifest, lock_path, write_manifest
from valhalla_status.models import Manifest

WORKERS = 32


def base_manifest(packs: int) -> Manifest:
    """A valid manifest with ``packs`` installed packs (P00 … P31), built from a dict."""
    return Manifest.model_validate(
        {
            "schema_version": 1,
            "system": {
                "name": "Valhalla",
                "description": "Concurrency test system",
                "version": "1.0.0",
                "backend_complete": False,
                "notes": None,
                "updated_at": "2025-01-01T00:00:00Z",
                "completed_at": None,
                "extra": {},
            },
            "packs": [
                {"id": f"P{i:02d}", "name": f"Pack {i}", "group": "Test", "status": "installed"}
                for i in range(packs)
            ],
            "history": [
                {
                    "at": "2025-01-01T00:00:00Z",
                    "by": "setup",
                    "action": "init",
                    "changes": {},
                    "notes": None,
                }
            ],
        }
    )


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)
    env.update(extra)
    return env


def run_workers(tmp_path: Path, *, build: bool) -> tuple[Path, Path, list[Any]]:
    """Start WORKERS processes at once, each setting a different pack to pending."""
    manifest = tmp_path / "manifest" / "valhalla.yaml"
    manifest.parent.mkdir()
    site = tmp_path / "site"
    write_manifest(manifest, base_manifest(WORKERS))
    extra = [] if build else ["--no-build"]
    # A generous lock timeout: 32 queued writers on a 2-core CI machine must all get their turn.
    env = environment(VALHALLA_LOCK_TIMEOUT="120")
    processes = [
        subprocess.Popen(
            tool_command(manifest, site, "pack", "set", f"p{i:02d}", "--status", "pending",
                "--by", f"worker-{i}", *extra),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]  # fmt: skip
    # Meanwhile, a reader: every read of the manifest (and of status.json) is whole and valid,
    # and the number of pending packs it shows never goes back.
    reads = {"manifest": 0, "status.json": 0}
    seen = {"manifest": 0, "status.json": 0}
    while any(process.poll() is None for process in processes):
        pending = sum(p.status == "pending" for p in load_manifest(manifest).packs)
        assert pending >= seen["manifest"]
        seen["manifest"] = pending
        reads["manifest"] += 1
        if build and (site / "status.json").exists():
            status = json.loads((site / "status.json").read_text(encoding="utf-8"))
            pending = status["summary"]["pending_packs"]
            assert pending >= seen["status.json"]
            seen["status.json"] = pending
            reads["status.json"] += 1
        time.sleep(0.01)
    print(f"\nconcurrency: {WORKERS} processes (build={build}); concurrent reads: {reads}")
    results = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        results.append((process.returncode, out, err))
    return manifest, site, results


def check_no_lost_update(manifest_path: Path, results: list[Any]) -> Manifest:
    for i, (code, out, err) in enumerate(results):
        assert code == 0, f"worker {i} exited {code}: {err}"
        assert out == "", f"worker {i} printed on stdout: {out!r}"
        assert f"Pack P{i:02d}: installed → pending" in err
    manifest = load_manifest(manifest_path)  # validates: raises if the file is not valid
    assert [p.status for p in manifest.packs] == ["pending"] * WORKERS
    entries = manifest.history[1:]
    assert len(entries) == WORKERS, "one history entry per process, none lost, none doubled"
    seen = {}
    for entry in entries:
        assert entry.action == "pack-set"
        assert len(entry.changes) == 1
        (field, change), = entry.changes.items()  # fmt: skip
        assert change == ["installed", "pending"]
        seen[entry.by] = field
    assert seen == {f"worker-{i}": f"packs.P{i:02d}.status" for i in range(WORKERS)}
    stamps = [entry.at for entry in manifest.history]
    assert stamps == sorted(stamps), "entries are appended in the order the writes happened"
    assert manifest.system.updated_at == manifest.history[-1].at
    return manifest


@pytest.mark.slow
def test_parallel_mutations_without_build_lose_nothing(tmp_path: Path) -> None:
    manifest, _site, results = run_workers(tmp_path, build=False)
    check_no_lost_update(manifest, results)
    leftovers = [p.name for p in manifest.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


@pytest.mark.slow
def test_killed_lock_holder_does_not_block_the_next_writer(tmp_path: Path) -> None:
    manifest = tmp_path / "valhalla.yaml"
    write_manifest(manifest, base_manifest(2))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from valhalla_status.manifest import manifest_lock\n"
            "with manifest_lock(sys.argv[1]):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(600)\n",
            str(manifest),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        # While the holder lives, the lock really is held: a writer times out.
        blocked = subprocess.run(
            tool_command(manifest, tmp_path / "site", "pack", "set", "P00", "--status", "pending",
                "--no-build", "--by", "t"),
            env=environment(VALHALLA_LOCK_TIMEOUT="0.5"),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert blocked.returncode == 1, blocked.stderr
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert lock_path(manifest).exists(), "the killed holder leaves its lock file behind"
    result = subprocess.run(
        tool_command(manifest, tmp_path / "site", "pack", "set", "P00", "--status", "pending",
            "--no-build", "--by", "t"),
        env=environment(VALHALLA_LOCK_TIMEOUT="30"),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert load_manifest(manifest).packs[0].status == "pending"


@pytest.mark.slow
def test_lock_timeout_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    manifest = tmp_path / "valhalla.yaml"
    write_manifest(manifest, base_manifest(2))
    before = manifest.read_bytes()
    with holding_lock(lock_path(manifest)):
        result = subprocess.run(
            tool_command(manifest, tmp_path / "site", "pack", "set", "P01", "--status", "pending",
                "--by", "t"),
            env=environment(VALHALLA_LOCK_TIMEOUT="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        f"error: {manifest} is locked by another valhalla-status process (waited 1 s); try again"
    ]
    assert manifest.read_bytes() == before
    assert not (tmp_path / "site").exists(), "nothing is built when the change was not made"


@pytest.mark.slow
def test_parallel_mutations_with_rebuild_leave_the_site_matching_the_manifest(
    tmp_path: Path,
) -> None:
    from valhalla_status.site import check_site

    manifest_path, site, results = run_workers(tmp_path, build=True)
    final = check_no_lost_update(manifest_path, results)
    assert check_site(final, site) == {}, "the site is not the build of the final manifest"
    status = json.loads((site / "status.json").read_text(encoding="utf-8"))
    assert [p["status"] for p in status["packs"]] == ["pending"] * WORKERS
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.valhalla-")]
    assert leftovers == [], "no staging or old folders left beside the site"


@pytest.mark.slow
def test_parallel_mixed_commands_lose_nothing(tmp_path: Path) -> None:
    """Adds, removes, renames and notes at once: the pack list itself changes shape."""
    manifest = tmp_path / "valhalla.yaml"
    write_manifest(manifest, base_manifest(16))
    commands = []
    for i in range(8):
        commands.append(("pack", "add", f"n{i}", "--name", f"New {i}", "--group", "G"))
        commands.append(("pack", "remove", f"P{i:02d}"))
        commands.append(("pack", "set", f"P{i + 8:02d}", "--name", f"Renamed {i}"))
        commands.append(("set-notes", f"Notes from writer {i}"))
    env = environment(VALHALLA_LOCK_TIMEOUT="120")
    processes = [
        subprocess.Popen(
            tool_command(manifest, tmp_path / "site", *args, "--no-build", "--by", f"w{n}"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, args in enumerate(commands)
    ]
    for process in processes:
        _out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    final = load_manifest(manifest)
    entries = final.history[1:]
    added = [
        next(iter(e.changes)).removeprefix("packs.") for e in entries if e.action == "pack-add"
    ]
    assert sorted(added) == [f"N{i}" for i in range(8)]
    assert [p.id for p in final.packs] == [f"P{i:02d}" for i in range(8, 16)] + added
    assert [p.name for p in final.packs[:8]] == [f"Renamed {i}" for i in range(8)]
    assert sorted(e.by for e in entries) == sorted(f"w{n}" for n in range(len(commands)))
    actions = {f"w{n}": args[0] if args[0] != "pack" else f"pack-{args[1]}"
               for n, args in enumerate(commands)}  # fmt: skip
    assert all(e.action == actions[e.by] for e in entries)
    last_notes = [e for e in entries if e.action == "set-notes"][-1]
    assert final.system.notes == last_notes.notes
    assert final.system.updated_at == entries[-1].at


@pytest.mark.slow
def test_a_cli_process_killed_while_holding_the_lock_does_not_block(tmp_path: Path) -> None:
    """The same with a real mutation: caught holding the lock (a non-blocking flock probe from
    this process fails), killed, and the next mutation goes through."""
    import fcntl

    manifest = tmp_path / "valhalla.yaml"
    big = base_manifest(3000)  # the lock is held while 3,000 packs are parsed and written
    write_manifest(manifest, big)
    before = load_manifest(manifest)
    writer = subprocess.Popen(
        tool_command(manifest, tmp_path / "site", "pack", "set", "P01", "--status", "pending",
            "--no-build", "--by", "killed"),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    caught = False
    try:
        while writer.poll() is None and not caught:
            try:
                handle = open(lock_path(manifest), "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    caught = True
                    writer.kill()
    finally:
        writer.kill()
        writer.wait(timeout=60)
    if caught:
        assert writer.returncode == -signal.SIGKILL
    result = subprocess.run(
        tool_command(manifest, tmp_path / "site", "pack", "set", "P02", "--status", "pending",
            "--no-build", "--by", "next"),
        env=environment(VALHALLA_LOCK_TIMEOUT="30"),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    after = load_manifest(manifest)
    assert after.pack("P02").status == "pending"  # type: ignore[union-attr]
    assert after.history[-1].by == "next"
    assert len(after.history) - len(before.history) in (1, 2)  # 2 if the killed one had written
    assert caught, "the writer was never seen holding the lock"
