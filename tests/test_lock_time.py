"""The lock cannot be taken away from its holder; the clock never moves the record backwards.

The lock tests run real ``python -m valhalla_status`` processes. The holder is a real CLI
mutation stopped at the one moment that matters: it has read the manifest, made its change and
is about to put the new file in place (its ``os.replace`` waits for a line on stdin).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    EPOCH,
    EPOCH_TEXT,
    MANIFEST_REL,
    Workspace,
    clean_env,
    dump,
    small_manifest,
    snapshot,
    tool_command,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from valhalla_status.manifest import (
    dump_manifest,
    load_manifest,
    lock_path,
    manifest_lock,
    parse_manifest,
)
from valhalla_status.models import format_timestamp, parse_timestamp

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_writer_kept_waiting_says_which_valhalla_status_command_holds_the_lock(
    tmp_path: Path,
) -> None:
    manifest = write_small(tmp_path)
    with stalled_writer(manifest, "pack", "set", "I", "--status", "installed", "--no-build",
                        "--by", "A") as holder:  # fmt: skip
        second = subprocess.Popen(
            pack_set(manifest, "H", "pending", "B"),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stderr is not None
        said = second.stderr.readline()  # the holder lets go once the waiter has said this
    _out, rest = second.communicate(timeout=120)
    assert said == (
        f"waiting for the lock on {manifest}, held by pid {holder.pid} "
        "(valhalla-status pack set I); giving up after 60 s\n"
    )
    assert (second.returncode, rest) == (0, "Pack H: installed → pending\n")
    assert holder.returncode == 0, holder.stderr
    assert lock_path(manifest).read_bytes() == b"", "the last holder emptied the lock file"


@pytest.mark.slow
def test_a_writer_kept_waiting_by_a_lock_held_in_another_program_says_its_process_id(
    tmp_path: Path,
) -> None:
    manifest = write_small(tmp_path)
    with manifest_lock(manifest):  # held by this process: the library, not the CLI
        writer = subprocess.Popen(
            pack_set(manifest, "H", "pending", "B"),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stderr is not None
        said = writer.stderr.readline()
        assert load_manifest(manifest).pack("H").status == "installed"  # type: ignore[union-attr]
    _out, rest = writer.communicate(timeout=120)
    assert said == (
        f"waiting for the lock on {manifest}, held by pid {os.getpid()}; giving up after 60 s\n"
    )
    assert (writer.returncode, rest) == (0, "Pack H: installed → pending\n")
    assert load_manifest(manifest).pack("H").status == "pending"  # type: ignore[union-attr]


@pytest.mark.slow
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


# --- time: the record never goes backwards --------------------------------------------------

NB = "--no-build"
NIX_SHELL_EPOCH = 315532800  # 1980-01-01T00:00:00Z, what nix-shell exports

# One of each kind, in an order that can run in turn: no pack goes pending once complete.
MUTATIONS = {
    "set-notes": ("set-notes", "why"),
    "pack-set": ("pack", "set", "H", "--status", "deprecated"),
    "pack-add": ("pack", "add", "Z", "--name", "New", "--group", "G", "--status", "installed"),
    "pack-remove": ("pack", "remove", "S"),
    "complete": ("complete",),
    "set-version": ("set-version", "2.0.0"),
}


def newest_at(ws: Workspace, moment: str) -> None:
    """The small manifest, nothing pending (so it may complete), its newest entry at moment."""
    data = small_manifest()
    data["packs"][1]["status"] = "installed"
    data["system"]["updated_at"] = moment
    data["history"][0]["at"] = moment
    ws.write(data)


@pytest.mark.parametrize("args", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_stray_source_date_epoch_before_the_newest_entry_is_refused(
    ws: Workspace, args: tuple[str, ...]
) -> None:
    newest_at(ws, EPOCH_TEXT)
    before = snapshot(ws.root)
    result = ws.run(*args, NB, "--by", "bob", env={"SOURCE_DATE_EPOCH": str(NIX_SHELL_EPOCH)})
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "error: the time of this change, 1980-01-01T00:00:00Z (from "
        f"SOURCE_DATE_EPOCH={NIX_SHELL_EPOCH}), is before the newest history entry, "
        f"{EPOCH_TEXT} (manifest/valhalla.yaml); unset SOURCE_DATE_EPOCH or give a later time\n"
    )
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("args", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_system_clock_behind_the_newest_entry_is_refused(
    ws: Workspace, args: tuple[str, ...]
) -> None:
    newest_at(ws, "2999-01-01T00:00:00Z")
    before = snapshot(ws.root)
    result = ws.run(*args, NB, "--by", "bob")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the time of this change, ")
    assert line.endswith(
        "(from the system clock), is before the newest history entry, "
        "2999-01-01T00:00:00Z (manifest/valhalla.yaml); check the system clock, "
        "or the time in that file"
    )
    assert snapshot(ws.root) == before


def test_a_change_stamped_at_the_same_second_as_the_newest_entry_is_allowed(ws: Workspace) -> None:
    newest_at(ws, EPOCH_TEXT)
    for n, args in enumerate(MUTATIONS.values()):
        result = ws.run(*args, NB, "--by", f"w{n}", env={"SOURCE_DATE_EPOCH": str(EPOCH)})
        assert result.exit_code == 0, result.output
    final = load_manifest(ws.manifest)
    assert [e.at for e in final.history] == [final.history[0].at] * (1 + len(MUTATIONS))


def test_the_library_refuses_a_time_given_before_the_newest_entry(ws: Workspace) -> None:
    from valhalla_status.errors import RefusedError
    from valhalla_status.service import set_notes

    newest_at(ws, EPOCH_TEXT)
    before = ws.manifest.read_bytes()
    with pytest.raises(RefusedError, match=r"\(from the time given\).*give a later time"):
        set_notes(ws.manifest, "x", by="lib", now=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert ws.manifest.read_bytes() == before


BAD_EPOCHS = {
    "word": ("yesterday", "is not a whole number of seconds"),
    "fraction": ("1.5", "is not a whole number of seconds"),
    "exponent": ("1e9", "is not a whole number of seconds"),
    "spaces": (" 5", "is not a whole number of seconds"),
    "underscores": ("1_000", "is not a whole number of seconds"),
    "arabic-digits": ("١٢٣", "is not a whole number of seconds"),
    "negative": ("-1", "is out of range: it must be 0 to 253402300799 seconds"),
    "after-9999": ("253402300800", "is out of range: it must be 0 to 253402300799 seconds"),
    "huge": ("9" * 20, "is out of range: it must be 0 to 253402300799 seconds"),
    "enormous": ("9" * 5000, "is out of range: it must be 0 to 253402300799 seconds"),
}


@pytest.mark.parametrize("value, message", BAD_EPOCHS.values(), ids=BAD_EPOCHS.keys())
@pytest.mark.parametrize("args", [("set-notes", "x", NB), ("init", NB)], ids=["set-notes", "init"])
def test_a_bad_source_date_epoch_is_one_clear_line(
    ws: Workspace, value: str, message: str, args: tuple[str, ...]
) -> None:
    if args[0] != "init":
        newest_at(ws, EPOCH_TEXT)
    before = snapshot(ws.root)
    result = ws.run(*args, "--by", "bob", env={"SOURCE_DATE_EPOCH": value})
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: SOURCE_DATE_EPOCH=")
    assert message in line
    assert len(line) < 200
    assert snapshot(ws.root) == before


@pytest.mark.parametrize(
    "epoch, text", [(0, "1970-01-01T00:00:00Z"), (253402300799, "9999-12-31T23:59:59Z")]
)
def test_the_extreme_source_date_epochs_write_a_manifest_that_reads_back(
    ws: Workspace, epoch: int, text: str
) -> None:
    newest_at(ws, "1970-01-01T00:00:00Z")
    result = ws.run("set-notes", "edge", NB, "--by", "bob", env={"SOURCE_DATE_EPOCH": str(epoch)})
    assert result.exit_code == 0, result.output
    assert load_manifest(ws.manifest).history[-1].at == parse_timestamp(text)
    assert ws.read()["history"][-1]["at"] == text
    assert ws.run("validate").exit_code == 0
    assert ws.run("fmt", "--check").exit_code == 0


OUT_OF_RANGE = {
    "1969": "1969-12-31T23:59:59Z",
    "year-999": "0999-06-01T00:00:00Z",
    "year-1": "0001-01-01T00:00:00Z",
    "offset-before-1970": "1970-01-01T00:59:59+01:00",
    "offset-after-9999": "9999-12-31T23:00:00-01:30",
}


@pytest.mark.parametrize("moment", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
@pytest.mark.parametrize("field", ["updated_at", "history_at"])
def test_timestamps_outside_1970_to_9999_are_refused_with_a_clear_message(
    ws: Workspace, moment: str, field: str
) -> None:
    data = small_manifest()
    if field == "updated_at":
        data["system"]["updated_at"] = moment
        located = "system.updated_at"
    else:
        data["history"][0]["at"] = moment
        located = "history[0].at"
    text = dump(data)
    ws.write(text)
    result = ws.run("validate")
    assert result.exit_code == 1, result.output
    line = text[: text.index(moment)].count("\n") + 1
    assert result.stderr.splitlines()[0].startswith(f"{MANIFEST_REL}:{line}: {located}: ")
    assert "timestamps are from 1970-01-01 to 9999-12-31 (UTC)" in result.stderr
    assert ws.run("fmt").exit_code == 1
    assert ws.manifest.read_text(encoding="utf-8") == text, "fmt wrote an invalid manifest"


EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    moment=st.one_of(
        st.datetimes(min_value=EARLIEST, max_value=LATEST),
        st.sampled_from([EARLIEST, LATEST]),
    ),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_every_timestamp_the_tool_writes_validates_when_read_back(
    moment: datetime, offset_minutes: int
) -> None:
    utc = moment.replace(tzinfo=timezone.utc)
    zone = timezone(timedelta(minutes=offset_minutes))
    # The same moment seen from any zone: written in UTC, read back equal.
    try:
        local = utc.astimezone(zone)
    except OverflowError:
        local = utc
    written = format_timestamp(local)
    assert parse_timestamp(written) == utc
    assert format_timestamp(parse_timestamp(written)) == written
    data = small_manifest()
    data["system"]["updated_at"] = written
    data["history"][0]["at"] = written
    manifest = parse_manifest(dump(data))
    text = dump_manifest(manifest)
    again = parse_manifest(text)
    assert again == manifest
    assert dump_manifest(again) == text


# --- a change written but not published is reported as both ---------------------------------

FINISH = "run `valhalla-status build` to finish"


def site_is_a_file(ws: Workspace) -> None:
    (ws.root / "site").write_text("not a folder")


def site_parent_is_a_file(ws: Workspace) -> None:
    (ws.root / "out").write_text("not a folder")


SITE_BLOCKED: dict[str, tuple[Callable[[Workspace], None], str]] = {
    "site-is-a-file": (site_is_a_file, "site"),
    "site-parent-is-a-file": (site_parent_is_a_file, "out/site"),
}


@pytest.mark.parametrize("args", MUTATIONS.values(), ids=MUTATIONS.keys())
@pytest.mark.parametrize("block", SITE_BLOCKED.values(), ids=SITE_BLOCKED.keys())
def test_a_failed_rebuild_after_a_recorded_change_says_both(
    ws: Workspace, block: tuple[Callable[[Workspace], None], str], args: tuple[str, ...]
) -> None:
    make_trouble, site = block
    newest_at(ws, EPOCH_TEXT)
    make_trouble(ws)
    before = load_manifest(ws.manifest)
    result = ws.run("--site", site, *args, "--by", "bob", env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    result_line, error = result.stderr.splitlines()
    assert not result_line.startswith("error"), "first the change's own one-line result"
    assert error.startswith(
        f"error: the change is recorded in {MANIFEST_REL}, but the site ({site}) was not rebuilt: "
    )
    assert error.endswith(FINISH)
    after = load_manifest(ws.manifest)
    assert len(after.history) == len(before.history) + 1, "the change really is recorded"
    assert "Traceback" not in result.output


DISK_FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
from valhalla_status.cli import main
main(sys.argv[1:], prog_name="valhalla-status")
"""


