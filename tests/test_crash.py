"""Crash safety: a write killed at any moment, or failing, corrupts nothing.

The kill tests start real ``python -m valhalla_status`` processes and ``SIGKILL`` them at moments
spread over their whole run (start-up, parse, dump, write, replace, exit). Afterwards the
manifest must be byte-for-byte the old file or the new one: ``SOURCE_DATE_EPOCH`` pins the clock,
so the new file is known exactly. ``VALHALLA_CRASH_TRIALS`` raises the number of trials.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import tool_command

from valhalla_status import service
from valhalla_status.errors import ValhallaError
from valhalla_status.manifest import load_manifest, write_manifest
from valhalla_status.models import Manifest
from valhalla_status.publishing.sitefolder import SITE_MARK, SITE_MARK_BYTES

TRIALS = int(os.environ.get("VALHALLA_CRASH_TRIALS", "50"))
MUTATION_PACKS = 5_000  # ~370 KB of YAML: parsing, dumping and writing take most of the run
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z


def big_manifest(packs: int) -> Manifest:
    return Manifest.model_validate(
        {
            "schema_version": 1,
            "system": {
                "name": "Valhalla",
                "description": "Crash test system",
                "version": "1.0.0",
                "backend_complete": False,
                "notes": "Crash <test> & notes",
                "updated_at": "2025-01-01T00:00:00Z",
                "completed_at": None,
                "extra": {"owner": "crash-test"},
            },
            "packs": [
                {
                    "id": f"P{i:05d}",
                    "name": f"Pack number {i}",
                    "group": f"Group {i % 7}",
                    "status": "installed",
                }
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


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = EPOCH
    env["VALHALLA_LOCK_TIMEOUT"] = "60"
    return env


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def kill_at(args: list[str], delay: float) -> int:
    """Start ``args``, SIGKILL it after ``delay`` seconds (if still running); its exit code."""
    process = subprocess.Popen(
        args, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.kill()  # SIGKILL; a no-op once the process was reaped
    return process.wait(timeout=120)


def kill_when_writing(args: list[str], folder: Path, delay: float) -> bool:
    """Start ``args``; the moment its temp file appears (+ ``delay`` s), SIGKILL it.

    True when the process was caught mid-write (it may finish first on a fast disk).
    """
    before = set(temp_files(folder))  # a killed writer's leftover is not this one's temp file
    process = subprocess.Popen(
        args, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    caught = False
    while process.poll() is None:
        if set(temp_files(folder)) - before:
            if delay:
                time.sleep(delay)
            caught = process.poll() is None
            process.kill()  # SIGKILL; a no-op once the process was reaped
            break
        time.sleep(0.0001)
    process.wait(timeout=120)
    return caught


def kill_moments(duration: float, trials: int, seed: int, stretch: float = 1.25) -> list[float]:
    """One random moment in each of ``trials`` equal slices of [0, stretch × duration]."""
    rng = random.Random(seed)
    span = duration * stretch
    return [span * (i + rng.random()) / trials for i in range(trials)]


@pytest.mark.slow
def test_mutation_killed_at_random_moments_leaves_old_or_new(tmp_path: Path) -> None:
    folder = tmp_path / "manifest"
    folder.mkdir()
    manifest = folder / "valhalla.yaml"
    site = tmp_path / "site"
    write_manifest(manifest, big_manifest(MUTATION_PACKS))
    old = manifest.read_bytes()
    mutate = tool_command(manifest, site, "pack", "set", "P04999", "--status", "pending",
                     "--no-build", "--by", "crash")  # fmt: skip

    started = time.monotonic()
    reference = subprocess.run(mutate, env=environment(), capture_output=True, text=True)
    duration = time.monotonic() - started  # only to choose kill moments, never asserted
    assert reference.returncode == 0, reference.stderr
    new = manifest.read_bytes()
    assert new != old
    # Both are valid, by the checks every load makes; after each kill the file must be one of
    # these exact byte strings, so it is valid too.
    assert load_manifest(manifest).pack("P04999").status == "pending"  # type: ignore[union-attr]
    manifest.write_bytes(old)
    assert load_manifest(manifest).pack("P04999").status == "installed"  # type: ignore[union-attr]

    outcomes: dict[str, int] = {"old": 0, "new": 0}
    killed_mid_write = 0
    for delay in kill_moments(duration, TRIALS, seed=5):
        manifest.write_bytes(old)
        before = set(temp_files(folder))
        kill_at(mutate, delay)
        after = manifest.read_bytes()
        assert after in (old, new), f"torn manifest after a kill at {delay:.3f} s"
        outcomes["old" if after == old else "new"] += 1
        if set(temp_files(folder)) - before:
            killed_mid_write += 1
        assert len(temp_files(folder)) <= 1, "temp files pile up"

    # Early kills always land before the replace; how many land after it depends on the load
    # (reported below, not asserted: the guarantee is "old or new", whichever it is).
    assert outcomes["old"] > 0

    # Then kills aimed at the write itself: the moment the temp file appears (+ 0–2 ms).
    rng = random.Random(55)
    caught = 0
    aimed = max(TRIALS // 5, 1)
    for _ in range(aimed):
        manifest.write_bytes(old)
        before = set(temp_files(folder))
        if kill_when_writing(mutate, folder, rng.choice([0, 0, 0.0005, 0.001, 0.002])):
            caught += 1
        if set(temp_files(folder)) - before:
            killed_mid_write += 1  # its temp file is still there: killed before the replace
        after = manifest.read_bytes()
        assert after in (old, new), "torn manifest after a kill during the write"
        outcomes["old" if after == old else "new"] += 1
        assert len(temp_files(folder)) <= 1, "temp files pile up"
    leftovers = temp_files(folder)
    print(
        f"\ncrash/mutation: {TRIALS} kills at random moments over {duration * 1.25:.2f} s "
        f"+ {aimed} aimed at the write; {MUTATION_PACKS} packs ({len(old):,} bytes): "
        f"{outcomes['old']} old, {outcomes['new']} new; {killed_mid_write} killed mid-write "
        f"(temp file written, not yet replaced); {caught}/{aimed} aimed kills landed after the "
        f"temp file appeared; {len(leftovers)} temp files left before the next write"
    )
    assert caught > 0, "no kill landed while the temp file existed"

    # The next write removes what killed writers left behind.
    manifest.write_bytes(old)
    done = subprocess.run(
        tool_command(manifest, site, "pack", "set", "P00001", "--status", "pending", "--no-build"),
        env=environment(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert temp_files(folder) == []
    assert load_manifest(manifest).pack("P00001").status == "pending"  # type: ignore[union-attr]


def test_temp_files_of_killed_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    """Deterministic companion of the random kills: planted leftovers go on the next write."""
    manifest = tmp_path / "valhalla.yaml"
    write_manifest(manifest, big_manifest(3))
    planted = [tmp_path / f".valhalla.yaml.tmp-{pid}-deadbeef" for pid in (11, 12, 13)]
    for path in planted:
        path.write_bytes(b"schema_version: 1\nsystem: {half a fi")
    unrelated = tmp_path / "notes.tmp-keep"
    unrelated.write_text("not ours")
    result = subprocess.run(
        tool_command(manifest, tmp_path / "site", "pack", "set", "P00002", "--status", "pending",
                "--no-build", "--by", "t"),
        env=environment(),
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [p for p in planted if p.exists()] == []
    assert unrelated.read_text() == "not ours"


def _failing(name: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)

    return fail


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_failing_write_leaves_manifest_unchanged_and_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    manifest = tmp_path / "valhalla.yaml"
    write_manifest(manifest, big_manifest(5))
    before = manifest.read_bytes()
    monkeypatch.setattr(os, call, _failing(call))
    with pytest.raises(ValhallaError) as caught:
        service.set_pack(manifest, "P00003", status="pending", by="t")
    monkeypatch.undo()
    assert caught.value.format_message() == (
        f"error: cannot write {manifest}: No space left on device"
    )
    assert manifest.read_bytes() == before
    assert temp_files(tmp_path) == []
    # And the next attempt, with space again, succeeds.
    service.set_pack(manifest, "P00003", status="pending", by="t")
    assert load_manifest(manifest).pack("P00003").status == "pending"  # type: ignore[union-attr]


def test_failing_write_through_the_cli_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from valhalla_status.cli import main

    manifest = tmp_path / "valhalla.yaml"
    write_manifest(manifest, big_manifest(5))
    before = manifest.read_bytes()
    monkeypatch.setattr(os, "fsync", _failing("fsync"))
    result = CliRunner().invoke(
        main,
        ["--manifest", str(manifest), "pack", "set", "P00001", "--status", "pending",
         "--no-build", "--by", "t"],
    )  # fmt: skip
    monkeypatch.undo()
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output.strip() == f"error: cannot write {manifest}: No space left on device"
    assert manifest.read_bytes() == before
    assert temp_files(tmp_path) == []


BUILD_PACKS = 400  # ~800 files: rendering, writing, syncing and swapping take ~0.4 s


def site_state(site: Path, trees: dict[str, dict[str, bytes]]) -> str | None:
    """Which of ``trees`` the folder holds exactly (file list and bytes, and the build's mark),
    or None."""
    present = {
        str(p.relative_to(site)).replace(os.sep, "/") for p in site.rglob("*") if p.is_file()
    }
    for name, rendered in trees.items():
        files = {SITE_MARK: SITE_MARK_BYTES, **rendered}
        if present == files.keys() and all((site / k).read_bytes() == v for k, v in files.items()):
            return name
    return None


def beside_site(site: Path) -> list[str]:
    """The build's scratch folders beside the site."""
    prefix = f".{site.name}.valhalla-"
    return sorted(p.name for p in site.parent.iterdir() if p.name.startswith(prefix))


def kill_when_staging(args: list[str], site: Path, delay: float) -> bool:
    """Start a build; once its staging folder appears (+ ``delay`` s), SIGKILL it."""
    before = set(beside_site(site))  # a killed build's leftover is not this one's folder
    process = subprocess.Popen(
        args, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    caught = False
    while process.poll() is None:
        if any("-staging-" in name for name in set(beside_site(site)) - before):
            if delay:
                time.sleep(delay)
            caught = process.poll() is None
            process.kill()  # a no-op if the build already finished and was reaped
            break
        time.sleep(0.0005)
    process.wait(timeout=120)
    return caught


@pytest.mark.slow
def test_build_killed_at_random_moments_leaves_a_whole_site(tmp_path: Path) -> None:
    from valhalla_status.site import render_site

    manifest = tmp_path / "valhalla.yaml"
    site = tmp_path / "site"
    old_manifest = big_manifest(BUILD_PACKS)
    # The new state differs in the page, every summary and two pack files, and drops a pack.
    new_manifest = old_manifest.model_copy(
        update={
            "packs": [
                p.model_copy(update={"status": "pending"}) if p.id in ("P00001", "P00500") else p
                for p in old_manifest.packs[:-1]
            ],
            "system": old_manifest.system.model_copy(update={"notes": "New notes"}),
        }
    )
    texts = {"old": old_manifest, "new": new_manifest}
    trees: dict[str, dict[str, bytes]] = {}
    for name, state in texts.items():  # the site of each as read back (its entries' ids)
        write_manifest(manifest, state)
        trees[name] = render_site(load_manifest(manifest))
    build = tool_command(manifest, site, "build")

    write_manifest(manifest, new_manifest)
    first = subprocess.run(build, env=environment(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert site_state(site, trees) == "new"
    write_manifest(manifest, old_manifest)
    started = time.monotonic()
    second = subprocess.run(build, env=environment(), capture_output=True, text=True)
    duration = time.monotonic() - started  # only to choose kill moments, never asserted
    assert second.returncode == 0, second.stderr
    assert site_state(site, trees) == "old"

    # Each trial builds towards the state the site is not in, and is killed on the way.
    outcomes = {"reached": 0, "kept": 0}
    for delay in kill_moments(duration, TRIALS, seed=7, stretch=1.5):
        state = site_state(site, trees)
        assert state is not None
        target = "new" if state == "old" else "old"
        write_manifest(manifest, texts[target])
        kill_at(build, delay)
        after = site_state(site, trees)
        assert after is not None, f"site neither old nor new after a kill at {delay:.3f} s"
        outcomes["reached" if after == target else "kept"] += 1
    # Early kills always land before the swap; how many land after it depends on the machine's
    # load (reported below, not asserted: the guarantee is "old or new", whichever it is).
    assert outcomes["kept"] > 0

    # Then kills aimed at the write and swap: once the staging folder exists (+ 0–50 ms).
    rng = random.Random(77)
    aimed = max(TRIALS // 2, 1)
    caught = 0
    for _ in range(aimed):
        state = site_state(site, trees)
        target = "new" if state == "old" else "old"
        write_manifest(manifest, texts[target])
        caught += kill_when_staging(build, site, rng.uniform(0, 0.05))
        after = site_state(site, trees)
        assert after is not None, "site neither old nor new after a kill during the swap"
        outcomes["reached" if after == target else "kept"] += 1
    leftovers = beside_site(site)
    print(
        f"\ncrash/build: {TRIALS} kills at random moments over {duration * 1.5:.2f} s + {aimed} "
        f"aimed at the write/swap ({caught} caught); {BUILD_PACKS} packs "
        f"({len(trees['old']):,} files): {outcomes['kept']} kept the previous site, "
        f"{outcomes['reached']} reached the new one, never mixed; "
        f"{len(leftovers)} folders left beside the site before the next build"
    )
    assert caught > 0, "no kill landed while the staging folder existed"

    # The next build clears what killed builds left and completes.
    write_manifest(manifest, new_manifest)
    done = subprocess.run(build, env=environment(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert site_state(site, trees) == "new"
    assert beside_site(site) == []


def test_failing_build_leaves_the_old_site_whole_and_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No space left on device in the middle of writing the new site: the old one stays."""

    from valhalla_status import site as site_module

    old_manifest = big_manifest(20)
    new_manifest = old_manifest.model_copy(
        update={"system": old_manifest.system.model_copy(update={"notes": "Changed"})}
    )
    site = tmp_path / "site"
    site_module.build_site(old_manifest, site)
    trees = {"old": site_module.render_site(old_manifest)}
    assert site_state(site, trees) == "old"

    calls = {"n": 0}

    write = os.write

    def full_disk(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(ValhallaError) as caught:
        site_module.build_site(new_manifest, site)
    monkeypatch.undo()
    assert calls["n"] > 1, "the simulated failure was reached"
    assert caught.value.format_message() == (f"error: cannot build {site}: No space left on device")
    assert site_state(site, trees) == "old"
    assert beside_site(site) == []
    site_module.build_site(new_manifest, site)  # with space again, the build completes
    assert site_state(site, {"new": site_module.render_site(new_manifest)}) == "new"
