"""The lock cannot be taken away from its holder; the clock never moves the record backwards.

The lock tests run real ``python -m valhalla_status`` processes. The holder is a real CLI
mutation stopped at the one moment that matters: it has read the manifest, made its change and
is about to put the new file in place (its ``os.replace`` waits for a line on stdin).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from conftest import clean_env, dump, small_manifest, tool_command

from valhalla_status.manifest import load_manifest, lock_path

# The CLI, with the manifest's replacement held until a line arrives on stdin.
STALLED_WRITER = """
import os, sys
real_replace = os.replace
def stalled_replace(source, target, *args, **kwargs):
    if os.fspath(target).endswith(sys.argv[1]):
        print("writing", flush=True)
        sys.stdin.readline()
    return real_replace(source, target, *args, **kwargs)
os.replace = stalled_replace
from valhalla_status.cli import main
main(sys.argv[2:], prog_name="valhalla-status")
"""


def pack_set(manifest: Path, pack: str, status: str, by: str) -> list[str]:
    site = manifest.parent / "site"
    return tool_command(manifest, site, "pack", "set", pack, "--status", status, "--no-build",
        "--by", by)  # fmt: skip


@contextmanager
def stalled_writer(manifest: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A real mutation holding the lock, stopped just before it replaces the manifest."""
    argv = tool_command(manifest, manifest.parent / "site", *args)
    process = subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, manifest.name, *argv[3:]],
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == "writing\n", process.communicate(timeout=60)
        yield process
    finally:
        if process.poll() is None and process.stdin and not process.stdin.closed:
            process.stdin.write("\n")
            process.stdin.close()
        process.wait(timeout=120)


def write_small(tmp_path: Path) -> Path:
    manifest = tmp_path / "manifest" / "valhalla.yaml"
    manifest.parent.mkdir()
    manifest.write_text(dump(small_manifest()), encoding="utf-8")
    return manifest


def delete(path: Path) -> None:
    path.unlink()


def delete_and_recreate(path: Path) -> None:
    path.unlink()
    path.write_bytes(b"")


def move_away(path: Path) -> None:
    path.rename(path.with_name(path.name + ".old"))


TAKEN_AWAY: dict[str, Callable[[Path], None]] = {
    "deleted": delete,
    "deleted-and-recreated": delete_and_recreate,
    "moved-away": move_away,
}


@pytest.mark.parametrize("take_away", TAKEN_AWAY.values(), ids=TAKEN_AWAY.keys())
def test_no_second_writer_gets_in_while_the_holders_lock_file_is_gone(
    tmp_path: Path, take_away: Callable[[Path], None]
) -> None:
    manifest = write_small(tmp_path)
    with stalled_writer(manifest, "pack", "set", "I", "--status", "installed", "--no-build",
                        "--by", "A") as holder:  # fmt: skip
        assert lock_path(manifest).exists()
        take_away(lock_path(manifest))
        before = manifest.read_bytes()
        second = subprocess.run(
            pack_set(manifest, "H", "pending", "B"),
            env=clean_env(VALHALLA_LOCK_TIMEOUT="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stderr
        assert "is locked by another valhalla-status process (waited 1 s)" in second.stderr
        assert manifest.read_bytes() == before, "the second writer wrote while A held the lock"
    assert holder.returncode == 0, holder.stderr
    again = subprocess.run(
        pack_set(manifest, "H", "pending", "B"),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    final = load_manifest(manifest)
    assert final.pack("I").status == "installed"  # type: ignore[union-attr]
    assert final.pack("H").status == "pending"  # type: ignore[union-attr]
    assert [(e.by, e.action) for e in final.history] == [
        ("alice", "init"),
        ("A", "pack-set"),
        ("B", "pack-set"),
    ]


def test_a_write_is_not_lost_when_the_lock_file_is_deleted_mid_write(tmp_path: Path) -> None:
    """Both writers exit 0 and both changes and history entries are there afterwards."""
    manifest = write_small(tmp_path)
    with stalled_writer(manifest, "pack", "set", "I", "--status", "installed", "--no-build",
                        "--by", "A") as holder:  # fmt: skip
        lock_path(manifest).unlink()
        second = subprocess.Popen(
            pack_set(manifest, "H", "pending", "B"),
            env=clean_env(VALHALLA_LOCK_TIMEOUT="120"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Give the second writer every chance to get in (it must not: it waits for A).
        with suppress(subprocess.TimeoutExpired):
            second.wait(timeout=3)
    _out, err = second.communicate(timeout=120)
    assert holder.returncode == 0, holder.stderr
    assert second.returncode == 0, err
    final = load_manifest(manifest)
    assert final.pack("I").status == "installed", "A's change was lost"  # type: ignore[union-attr]
    assert final.pack("H").status == "pending", "B's change was lost"  # type: ignore[union-attr]
    assert sorted(e.by for e in final.history[1:]) == ["A", "B"]


def test_the_lock_is_held_through_a_symlinked_folder(tmp_path: Path) -> None:
    """A manifest reached through a symlinked folder is still locked (and not forever)."""
    manifest = write_small(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(manifest.parent, target_is_directory=True)
    result = subprocess.run(
        pack_set(link / manifest.name, "H", "pending", "C"),
        env=clean_env(VALHALLA_LOCK_TIMEOUT="5"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert load_manifest(manifest).pack("H").status == "pending"  # type: ignore[union-attr]


def test_a_build_beside_the_manifest_does_not_wait_for_its_own_lock(tmp_path: Path) -> None:
    """The manifest and the site in one folder: the mutation and its rebuild both go through."""
    folder = tmp_path / "here"
    folder.mkdir()
    manifest = folder / "valhalla.yaml"
    shutil.copy(write_small(tmp_path), manifest)
    result = subprocess.run(
        tool_command(manifest, folder / "site", "pack", "set", "H", "--status", "pending",
            "--by", "D"),
        env=clean_env(VALHALLA_LOCK_TIMEOUT="5"),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (folder / "site" / "status.json").exists()
