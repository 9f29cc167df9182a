"""Crash safety of a schema_version 2 change, which writes two files: a history entry and the
main file. Real ``python -m valhalla_status`` processes are SIGKILLed at random moments and at
the moments their files appear. Afterwards a reader (without the lock) sees the old manifest or
the new one, each with its own history: the change and its entry, both or neither. The next
writer finishes or removes what the killed one left. ``VALHALLA_CRASH_TRIALS`` raises the count.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import entry_files, tool_command
from test_crash import environment, kill_at, kill_moments

from valhalla_status.manifest import load_manifest, write_manifest
from valhalla_status.models import HistoryEntry, Manifest
from valhalla_status.storage.layout import entry_place, history_dir, read_state

TRIALS = int(os.environ.get("VALHALLA_CRASH_TRIALS", "24"))
PACKS = 2_000
ENTRIES = 200

State = tuple[bytes, dict[str, bytes]]


def pack(i: int) -> dict[str, str]:
    return {"id": f"P{i:05d}", "name": f"Pack {i}", "group": f"G{i % 7}", "status": "installed"}


# What the init entry records: an init with changes starts from them (not the default packs),
# so that the history explains the main file.
CREATED = {
    "description": [None, "Crash test system"],
    **{f"packs.P{i:05d}": [None, pack(i)] for i in range(PACKS)},
}


def start_manifest() -> Manifest:
    return Manifest.model_validate(
        {
            "schema_version": 2,
            "system": {
                "name": "Valhalla",
                "description": "Crash test system",
                "version": "1.0.0",
                "backend_complete": False,
                "notes": None,
                "updated_at": "2025-01-01T00:00:00Z",
                "completed_at": None,
                "extra": {},
            },
            "packs": [pack(i) for i in range(PACKS)],
            "history": [
                {
                    "at": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                    "by": "setup",
                    "action": "init" if i == 0 else "set-notes",
                    "changes": CREATED if i == 0 else {"notes": [None, None]},
                    "notes": None if i == 0 else f"entry {i}",
                }
                for i in range(ENTRIES)
            ],
        }
    )


def files(manifest: Path) -> State:
    """Every file the manifest is made of, as they are on disk (hidden ones included), the
    history folder's by their path in it."""
    folder = history_dir(manifest)
    found = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    return manifest.read_bytes(), {place: found[place].read_bytes() for place in sorted(found)}


def restore(manifest: Path, state: State) -> None:
    folder = history_dir(manifest)
    shutil.rmtree(folder)
    folder.mkdir()
    for place, data in state[1].items():
        (folder / place).parent.mkdir(exist_ok=True)
        (folder / place).write_bytes(data)
    manifest.write_bytes(state[0])


def seen(manifest: Path) -> State:
    """What a reader without the lock sees: the main file and the history that counts, each
    entry by the path of its file in the history folder (a pending one's: where it goes)."""
    main, history = read_state(manifest, manifest.read_bytes)
    assert not history.unknown
    return main, {entry_place(name): raw for name, raw in sorted(history.entries.items())}


def hidden(manifest: Path) -> list[str]:
    folder = history_dir(manifest)
    names = [p.name for p in folder.rglob(".*")]
    return names + [n for n in os.listdir(manifest.parent) if ".tmp-" in n]


