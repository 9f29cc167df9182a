"""Shared fixtures: a workspace folder with a real manifest file, and the CLI run against it.

Manifests are built from small dicts (``small_manifest()``) dumped with ``yaml.safe_dump`` and
then edited as text, so each bad-input test shows exactly the bytes it feeds the tool.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from valhalla_status.cli import main
from valhalla_status.storage.layout import recorded_places

# 2025-09-20T00:00:00Z, the date of the examples in the docs.
EPOCH = 1758326400
EPOCH_TEXT = "2025-09-20T00:00:00Z"
# One day later.
EPOCH2 = EPOCH + 86400
EPOCH2_TEXT = "2025-09-21T00:00:00Z"

MANIFEST_REL = "manifest/valhalla.yaml"
LOCK_NAME = ".valhalla.yaml.lock"

_ENV_VARS = (
    "VALHALLA_MANIFEST",
    "VALHALLA_SITE",
    "VALHALLA_DEBUG",
    "VALHALLA_LOCK_TIMEOUT",
    "SOURCE_DATE_EPOCH",
)

_SMALL: dict[str, Any] = {
    "schema_version": 1,
    "system": {
        "name": "Valhalla",
        "description": "Valhalla professional capital markets system",
        "version": "1.0.0",
        "backend_complete": False,
        "notes": None,
        "updated_at": EPOCH_TEXT,
        "completed_at": None,
        "extra": {},
    },
    "packs": [
        {"id": "H", "name": "Analyst Essentials", "group": "Professional", "status": "installed"},
        {"id": "I", "name": "Reporter Premium", "group": "Professional", "status": "pending"},
        {
            "id": "S",
            "name": "Rollout Manager",
            "group": "System infrastructure",
            "status": "installed",
        },
    ],
    "history": [
        {"at": EPOCH_TEXT, "by": "alice", "action": "init", "changes": {}, "notes": None},
    ],
}


def small_manifest() -> dict[str, Any]:
    """A fresh copy of a small valid manifest (3 packs, I pending, one init entry)."""
    return copy.deepcopy(_SMALL)


def dump(data: Any) -> str:
    """YAML text of ``data`` as a person might write it (safe_dump, keys in given order)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of ``old``; fail loudly if it is not there exactly once."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), except manifest lock files.

    A lock file (``.<name>.lock``, empty, git-ignored) is how the writer takes its exclusive
    lock; it is the one file a refused mutation may leave behind.
    """
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not (path.name.startswith(".") and path.name.endswith(".lock")):
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def entry_files(folder: Path) -> dict[str, Path]:
    """The history entry files in the history folder ``folder``, as the tool finds them: entry
    name -> its file, in its subfolder (``1a/<name>``) or directly in the folder (where earlier
    versions wrote them); in the order of the names (their time, then their sequence)."""
    return {name: folder / place for name, place in sorted(recorded_places(folder).items())}


def other_files(folder: Path) -> list[str]:
    """The files in the history folder ``folder`` that are no entry file (pending, temporary,
    unknown…), by their path in it."""
    entries = set(entry_files(folder).values())
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if not path.is_dir() and path not in entries
    )


@dataclass
class Workspace:
    """A folder to run the CLI in, with the manifest at the default relative path."""

    root: Path
    runner: CliRunner

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_REL

    def write(self, content: str | bytes | dict[str, Any]) -> Path:
        """Write the manifest: text, raw bytes, or a dict (dumped with yaml.safe_dump)."""
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            content = dump(content)
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.manifest.write_bytes(content)
        return self.manifest

    def read(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.manifest.read_text(encoding="utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    def run(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        """Invoke ``valhalla-status ARGS`` in-process; stray exceptions propagate to pytest."""
        return self.runner.invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture(autouse=True)
def commits_dated_at_the_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Date the tests' git commits at EPOCH, before every change the tests make, so that a
    committed change lands at its own time; the landing tests date their commits themselves."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{EPOCH} +0000")
    monkeypatch.setenv("GIT_AUTHOR_DATE", f"@{EPOCH} +0000")


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A clean workspace: cwd is a fresh folder, no VALHALLA_* or SOURCE_DATE_EPOCH set."""
    for var in _ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    yield Workspace(root, CliRunner())


@pytest.fixture
def epoch(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pin the clock with SOURCE_DATE_EPOCH (2025-09-20T00:00:00Z)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    return EPOCH


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without VALHALLA_* / SOURCE_DATE_EPOCH, plus ``extra`` (for subprocesses)."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    env.update(extra)
    return env


def run_tool(
    cwd: Path,
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A real ``python -m valhalla_status ARGS`` process in ``cwd`` (killed if it hangs), in
    ``env`` (default: ``clean_env()``), running ``preexec_fn`` in the child before it starts."""
    return subprocess.run(
        [sys.executable, "-m", "valhalla_status", *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def tool_command(manifest: Path, site: Path, *args: str) -> list[str]:
    """The argv of a real ``python -m valhalla_status`` process on these files."""
    globals_ = ["--manifest", str(manifest), "--site", str(site)]
    return [sys.executable, "-m", "valhalla_status", *globals_, *args]


@contextmanager
def holding_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing), as another writer would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- a team on real git repositories: a bare remote and two clones ---------------------------

HOUR = 3600


def stamp(hour: float) -> str:
    return f"@{EPOCH + int(hour * HOUR)} +0000"


def iso(hour: float) -> str:
    from datetime import datetime, timezone

    moment = datetime.fromtimestamp(EPOCH + int(hour * HOUR), timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def human(hour: float) -> str:
    return iso(hour).replace("T", " ")[:16] + " UTC"


def git(cwd: Path, *args: str, hour: float = 0, check: bool = True) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_AUTHOR_DATE": stamp(hour),
        "GIT_COMMITTER_DATE": stamp(hour),
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


@dataclass
class Clone:
    root: Path

    def run(self, *args: str, hour: float = 0) -> Result:
        """The CLI as the clone's owner runs it: from the top of the clone."""
        env = {"SOURCE_DATE_EPOCH": str(EPOCH + int(hour * HOUR))}
        here = os.getcwd()
        os.chdir(self.root)
        try:
            return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        finally:
            os.chdir(here)

    def change(self, *args: str, hour: float) -> None:
        result = self.run(*args, "--no-build", "--by", self.root.name, hour=hour)
        assert result.exit_code == 0, result.output

    def commit(self, message: str, hour: float) -> None:
        git(self.root, "add", "-A", hour=hour)
        git(self.root, "commit", "-qm", message, hour=hour)

    def git(self, *args: str, hour: float = 0, check: bool = True) -> str:
        return git(self.root, *args, hour=hour, check=check)

    def json(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def history(self) -> list[dict[str, Any]]:
        """The whole history, newest first, as history.json publishes it."""
        return list(self.json("history", "--json", "--limit", "1000")["history"])

    def fails(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 1, result.output
        return result.stderr


@dataclass
class Team:
    remote: Path
    alice: Clone
    bob: Clone


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    """A bare remote holding a freshly initialised status repository (hour 0), cloned twice."""
    for var in ("VALHALLA_MANIFEST", "VALHALLA_SITE", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(var, raising=False)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(tmp_path, "clone", "-q", str(remote), "alice")
    alice = Clone(tmp_path / "alice")
    alice.git("checkout", "-q", "-b", "main")
    alice.change("init", hour=0)
    alice.commit("init", hour=0)
    alice.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(remote), "bob")
    return Team(remote, alice, Clone(tmp_path / "bob"))
