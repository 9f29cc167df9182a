"""A refused or killed command loses nothing recorded and says what is wrong in one line.

Each test drives the real command line (or the library, where a kill must be simulated) on
real files and checks the promise of its class: nothing lost, one clear line naming what is
wrong, nothing written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EPOCH, Workspace, clean_env, dump, entry_files, small_manifest, snapshot

from valhalla_status import manifest, service
from valhalla_status.storage import atomic, layout

M = "manifest/valhalla.yaml"
H = "manifest/valhalla.history"
NB = "--no-build"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


def _kill_at(monkeypatch: pytest.MonkeyPatch, module: object, name: str, after: int) -> None:
    """Make ``module.name`` die (``Killed``) on its call number ``after + 1``."""
    real = getattr(module, name)
    calls = {"n": 0}

    def dying(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > after:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)


# --- a killed migrate: v1 intact or v2 complete, and a rerun finishes ---------------------------


def _v1() -> dict:  # type: ignore[type-arg]
    """The small schema_version 1 manifest with three history entries."""
    data = small_manifest()
    first = data["history"][0]
    data["history"] += [
        dict(first, at=f"2025-09-20T0{hour}:00:00Z", changes={}, notes=f"n{hour}")
        for hour in (1, 2)
    ]
    data["system"]["updated_at"] = "2025-09-20T02:00:00Z"
    return data


def _migrated_history(tmp_path: Path) -> dict[str, bytes]:
    """The history folder an uninterrupted migrate of the small manifest writes."""
    clean = tmp_path / "clean" / M
    clean.parent.mkdir(parents=True)
    Workspace(tmp_path / "clean", None).write(_v1())  # type: ignore[arg-type]
    service.migrate_manifest(clean, by="carol")
    return snapshot(clean.parent / "valhalla.history")


@pytest.mark.parametrize(
    ("module", "name", "after"),
    [
        (manifest, "write_pending", 1),  # one pending file written, killed before the next
        (layout.os, "replace", 0),  # the first pending file half made (see below)
        (manifest, "atomic_write", 0),  # every pending file written, the main file still v1
    ],
)
def test_a_migrate_killed_midway_leaves_v1_intact_and_a_rerun_finishes(
    ws: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    name: str,
    after: int,
) -> None:
    expected = _migrated_history(tmp_path)
    ws.write(_v1())
    before = ws.manifest.read_bytes()
    with monkeypatch.context() as patch:
        _kill_at(patch, module, name, after)
        with pytest.raises(Killed):
            service.migrate_manifest(ws.manifest, by="carol")
    if name == "replace":  # SIGKILL leaves the temporary file no handler could remove
        (ws.root / H / f"{layout.TEMP_PREFIX}4242-0badf00d").write_bytes(b"half an entry")
    assert ws.manifest.read_bytes() == before  # v1 intact
    assert ws.run("validate").exit_code == 0
    rerun = ws.run("migrate", "--by", "carol")
    assert rerun.exit_code == 0, rerun.output
    assert ws.read()["schema_version"] == 2
    assert snapshot(ws.root / H) == expected


def test_a_migrate_killed_after_the_main_file_is_complete_and_a_rerun_changes_nothing(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _migrated_history(tmp_path)
    ws.write(_v1())
    with monkeypatch.context() as patch:
        real = manifest.atomic_write

        def write_then_die(*args: object, **kwargs: object) -> None:
            real(*args, **kwargs)  # type: ignore[arg-type]
            raise Killed

        patch.setattr(manifest, "atomic_write", write_then_die)
        with pytest.raises(Killed):
            service.migrate_manifest(ws.manifest, by="carol")
    assert ws.read()["schema_version"] == 2
    assert ws.run("validate").exit_code == 0
    rerun = ws.run("migrate", "--by", "carol")
    assert rerun.exit_code == 0, rerun.output
    assert "No change" in rerun.stderr
    assert ws.run("set-notes", "after", NB, "--by", "d").exit_code == 0
    history = snapshot(ws.root / H)
    assert {k: v for k, v in history.items() if k in expected} == expected


@pytest.mark.parametrize(
    "command",
    [
        # The main file already holds what init writes: only the history entry is new.
        ["init", "--force"],
        ["set-notes", "never written"],
        ["pack", "set", "K", "--status", "pending"],
    ],
)
def test_a_main_file_that_cannot_be_written_leaves_no_history_entry(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    assert ws.run("init", NB, env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0
    before = snapshot(ws.root)
    real = atomic.write_synced

    def denied(temp: Path, final: Path, data: bytes, mode: int = 0o644) -> None:
        # What a read-only manifest folder does to anyone but root.
        if final.name == "valhalla.yaml":
            raise PermissionError(13, "Permission denied", str(temp))
        real(temp, final, data, mode)

    monkeypatch.setattr(atomic, "write_synced", denied)
    result = ws.run(*command, NB, env={"SOURCE_DATE_EPOCH": str(EPOCH + 60)})
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: cannot write {M}: Permission denied\n",
    )
    assert snapshot(ws.root) == before


def test_migrate_still_refuses_a_history_folder_holding_someone_elses_files(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    folder = ws.root / H
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    (folder / ".pending-not-a-scratch-folder").mkdir()
    before = snapshot(ws.root)
    result = ws.run("migrate", "--by", "carol")
    assert result.exit_code == 1
    # The files the reader of the folder would refuse (a migrated branch's entries are taken).
    assert result.stderr == "".join(
        f"{H}/{name}: not a history entry file (names look like {layout.EXAMPLE_NAME}); "
        "move it out of the folder\n"
        for name in (".pending-not-a-scratch-folder", "notes.txt")
    )
    assert snapshot(ws.root) == before


# --- a current folder that is gone: named, never "No such file or directory" alone -------------

_IN_A_DELETED_FOLDER = (
    "import os, sys\n"
    "os.chdir(sys.argv[1]); os.rmdir(sys.argv[1])\n"
    "from valhalla_status.cli import main\n"
    "main(sys.argv[2:], prog_name='valhalla-status')\n"
)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["show"], 1),
        (["build"], 1),
        (["init", "--by", "a"], 1),
        (["set-notes", "x", "--by", "a"], 1),
        (["history"], 1),
        (["check"], 3),  # the status cannot be read: unavailable, never "not ready"
    ],
)
def test_a_deleted_current_folder_is_named_in_one_line(
    tmp_path: Path, args: list[str], code: int
) -> None:
    folder = tmp_path / "was-here"
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _IN_A_DELETED_FOLDER, str(folder), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(folder) in lines[0]
    assert "no longer exists" in lines[0]


def test_a_deleted_current_folder_does_not_stop_a_command_given_absolute_paths(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "was-here"
    folder.mkdir()
    status = tmp_path / "status.json"
    status.write_text('{"schema_version": 1}')
    result = subprocess.run(
        [sys.executable, "-c", _IN_A_DELETED_FOLDER, str(folder), "check", "--file", str(status)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 3  # read, and found invalid: the folder was not the problem
    assert "no longer exists" not in result.stderr
    assert "packs" in result.stderr


# --- time: a future-dated entry that blocks every change is named --------------------------


@pytest.mark.parametrize(
    "name", ["20310101T000000Z-000009-aaaaaaaa", "20200101T000000Z-000000-0a0a0a0a"]
)
def test_a_future_dated_history_entry_that_blocks_a_change_is_named_by_its_file(
    ws: Workspace, name: str
) -> None:
    assert ws.run("init", NB, "--by", "a", env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0
    future = {"at": "2031-01-01T00:00:00Z", "by": "x", "action": "set-notes", "changes": {}}
    future["notes"] = None
    place = layout.entry_place(f"{name}.yaml")
    (ws.root / H / place).parent.mkdir(exist_ok=True)
    (ws.root / H / place).write_text(dump(future))
    before = snapshot(ws.root)
    for args in (["set-notes", "n", NB], ["pack", "set", "H", "--status", "pending", NB]):
        result = ws.run(*args, "--by", "b", env={"SOURCE_DATE_EPOCH": str(EPOCH + 3600)})
        assert result.exit_code == 1
        assert f"{H}/{place}" in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert snapshot(ws.root) == before


def test_a_schema_1_manifest_ahead_of_the_clock_is_named(ws: Workspace) -> None:
    data = small_manifest()
    data["history"][0]["at"] = data["system"]["updated_at"] = "2031-01-01T00:00:00Z"
    ws.write(data)
    before = snapshot(ws.root)
    result = ws.run("set-notes", "n", NB, "--by", "b", env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert result.exit_code == 1
    assert f"({M})" in result.stderr
    assert snapshot(ws.root) == before


# --- pathological documents: a status.json with a key twice is unusable ------------------------


def _status_text() -> str:
    """A valid status.json (the backend in development, every pack installed)."""
    from valhalla_status.publishing.documents import status_document, to_json
    from valhalla_status.service import default_manifest

    return to_json(status_document(default_manifest(by="a")))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # Ready to a reader that keeps the last key, not ready to one that keeps the first.
        ('"backend_complete": false', '"backend_complete": false, "backend_complete": true'),
        # The same key, once spelled with an escape.
        ('"backend_complete": false', '"backend_complete": false, "backend\\u005fcomplete": true'),
        # Inside a pack.
        ('"status": "installed"', '"status": "pending", "status": "installed"'),
        # The whole list of packs twice.
        ('"packs": [', '"packs": [], "packs": ['),
    ],
)
def test_a_status_document_with_a_key_twice_is_unusable_never_read_either_way(
    tmp_path: Path, old: str, new: str
) -> None:
    from click.testing import CliRunner

    from valhalla_status.cli import main
    from valhalla_status.client import InvalidStatus, StatusClient

    text = _status_text()
    assert old in text
    path = tmp_path / "status.json"
    path.write_text(text.replace(old, new, 1))
    result = CliRunner().invoke(main, ["check", "--file", str(path)])
    assert result.exit_code == 3, result.output
    assert "appears twice" in result.output
    with pytest.raises(InvalidStatus, match="appears twice"):
        StatusClient(str(path)).fetch()


# --- an unreadable history file is named, not only its folder -------------------------------


@pytest.mark.parametrize(
    "args", [["history"], ["show"], ["validate"], ["build"], ["set-notes", "x", NB, "--by", "b"]]
)
def test_an_unreadable_history_file_is_named_by_every_reader(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    from valhalla_status.storage import files

    assert ws.run("init", NB, "--by", "a", env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0
    (name,) = entry_files(ws.root / H)
    place = layout.entry_place(name)
    real_open = os.open

    def denied(path: object, *rest: object, **options: object) -> int:
        # What chmod 000 does for anyone but root (who reads every file regardless).
        if os.fspath(path).endswith(name):  # type: ignore[call-overload]
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *rest, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(files.os, "open", denied)
    before = snapshot(ws.root)
    result = ws.run(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH + 60)})
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert f"{H}/{place}: Permission denied" in result.stderr, result.stderr
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("zeros", ["0", "0000", "0" * 30])
def test_a_source_date_epoch_with_leading_zeros_is_the_time_it_says(
    ws: Workspace, zeros: str
) -> None:
    assert ws.run("init", NB, "--by", "a", env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0
    result = ws.run(
        "set-notes", "z", NB, "--by", "b", env={"SOURCE_DATE_EPOCH": zeros + str(EPOCH + 60)}
    )
    assert result.exit_code == 0, result.output
    assert ws.run("history").stdout.startswith("2025-09-20 00:01 UTC")


# --- diff: a manifest that is a link or a submodule at a revision is said to be one -----------


def test_diff_says_when_the_manifest_at_a_revision_is_a_link_or_a_submodule(
    ws: Workspace, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("TOP-SECRET\n")
    who = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env = {**os.environ, **who, "GIT_COMMITTER_EMAIL": "t@x"}

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ws.root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    assert ws.run("init", NB, "--by", "a", env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0
    kept = ws.manifest.read_bytes()
    git("add", "-A")
    git("commit", "-qm", "init")
    ws.manifest.unlink()
    ws.manifest.symlink_to(secret)
    git("add", "-A")
    git("commit", "-qm", "link")
    git("rm", "-q", "--cached", M)
    git("update-index", "--add", "--cacheinfo", f"160000,{git('rev-parse', 'HEAD')},{M}")
    git("commit", "-qm", "submodule")
    ws.manifest.unlink()
    ws.manifest.write_bytes(kept)
    for revision, what in (("HEAD~1", "a symbolic link"), ("HEAD", "a submodule")):
        result = ws.run("diff", revision)
        assert result.exit_code == 1, result.output
        assert result.stderr == (
            f"error: {revision}:{M} is {what} at that revision, not a manifest file\n"
        )
    assert ws.run("diff", "HEAD~2").exit_code == 0


# --- outside text: a folder name never drives the terminal through migrate's report -----------


@pytest.mark.parametrize("name", ["M\x1b]0;PWNED\x07", "M\u009b31m", "M\u202etxt.yaml", "M\x7f"])
def test_migrate_reports_a_manifest_path_with_control_characters_escaped(
    ws: Workspace, name: str
) -> None:
    folder = ws.root / name
    folder.mkdir()
    (folder / "valhalla.yaml").write_text(dump(small_manifest()))
    result = ws.run("--manifest", f"{name}/valhalla.yaml", "migrate", "--by", "a")
    assert result.exit_code == 0, result.output
    assert "Migrated" in result.stderr
    assert not any(c in result.stderr for c in "\x1b\x07\u009b\u202e\x7f"), repr(result.stderr)


# --- init's .gitignore: only a regular file is read and replaced ------------------------------


def tool_in(work: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    """The tool run as a process in the folder ``work``."""
    return subprocess.run(
        [sys.executable, "-m", "valhalla_status", *args],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,  # a guard against hanging the suite, not a timed assertion
    )


@pytest.mark.parametrize(
    "kind", ["fifo", "link", "dangling link", "folder", "device link", "not utf-8"]
)
def test_init_never_waits_on_reads_through_or_replaces_a_gitignore_that_is_no_regular_file(
    tmp_path: Path, kind: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / ".git").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    ignore = work / ".gitignore"
    if kind == "fifo":
        os.mkfifo(ignore)
    elif kind == "link":
        ignore.symlink_to(secret)
    elif kind == "dangling link":
        ignore.symlink_to(tmp_path / "made-outside")
    elif kind == "folder":
        ignore.mkdir()
    elif kind == "not utf-8":
        ignore.write_bytes(b"site\xff/\n")
    else:
        ignore.symlink_to("/dev/zero")
    result = tool_in(work, "init", "--by", "a")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: .gitignore")
    assert result.stderr.endswith("; add the site to it by hand\n")
    assert result.stderr.count("\n") == 1
    assert sorted(os.listdir(work)) == [".git", ".gitignore"]  # refused before any write
    assert secret.read_text() == "TOP-SECRET\n"
    assert not (tmp_path / "made-outside").exists()
    assert os.path.islink(ignore) == ("link" in kind)
    if not ignore.is_symlink() and ignore.is_file():
        assert b"TOP-SECRET" not in ignore.read_bytes()


@pytest.mark.parametrize("command", [["init", "--by", "a"], ["migrate", "--by", "a"]])
def test_a_manifest_path_a_gitignore_cannot_hold_is_refused_before_any_write(
    tmp_path: Path, command: list[str]
) -> None:
    work = tmp_path / "work"
    folder = work / os.fsdecode(b"status\xff")
    folder.mkdir(parents=True)
    (work / ".git").mkdir()
    if command[0] == "migrate":
        (folder / "valhalla.yaml").write_text(dump(small_manifest()))
    before = snapshot(work)

    result = tool_in(work, "--manifest", b"status\xff/valhalla.yaml", *command)

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "error: .gitignore: a path of the manifest or the site is not UTF-8 text, which a "
        ".gitignore holds; use a path that is\n"
    )
    assert snapshot(work) == before


# --- what the tool publishes, its own check reads back ----------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "9" * 300 + ".0.0"),
        ("version", "1.0.0-" + "a." * 200 + "z"),
        ("extra", {"big": int("7" * 150)}),
        ("extra", {"deep": [{"negative": -int("1" * 101)}]}),
    ],
)
def test_a_manifest_value_the_status_reader_would_refuse_is_refused_when_read_or_written(
    ws: Workspace, field: str, value: object
) -> None:
    data = small_manifest()
    data["system"][field] = value
    ws.write(data)
    before = snapshot(ws.root)
    for args in (["validate"], ["build"]):
        result = ws.run(*args)
        assert result.exit_code == 1, result.output
        assert f"system.{field}:" in result.stderr
    assert snapshot(ws.root) == before
    if field == "version":
        data["system"][field] = "1.0.0"
        ws.write(data)
        result = ws.run("set-version", str(value), "--force", NB, "--by", "a")
        assert result.exit_code == 1, result.output
        assert ws.read()["system"]["version"] == "1.0.0"


def test_the_longest_values_the_manifest_takes_are_read_back_by_check(ws: Workspace) -> None:
    data = small_manifest()
    data["system"]["version"] = "9" * 250 + ".0.0"
    data["system"]["extra"] = {"big": int("7" * 100), "small": -int("1" * 100)}
    ws.write(data)
    assert ws.run("build").exit_code == 0
    result = ws.run("check")
    assert result.exit_code == 1, result.output  # read: not ready (backend in development)
    assert "not ready" in result.stderr


# --- an option given twice: the later one wins, and the message names the folder used ---------


def test_a_site_given_twice_uses_the_later_one_and_names_it(ws: Workspace) -> None:
    assert ws.run("init", NB, "--by", "a", env={"SOURCE_DATE_EPOCH": str(EPOCH)}).exit_code == 0
    result = ws.run("--site", "first", "--site", "second", "build")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("second: built")
    assert (ws.root / "second" / "index.html").is_file()
    assert not (ws.root / "first").exists()


# --- serve: an absolute-form target no URL parser takes is a 400, never a dropped connection -


@pytest.mark.parametrize(
    "target",
    [b"http://[::1/x", b"http://[zz]/x", b"http://[v1.x/"],
)
def test_serve_answers_400_to_an_absolute_target_with_a_broken_host(
    ws: Workspace, target: bytes
) -> None:
    import socket
    import threading

    from valhalla_status.readers.serve import make_server

    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    log: list[str] = []
    server = make_server(str(ws.root / "site"), "127.0.0.1", 0, log.append)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()

    def exchange(request: bytes) -> bytes:
        with socket.create_connection(server.server_address[:2], timeout=30) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer

    try:
        answer = exchange(b"GET " + target + b" HTTP/1.1\r\n\r\n")
        assert answer.split(b" ", 2)[1] == b"400", answer[:80]
        assert exchange(b"GET /status.json HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 ")
        assert not any("request failed" in line for line in log), log
    finally:
        server.shutdown()
        server.server_close()


# --- pathological documents: a too-deep extra is located, without the validator's own tags ----


@pytest.mark.parametrize("depth", [300, 1000])
def test_an_extra_nested_too_deeply_is_one_located_line_without_internal_tags(
    ws: Workspace, depth: int
) -> None:
    data = small_manifest()
    data["system"]["extra"] = {"placeholder": 1}
    block = "".join("  " * (i + 2) + "a:\n" for i in range(depth)) + "  " * (depth + 2) + "b: 1"
    ws.write(dump(data).replace("    placeholder: 1", block))
    before = snapshot(ws.root)
    result = ws.run("validate")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{M}:")
    assert len(line) < 150, line[:300]
    assert line.endswith("nesting depth") or (
        ": system.extra.a.a.a." in line and line.endswith(": nested too deeply to be read")
    ), line
    assert ".dict" not in line and "Traceback" not in line
    assert snapshot(ws.root) == before