def kill_when_appearing(args: list[str], manifest: Path, delay: float) -> bool:
    """SIGKILL ``args`` once a pending or temporary file appears (+ ``delay`` s)."""
    process = subprocess.Popen(
        args, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    caught = False
    while process.poll() is None:
        if hidden(manifest):
            if delay:
                time.sleep(delay)
            caught = process.poll() is None
            process.kill()
            break
        time.sleep(0.0001)
    process.wait(timeout=120)
    return caught


@pytest.mark.slow
def test_a_change_killed_at_any_moment_leaves_the_change_and_its_entry_both_or_neither(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "manifest"
    folder.mkdir()
    manifest = folder / "valhalla.yaml"
    site = tmp_path / "site"
    write_manifest(manifest, start_manifest())
    old = files(manifest)
    assert len(old[1]) == ENTRIES
    mutate = tool_command(manifest, site, "pack", "set", "P01999", "--status", "pending",
                          "--notes", "crash", "--no-build", "--by", "crash")  # fmt: skip

    started = time.monotonic()
    reference = subprocess.run(mutate, env=environment(), capture_output=True, text=True)
    duration = time.monotonic() - started  # only to choose kill moments, never asserted
    assert reference.returncode == 0, reference.stderr
    new = files(manifest)
    assert new[0] != old[0]
    assert set(new[1]) - set(old[1]) and set(old[1]) < set(new[1])
    assert len(load_manifest(manifest).history) == ENTRIES + 1

    outcomes = {"old": 0, "new": 0}
    left = 0
    moments = [(d, False) for d in kill_moments(duration, TRIALS, seed=11)]
    rng = random.Random(12)
    moments += [(rng.choice([0, 0, 0.0005, 0.001, 0.003]), True) for _ in range(TRIALS // 2)]
    caught = 0
    for delay, aimed in moments:
        restore(manifest, old)
        if aimed:
            caught += kill_when_appearing(mutate, manifest, delay)
        else:
            kill_at(mutate, delay)
        after = seen(manifest)
        assert after in (old, new), f"main file and history disagree after a kill ({delay:.4f})"
        outcomes["old" if after == old else "new"] += 1
        left += bool(hidden(manifest))
        loaded = load_manifest(manifest)  # valid, whichever it is
        assert len(loaded.history) == ENTRIES + (after == new)
    print(
        f"\ncrash/layout: {len(moments)} kills ({TRIALS} at random over {duration * 1.25:.2f} s, "
        f"{TRIALS // 2} aimed at the files, {caught} caught them): {outcomes['old']} old, "
        f"{outcomes['new']} new; {left} left pending or temporary files"
    )
    assert outcomes["old"] > 0
    assert caught > 0

    # The next writer finishes (or removes) what was left, whatever it was.
    for delay, expected in ((0.0, old), (None, new)):
        restore(manifest, old)
        if delay is None:
            # Killed after the main file was replaced, before the rename: the entry is pending.
            restore(manifest, new)
            entry = Path(next(n for n in new[1] if n not in old[1]))
            digest = hashlib.sha256(new[0]).hexdigest()
            (history_dir(manifest) / entry).rename(
                history_dir(manifest) / f".pending-{digest}-{entry.name}"
            )
        assert seen(manifest) == expected
        done = subprocess.run(
            tool_command(manifest, site, "set-version", "9.0.0", "--no-build", "--by", "next"),
            env=environment(),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert hidden(manifest) == []
        history = load_manifest(manifest).history
        assert len(history) == len(expected[1]) + 1
        assert set(expected[1]) <= set(files(manifest)[1])


# --- fmt, killed at any moment ----------------------------------------------------------------

NOTED = 60


def hand_written_history(manifest: Path) -> set[str]:
    """A manifest whose history files were written by hand: entries not in canonical form, each
    named after its canonical text, with a seq that is not its place (as a merge of branches
    leaves them), and a main file without its header. Returns the entries' paths in the history
    folder."""
    from datetime import timedelta

    from valhalla_status.service import default_manifest

    start = default_manifest(by="setup", now=datetime(2025, 1, 1, tzinfo=timezone.utc))
    history = list(start.history)
    for i in range(1, NOTED + 1):
        history.append(
            HistoryEntry(
                at=history[0].at + timedelta(minutes=i),
                by="setup",
                action="set-notes",
                changes={"notes": [f"note {i - 1}" if i > 1 else None, f"note {i}"]},
                notes=f"note {i}",
            )
        )
    system = start.system.model_copy(update={"notes": f"note {NOTED}"})
    write_manifest(manifest, start.model_copy(update={"system": system, "history": history}))
    folder = history_dir(manifest)
    for name, path in list(entry_files(folder).items())[1:]:
        text = path.read_text()
        at, seq, rest = name.split("-")
        path.unlink()
        # the same hash: the same subfolder
        path.with_name(f"{at}-{int(seq) + 1000:06d}-{rest}").write_text(
            text.replace("by: ", "by:  ")
        )
    text = manifest.read_text()
    manifest.write_text(text[text.index("schema_version") :])
    return set(files(manifest)[1])


@pytest.mark.slow
def test_fmt_killed_at_any_moment_leaves_every_entry_recorded_exactly_once(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "manifest"
    folder.mkdir()
    manifest = folder / "valhalla.yaml"
    site = tmp_path / "site"
    names = hand_written_history(manifest)
    old = files(manifest)
    fmt = tool_command(manifest, site, "fmt")
    started = time.monotonic()
    reference = subprocess.run(fmt, env=environment(), capture_output=True, text=True)
    duration = time.monotonic() - started  # only to choose kill moments, never asserted
    assert reference.returncode == 0, reference.stderr
    formatted = files(manifest)
    assert set(formatted[1]) == names, "fmt keeps every entry's name"
    assert formatted != old

    moments = [(d, False) for d in kill_moments(duration, TRIALS // 2, seed=21)]
    rng = random.Random(22)
    moments += [(rng.choice([0, 0.0005, 0.001, 0.003]), True) for _ in range(TRIALS // 4)]
    caught = left = 0
    for delay, aimed in moments:
        restore(manifest, old)
        if aimed:
            caught += kill_when_appearing(fmt, manifest, delay)
        else:
            kill_at(fmt, delay)
        left += bool(hidden(manifest))
        on_disk = {p for p in files(manifest)[1] if not Path(p).name.startswith(".")}
        assert on_disk == names, f"entries after a kill at {delay:.4f} s"
        assert set(seen(manifest)[1]) == names
        done = subprocess.run(
            tool_command(manifest, site, "set-version", "9.0.0", "--no-build", "--by", "next"),
            env=environment(),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert hidden(manifest) == []
        assert len(set(files(manifest)[1]) - names) == 1
        checked = subprocess.run(
            tool_command(manifest, site, "validate"), env=environment(), capture_output=True
        )
        assert checked.returncode == 0, checked.stderr
    print(
        f"\ncrash/fmt: {len(moments)} kills ({TRIALS // 2} at random over {duration * 1.25:.2f} s, "
        f"{TRIALS // 4} aimed at the files, {caught} caught them); {left} left pending or "
        "temporary files"
    )
    assert caught > 0
