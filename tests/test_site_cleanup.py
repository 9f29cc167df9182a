"""A build that cannot finish leaves nothing it cannot clean or report.

A read-only site folder is refused in one line before anything is written or swapped (root
included: the owner's write bit is what is asked). Folders made read-only inside the site, or
inside a scratch folder a killed build left, are given write permission back and removed (the
build made them). A scratch folder the build still cannot remove (another user's files) is
named in one line, with why, by every build until it is gone; the build itself completes.

The writer is a real process without root's permission overrides: as root (the sandbox), the
build runs with ``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH`` and ``CAP_FOWNER`` dropped, so the
kernel checks permissions as for any user; as another user, it runs as that user. Another
user's folder is made with ``os.chown`` as root; elsewhere ``os.fchmod`` refusing (``EPERM``,
what the kernel says to a non-owner) stands in for it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import Workspace, run_tool, small_manifest

from valhalla_status.publishing import sitefolder

ROOT = os.geteuid() == 0
OTHER = 12345
_PR_CAPBSET_DROP = 24
_OVERRIDES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
TOKEN = "0123456789abcdef"


def _drop_overrides() -> None:
    """In the child before exec: lose root's permission overrides for good."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _OVERRIDES:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def writer(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``valhalla-status ARGS`` in ``cwd``, as a writer the file permissions apply to."""
    return run_tool(cwd, *args, preexec_fn=_drop_overrides if ROOT else None)


def beside(ws: Workspace) -> list[str]:
    """What is in the workspace's top folder."""
    return sorted(os.listdir(ws.root))


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def change_notes(ws: Workspace, notes: str) -> None:
    data = small_manifest()
    data["system"]["notes"] = notes
    ws.write(data)


@pytest.fixture
def built(ws: Workspace) -> Workspace:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    return ws


def open_again(folder: Path) -> None:
    """Give every folder under ``folder`` its write permission back (for the clean-up)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


# --- a read-only site folder ---------------------------------------------------------------------

READ_ONLY = [0o555, 0o500, 0o550, 0o505, 0o555 | stat.S_ISVTX]


@pytest.mark.parametrize("mode", READ_ONLY)
def test_a_read_only_site_folder_is_refused_before_anything_is_swapped(
    built: Workspace, mode: int
) -> None:
    ws = built
    site = ws.root / "site"
    before, listing = tree(site), beside(ws)
    change_notes(ws, "not published")
    site.chmod(mode)
    try:
        shown = f"{stat.S_IMODE(mode):04o}"
        said = (
            f"error: refusing to replace site: it is read-only (mode {shown}); make it "
            "writable with `chmod u+w` to build it\n"
        )
        done = writer(ws.root, "build")
        assert (done.returncode, done.stdout, done.stderr) == (1, "", said)
        assert (tree(site), beside(ws)) == (before, listing)
        result = ws.run("build")  # root too: the owner's write bit is what is asked
        assert (result.exit_code, result.stderr) == (1, said)
        assert (tree(site), beside(ws)) == (before, listing)
    finally:
        site.chmod(0o755)
    assert ws.run("build").exit_code == 0
    assert b"not published" in (site / "status.json").read_bytes()


def test_a_change_whose_site_is_read_only_says_both(built: Workspace) -> None:
    ws = built
    site = ws.root / "site"
    listing = beside(ws)
    site.chmod(0o555)
    try:
        done = writer(ws.root, "set-notes", "written", "--by", "bob")
    finally:
        site.chmod(0o755)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "error: the change is recorded in manifest/valhalla.yaml, but the site (site) was not "
        "rebuilt: refusing to replace site: it is read-only (mode 0555); make it writable with "
        "`chmod u+w` to build it; run `valhalla-status build` to finish"
    )
    assert beside(ws) == listing


# --- read-only folders inside what a build removes ------------------------------------------------

INSIDE = [
    ("packs",),
    ("api", "api/v2"),
    ("api/v2",),
    ("packs", "api", "api/v2", "schema"),
]


@pytest.mark.parametrize("folders", INSIDE)
def test_read_only_folders_inside_the_site_leave_nothing_behind(
    built: Workspace, folders: tuple[str, ...]
) -> None:
    ws = built
    site = ws.root / "site"
    listing = beside(ws)
    for name in sorted(folders, key=len, reverse=True):
        (site / name).chmod(0o555)
    change_notes(ws, "rebuilt")
    done = writer(ws.root, "build")
    try:
        assert (done.returncode, done.stderr) == (0, "site: built (39 files)\n")
        assert beside(ws) == listing
    finally:
        open_again(ws.root)
    assert b'"notes": "rebuilt"' in (site / "status.json").read_bytes()


def plant_leftover(ws: Workspace, kind: str, read_only: list[str]) -> Path:
    """A scratch folder a killed build left beside the site, some folders in it read-only."""
    folder = ws.root / f".site.valhalla-{kind}-{TOKEN}"
    (folder / "packs" / "deep").mkdir(parents=True)
    (folder / sitefolder.SITE_MARK).write_bytes(sitefolder.SITE_MARK_BYTES)
    (folder / "index.html").write_text("old\n")
    (folder / "packs" / "H.json").write_text("{}\n")
    (folder / "packs" / "deep" / "x").write_text("x\n")
    for name in sorted(read_only, key=len, reverse=True):
        (folder / name).chmod(0o555 if name else 0o500)
    return folder


LEFTOVERS = [
    ("staging", [""]),
    ("staging", ["packs"]),
    ("old", ["packs/deep", "packs"]),
    ("old", ["", "packs", "packs/deep"]),
]


@pytest.mark.parametrize(("kind", "read_only"), LEFTOVERS)
def test_a_killed_builds_read_only_leftover_is_cleared_by_the_next_build(
    built: Workspace, kind: str, read_only: list[str]
) -> None:
    ws = built
    listing = beside(ws)
    plant_leftover(ws, kind, read_only)
    done = writer(ws.root, "build")
    try:
        assert (done.returncode, done.stderr) == (0, "site: already up to date (39 files)\n")
        assert beside(ws) == listing
    finally:
        open_again(ws.root)


# --- what cannot be removed is said --------------------------------------------------------------


def run(ws: Workspace, *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``valhalla-status ARGS``: a writer without root's overrides as
    root, else in this process (where ``os.fchmod`` may be made to refuse)."""
    if ROOT:
        done = writer(ws.root, *args)
        return done.returncode, done.stderr
    result = ws.run(*args)
    return result.exit_code, result.stderr


