"""What the entries were read as, kept in the git folder, changes nothing a full read says.

``validate``, ``build`` and the other commands that read the whole history keep each valid
entry's fields under the SHA-256 of its file's bytes, and do not parse bytes they read before.
Whatever is kept, damaged or from another version of the tool, the answers are those of a
read from nothing; an entry edited in place is read again; and what is kept never outgrows
the history.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import Clone, Team, run_tool, snapshot

from valhalla_status.storage import entrycache

HISTORY = "manifest/valhalla.history"


def stores(clone: Clone) -> list[Path]:
    return sorted((clone.root / ".git" / "valhalla-status").glob("entries-*.json"))


def kept(clone: Clone) -> dict[str, list[object]]:
    [store] = stores(clone)
    head, _, body = store.read_bytes().partition(b"\n")
    assert json.loads(head)["sha256"] == hashlib.sha256(body).hexdigest()
    return dict(json.loads(body))


def digests(clone: Clone) -> set[str]:
    files = (clone.root / HISTORY).glob("*/*.yaml")
    return {hashlib.sha256(file.read_bytes()).hexdigest() for file in files}


def answers(clone: Clone) -> list[tuple[int, str, str]]:
    """What the commands that read every entry say, and the site they build (from nothing)."""
    shutil.rmtree(clone.root / "site", ignore_errors=True)
    done = [clone.run(*args) for args in (("validate",), ("fmt", "--check"), ("build",))]
    site = sorted(snapshot(clone.root / "site").items())
    return [(r.exit_code, r.stdout, r.stderr) for r in done] + [(0, repr(site), "")]


@pytest.fixture
def alice(team: Team) -> Clone:
    """A clone with a few changes of each kind, committed."""
    clone = team.alice
    clone.change("pack", "set", "K", "--status", "deprecated", "--notes", "gone ✓", hour=1)
    clone.change("set-version", "2.0.0", hour=2)
    clone.change("complete", "--notes", "all in", hour=3)
    clone.commit("changes", hour=3)
    clone.change("pack", "set", "L", "--status", "experimental", hour=4)
    return clone


def test_answers_with_what_was_kept_equal_answers_from_nothing(alice: Clone) -> None:
    first = answers(alice)
    assert kept(alice).keys() == digests(alice)
    assert answers(alice) == first
    for store in stores(alice):
        store.unlink()
    assert answers(alice) == first


def test_an_entry_read_before_is_not_parsed_again(alice: Clone) -> None:
    alice.run("validate")
    [store] = stores(alice)
    entries = kept(alice)
    for fields in entries.values():
        fields[1] = "kept"  # the author, as the store says it
    body = json.dumps(entries).encode()
    head, _, _ = store.read_bytes().partition(b"\n")
    said = {**json.loads(head), "sha256": hashlib.sha256(body).hexdigest()}
    store.write_bytes(json.dumps(said).encode() + b"\n" + body)
    assert {entry["by"] for entry in alice.history()} == {"alice"}  # the reads do not use it
    assert alice.run("validate").exit_code == 0
    alice.run("build")
    published = json.loads((alice.root / "site" / "history.json").read_text())
    assert {entry["by"] for entry in published["history"]} == {"kept"}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut short"),
        pytest.param(lambda data: b"not json\n" + data, id="not json"),
        pytest.param(lambda data: data.replace(b'"alice"', b'"kept!"'), id="body edited"),
        pytest.param(lambda data: data.replace(b'"format": 1', b'"format": 0'), id="old format"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b'{"format": 1}\n{}', id="no code digest"),
    ],
)
def test_a_damaged_store_is_read_again(alice: Clone, damage: object) -> None:
    expected = answers(alice)
    [store] = stores(alice)
    assert callable(damage)
    store.write_bytes(damage(store.read_bytes()))
    assert answers(alice) == expected
    assert kept(alice).keys() == digests(alice)


def test_another_version_of_the_tool_reads_everything_again(
    alice: Clone, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = answers(alice)
    [store] = stores(alice)
    before = store.read_bytes()
    monkeypatch.setattr(entrycache, "code_digest", lambda: "another version")
    assert answers(alice) == expected
    head, _, body = store.read_bytes().partition(b"\n")
    assert json.loads(head)["code"] == "another version"
    assert body == before.partition(b"\n")[2]


def test_an_entry_edited_in_place_is_read_again(alice: Clone) -> None:
    assert alice.run("validate").exit_code == 0
    [file] = [f for f in (alice.root / HISTORY).glob("*/*.yaml") if b"2.0.0" in f.read_bytes()]
    place = file.relative_to(alice.root).as_posix()
    file.write_bytes(file.read_bytes().replace(b"set-version", b"set-versoin"))
    error = alice.fails("validate")
    assert f"{place}:3: action: 'set-versoin' is not one of init" in error
    file.write_bytes(file.read_bytes().replace(b"set-versoin", b"set-version"))
    file.write_bytes(file.read_bytes().replace(b"by: alice", b"by: mallory"))
    assert f"{place}: edited after it was recorded" in alice.fails("validate")


def test_an_entry_renamed_to_another_time_is_refused_whether_read_before_or_not(
    alice: Clone,
) -> None:
    assert alice.run("validate").exit_code == 0  # every entry read, and kept
    [file] = [f for f in (alice.root / HISTORY).glob("*/*.yaml") if b"2.0.0" in f.read_bytes()]
    made, rest = file.name[:16], file.name[16:]
    renamed = file.with_name("20201208T010000Z" + rest)
    file.rename(renamed)
    place = renamed.relative_to(alice.root).as_posix()
    said = (
        f"{place}: named for 20201208T010000Z but made at "
        f"{made[:4]}-{made[4:6]}-{made[6:11]}:{made[11:13]}:{made[13:]} (its `at`); a recorded "
        f"change keeps the name it was recorded with: put that back, or name the file "
        f"{file.name}"
    )
    assert said in alice.fails("validate")
    for store in stores(alice):
        store.unlink()
    assert said in alice.fails("validate")
    renamed.rename(file)
    assert alice.run("validate").exit_code == 0


def test_what_is_kept_never_outgrows_the_history(alice: Clone) -> None:
    alice.run("validate")
    assert kept(alice).keys() == digests(alice)
    alice.change("init", "--force", hour=5)
    alice.run("validate")
    assert len(digests(alice)) == 1
    assert kept(alice).keys() == digests(alice)


def test_nothing_is_kept_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    clone = Clone(tmp_path)
    clone.change("init", hour=0)
    clone.change("pack", "set", "K", "--status", "pending", hour=1)
    assert clone.run("validate").exit_code == 0
    assert not [path for path in tmp_path.rglob("entries-*.json")]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_named_pipe_in_place_of_what_is_kept_is_never_waited_on(alice: Clone) -> None:
    alice.run("validate")
    alice.run("summary")
    folder = alice.root / ".git" / "valhalla-status"
    [landings] = folder.glob("landings-*.json")
    key = landings.name.removeprefix("landings-")
    expected = [run_tool(alice.root, *args).stdout for args in (("summary",), ("validate",))]
    for kind in ("effects", "entries", "landings", "recent"):
        path = folder / f"{kind}-{key}"
        path.unlink(missing_ok=True)
        os.mkfifo(path)
    done = [run_tool(alice.root, *args, timeout=30) for args in (("summary",), ("validate",))]
    assert [(r.returncode, r.stdout) for r in done] == [(0, expected[0]), (0, expected[1])]