def run_patched(ws: Workspace, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with ``args``, in a process that ``script`` prepares (a limit, a broken part)."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ws.root,
        env=clean_env(SOURCE_DATE_EPOCH=str(EPOCH)),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_a_full_disk_during_the_rebuild_is_reported_with_the_recorded_change(
    ws: Workspace,
) -> None:
    """Files over 4 KiB cannot be written (as on a full disk): the manifest fits, the site not."""
    newest_at(ws, EPOCH_TEXT)
    result = run_patched(ws, DISK_FULL, "set-notes", "disk", "--by", "bob")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "Notes updated",
        f"error: the change is recorded in {MANIFEST_REL}, but the site (site) was not rebuilt: "
        f"cannot build site: File too large; {FINISH}",
    ]
    assert load_manifest(ws.manifest).system.notes == "disk"
    finish = subprocess.run(
        [sys.executable, "-m", "valhalla_status", "build"],
        cwd=ws.root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finish.returncode == 0, finish.stderr
    assert '"notes": "disk"' in (ws.root / "site" / "status.json").read_text(encoding="utf-8")


# --- a read-only manifest is not replaced -----------------------------------------------------

WRITERS = {
    **MUTATIONS,
    "fmt": ("fmt",),
    "init-force": ("init", "--force"),
}


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555, 0o044])
@pytest.mark.parametrize("args", WRITERS.values(), ids=WRITERS.keys())
def test_a_manifest_its_owner_cannot_write_is_not_replaced(
    ws: Workspace, args: tuple[str, ...], mode: int
) -> None:
    """Even as root, who may write anything: the owner's write bit is what counts."""
    newest_at(ws, EPOCH_TEXT)
    if args[0] == "fmt":  # not canonical yet, so fmt has something to write
        ws.write(ws.manifest.read_text(encoding="utf-8") + "\n\n")
    ws.manifest.chmod(mode)
    before = snapshot(ws.root)
    extra = () if args[0] == "fmt" else (NB, "--by", "bob")
    result = ws.run(*args, *extra, env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: {MANIFEST_REL} is read-only (mode {mode:04o}); not replacing it "
        "(make it writable with `chmod u+w` to change it)\n"
    )
    assert snapshot(ws.root) == before
    assert ws.manifest.stat().st_mode & 0o777 == mode
    ws.manifest.chmod(0o644)
    assert ws.run(*args, *extra, env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0


# --- noncharacters and lone surrogates are refused like control characters ------------------

NONCHARACTERS = {
    "FDD0": "\ufdd0",
    "FDEF": "\ufdef",
    "FFFE": "\ufffe",
    "FFFF": "\uffff",
    "1FFFE": "\U0001fffe",
    "2FFFF": "\U0002ffff",
    "EFFFE": "\U000efffe",
    "10FFFF": "\U0010ffff",
}


@pytest.mark.parametrize("char", NONCHARACTERS.values(), ids=NONCHARACTERS.keys())
@pytest.mark.parametrize(
    "field",
    [("packs", 0, "name"), ("packs", 0, "group"), ("system", "name"), ("system", "notes"),
     ("history", 0, "by"), ("history", 0, "notes")],
    ids=lambda loc: ".".join(map(str, loc)),
)  # fmt: skip
def test_noncharacters_in_the_manifest_are_refused_and_located(
    ws: Workspace, char: str, field: tuple[str | int, ...]
) -> None:
    data = small_manifest()
    holder: Any = data
    for part in field[:-1]:
        holder = holder[part]
    holder[field[-1]] = f"Admin{char}Pack"
    text = yaml.safe_dump(data, sort_keys=False)  # ASCII: the character as an escape
    ws.write(text)
    line = text[: text.index("Admin")].count("\n") + 1
    located = ".".join(str(p) for p in field).replace(".0.", "[0].")
    result = ws.run("validate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{MANIFEST_REL}:{line}: {located}: contains the noncharacter U+{ord(char):04X}, "
        "which is not allowed\n"
    )


@pytest.mark.parametrize("char", NONCHARACTERS.values(), ids=NONCHARACTERS.keys())
def test_noncharacters_given_on_the_command_line_never_reach_the_site(
    ws: Workspace, char: str
) -> None:
    newest_at(ws, EPOCH_TEXT)
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    assert ws.run("build", env=env).exit_code == 0
    before = snapshot(ws.root)
    attempts = [
        ("pack", "add", "Z", "--name", f"N{char}", "--group", "G", "--by", "bob"),
        ("pack", "set", "H", "--name", f"N{char}", "--by", "bob"),
        ("pack", "set", "H", "--group", f"G{char}", "--by", "bob"),
        ("set-notes", f"notes{char}", "--by", "bob"),
        ("complete", "--notes", f"n{char}", "--by", "bob"),
        ("set-notes", "fine", "--by", f"bob{char}"),
    ]
    for args in attempts:
        result = ws.run(*args, env=env)
        assert result.exit_code == 1, (args, result.output)
        (line,) = result.stderr.splitlines()
        assert f"contains the noncharacter U+{ord(char):04X}, which is not allowed" in line
        assert char not in result.output
    assert snapshot(ws.root) == before


@pytest.mark.slow
def test_lone_surrogates_from_undecodable_arguments_are_refused_in_one_line(
    tmp_path: Path,
) -> None:
    """Bytes that are not UTF-8 on the command line become lone surrogates in Python."""
    manifest = write_small(tmp_path)
    before = manifest.read_bytes()
    for args in (
        [b"pack", b"add", b"Z", b"--name", b"bad\xff", b"--group", b"G"],
        [b"set-notes", b"bad\xed\xa0\x80"],
        [b"set-notes", b"fine", b"--by", b"b\xffob"],
    ):
        result = subprocess.run(
            [os.fsencode(a) for a in tool_command(manifest, tmp_path / "site")] + args
            + [b"--no-build"],
            env=clean_env(LC_ALL="C.UTF-8"),
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        (line,) = result.stderr.decode("utf-8").splitlines()
        assert "contains the lone surrogate U+DC" in line, line
        assert "Traceback" not in line
    assert manifest.read_bytes() == before


# --- schema_version is the integer 1 or 2 ------------------------------------------------------


@pytest.mark.parametrize(
    "value, shown",
    [("true", "true (a YAML boolean)"), ("1.0", "1.0 (a YAML float)"),
     ("1.00", "1.0 (a YAML float)"), ("'1'", "'1'"), ("\"1\"", "'1'"), ("3", "3 (a YAML integer)"),
     ("2.0", "2.0 (a YAML float)"),
     ("[1]", "a list"), ("null", "null")],
)  # fmt: skip
def test_schema_version_must_be_the_integer_1_or_2(ws: Workspace, value: str, shown: str) -> None:
    text = dump(small_manifest()).replace("schema_version: 1\n", f"schema_version: {value}\n")
    ws.write(text)
    result = ws.run("validate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{MANIFEST_REL}:1: schema_version: unsupported schema_version {shown}; "
        "this tool reads 1 and 2\n"
    )
    assert ws.run("fmt").exit_code == 1
    assert ws.manifest.read_text(encoding="utf-8") == text


# --- huge and broken manifests are refused without reading them twice ------------------------


def many_packs(count: int) -> str:
    """A manifest of ``count`` packs, written quickly as text (block style)."""
    data = small_manifest()
    data["packs"] = []
    head = dump(data).replace("packs: []\n", "packs:\n")
    packs = "".join(
        f"- id: P{i:06d}\n  name: Pack {i}\n  group: G\n  status: installed\n" for i in range(count)
    )
    history = head[head.index("history:") :]
    return head[: head.index("history:")] + packs + history


@pytest.mark.slow
def test_too_many_packs_are_refused_before_the_rest_of_the_file_is_read(ws: Workspace) -> None:
    """Reading stops at pack 100,001: a broken end of the file is never reached."""
    text = many_packs(100_001) + "broken: [unclosed\n"
    ws.write(text)
    line = text[: text.index("- id: P100000")].count("\n") + 1  # pack 100,001
    result = ws.run("validate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{MANIFEST_REL}:{line}: packs: has more than 100,000 packs; the limit is 100,000 "
        "(not read further)\n"
    )
    assert ws.run("pack", "set", "P000001", "--status", "pending", NB, "--by", "x").exit_code == 1


def test_a_broken_manifest_is_parsed_once_to_locate_its_problems(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = many_packs(2000)
    text = text.replace("  status: installed\n", "  statuss: installed\n", 1)
    text = text.replace("name: Pack 1500\n", "name: Pack 1500\n  colour: red\n")
    ws.write(text)
    calls = {"parse": 0, "compose": 0}
    real_parse, real_compose = yaml.parse, yaml.compose

    def counted_parse(*args: Any, **kwargs: Any) -> Any:
        calls["parse"] += 1
        return real_parse(*args, **kwargs)

    def counted_compose(*args: Any, **kwargs: Any) -> Any:
        calls["compose"] += 1
        return real_compose(*args, **kwargs)

    monkeypatch.setattr(yaml, "parse", counted_parse)
    monkeypatch.setattr(yaml, "compose", counted_compose)
    result = ws.run("validate")
    assert result.exit_code == 1
    status_line = text.index("statuss")
    colour_line = text.index("colour")
    assert result.stderr.splitlines() == [
        f"{MANIFEST_REL}:{text[:status_line].count(chr(10)) - 2}: packs[0].status: "
        "required field is missing",
        f"{MANIFEST_REL}:{text[:status_line].count(chr(10)) + 1}: packs[0].statuss: "
        "unknown field 'statuss' (did you mean 'status'?)",
        f"{MANIFEST_REL}:{text[:colour_line].count(chr(10)) + 1}: packs[1500].colour: "
        "unknown field 'colour'",
    ]
    assert calls == {"parse": 1, "compose": 0}


LOCATED = {
    # name: (replace this, with this, the problem is on the line holding this)
    "value-below-its-key": ("  name: Pack 7\n", '  name:\n    "Pack\\a 7"\n', '"Pack\\a 7"'),
    "flow-pack": (
        "- id: P000009\n  name: Pack 9\n  group: G\n  status: installed\n",
        "- {id: P000009, name: Pack 9, group: G, status: instaled}\n",
        "{id: P000009",
    ),
    "scalar-item": ("- id: P000003\n  name: Pack 3\n  group: G\n  status: installed\n",
                    "- 3\n", "- 3\n"),
    "missing-key": ("  group: G\n  status: installed\n- id: P000005", "  group: G\n- id: P000005",
                    "- id: P000004"),
    "system-notes": ("  notes: null\n  updated_at", '  notes:\n    "a\\x01b"\n  updated_at',
                     '"a\\x01b"'),
    "history-change": ("  changes: {}", "  changes:\n    version:\n    - 1.0.0", "    version:"),
}  # fmt: skip


@pytest.mark.parametrize("old, new, marker", LOCATED.values(), ids=LOCATED.keys())
def test_problems_are_located_on_the_line_that_holds_them(
    ws: Workspace, old: str, new: str, marker: str
) -> None:
    text = many_packs(12)
    assert text.count(old) == 1
    text = text.replace(old, new)
    ws.write(text)
    result = ws.run("validate")
    assert result.exit_code == 1
    line = text[: text.index(marker)].count("\n") + 1
    assert result.stderr.startswith(f"{MANIFEST_REL}:{line}: "), (line, result.stderr)


BROKEN_BUILD = """
import sys
import valhalla_status.site as site
def broken(*args, **kwargs):
    raise RuntimeError("the renderer fell over")
site.build_site = broken
from valhalla_status.cli import main
main(sys.argv[1:], prog_name="valhalla-status")
"""


def test_an_unexpected_failure_of_the_rebuild_still_says_the_change_is_recorded(
    ws: Workspace,
) -> None:
    newest_at(ws, EPOCH_TEXT)
    result = run_patched(ws, BROKEN_BUILD, "set-notes", "odd", "--by", "bob")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "Notes updated",
        f"error: the change is recorded in {MANIFEST_REL}, but the site (site) was not rebuilt: "
        f"internal error: RuntimeError: the renderer fell over; {FINISH}",
    ]
    assert load_manifest(ws.manifest).system.notes == "odd"