@pytest.mark.slow
def test_a_leftover_the_build_cannot_remove_is_named_by_every_build(
    built: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = built
    leftover = ws.root / f".site.valhalla-staging-{TOKEN}"
    leftover.mkdir()
    (leftover / sitefolder.SITE_MARK).write_bytes(sitefolder.SITE_MARK_BYTES)
    (leftover / "index.html").write_text("old\n")
    name = leftover.name
    said = (
        f"warning: cannot remove {name}, left by a build: Permission denied "
        f"({name}/index.html); remove it by hand\n"
    )
    with monkeypatch.context() as patch:
        if ROOT:  # another user's folder: the writer can neither open it up nor empty it
            for path in [leftover, *leftover.rglob("*")]:
                os.chown(path, OTHER, OTHER)
        else:  # read-only, and the kernel's answer to a non-owner where it would be asked

            def refuse(fd: int, mode: int) -> None:
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

            leftover.chmod(0o555)
            patch.setattr(os, "fchmod", refuse)
        try:
            assert run(ws, "build") == (0, said + "site: already up to date (39 files)\n")
            change_notes(ws, "published")
            assert run(ws, "build") == (0, said + "site: built (39 files)\n")
            assert b'"notes": "published"' in (ws.root / "site" / "status.json").read_bytes()
            assert run(ws, "set-notes", "again", "--by", "bob") == (0, said + "Notes updated\n")
            (ws.root / "site" / "status.json").unlink()  # a change that changes nothing
            assert run(ws, "set-notes", "again", "--by", "bob") == (
                0,
                said + "No change: the notes are already that (site rebuilt)\n",
            )
            assert leftover.is_dir()
        finally:
            if ROOT:
                for path in [leftover, *leftover.rglob("*")]:
                    os.chown(path, 0, 0)
            open_again(leftover)
    assert ws.run("build").exit_code == 0
    assert not leftover.exists()


def test_nothing_but_the_build_scratch_folders_is_ever_opened_up(built: Workspace) -> None:
    ws = built
    theirs = ws.root / f".site.valhalla-staging-{TOKEN}"  # a scratch name without the mark
    (theirs / "inside").mkdir(parents=True)
    (theirs / "inside" / "file").write_text("theirs\n")
    (theirs / "inside").chmod(0o555)
    try:
        done = writer(ws.root, "build")
        assert (done.returncode, done.stderr) == (0, "site: already up to date (39 files)\n")
        assert stat.S_IMODE((theirs / "inside").stat().st_mode) == 0o555
        assert (theirs / "inside" / "file").read_text() == "theirs\n"
    finally:
        open_again(theirs)
