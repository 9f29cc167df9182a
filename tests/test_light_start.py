"""The light commands start light: real processes, and the modules they import.

``--help``, ``--version`` and ``check`` (a deploy gate, run often) must not load pydantic, YAML,
Jinja2 or the file lock, nor the package's modules that do (the manifest, the models, the
documents, the site). Each case runs ``python -X importtime -m valhalla_status`` and reads the
list of every module the process imported.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clean_env
from status_server import closed_port_url, manifest, serve, write_status

HEAVY = (
    "pydantic",
    "pydantic_core",
    "yaml",
    "jinja2",
    "markupsafe",
    "tuf",
    "securesystemslib",
    "cryptography",
    "urllib3",
)
# What every command may load of the package: the click layer and what it needs at the top.
BASE = {"valhalla_status", "cli", "errors", "rules", "rules.text", "rules.formats"}
# What reading a status.json adds (the client is standard library only).
CHECK = BASE | {"client", "readers", "readers.check", "storage", "storage.files"}


def imported(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The finished process and every module it imported, in order."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "valhalla_status", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, re.findall(r"^import time:.*\|\s*(\S+)$", done.stderr, re.MULTILINE)


def ours(modules: list[str]) -> set[str]:
    return {
        "valhalla_status" if m == "valhalla_status" else m.removeprefix("valhalla_status.")
        for m in modules
        if m.split(".")[0] == "valhalla_status"
    }


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding manifest/ (so the site is found) and site/status.json (ready)."""
    (tmp_path / "manifest").mkdir()
    (tmp_path / "manifest" / "valhalla.yaml").write_text("not read by check\n")
    write_status(tmp_path / "site" / "status.json", manifest(complete=True))
    return tmp_path


@pytest.mark.parametrize(
    ("args", "code", "allowed"),
    [
        (["--help"], 0, BASE),
        (["--version"], 0, BASE),
        (["check", "--help"], 0, BASE),
        (["pack", "--help"], 0, BASE),
        (["check", "--file", "site/status.json"], 0, CHECK),
        (["check", "--file", "site/status.json", "--json", "--all-installed"], 0, CHECK),
        (["check", "--file", "site/status.json", "--min-version", "2.0.0", "K"], 2, CHECK),
        (["check", "--file", "site/status.json", "--min-version", "2.0.0"], 1, CHECK),
        (["check", "--file", "missing.json"], 3, CHECK),
        (["check", "--file", "site/status.json", "--min-version", "1.0"], 1, CHECK),
        (["check"], 0, CHECK | {"workspace"}),
        (["--site", "site", "check", "--require-installed", "K,H"], 0, CHECK | {"workspace"}),
    ],
)
def test_check_and_help_never_load_pydantic_yaml_jinja_or_the_manifest_code(
    site: Path, args: list[str], code: int, allowed: set[str]
) -> None:
    done, modules = imported(site, *args)
    assert done.returncode == code, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert heavy(modules) == []
    assert ours(modules) <= allowed, sorted(ours(modules) - allowed)


@pytest.mark.slow
def test_check_over_http_loads_the_http_stack_and_nothing_heavy(site: Path) -> None:
    with serve(site / "site") as running:
        done, modules = imported(site, "check", "--url", running.url + "/")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "http.client" in modules
    assert (heavy(modules), ours(modules) <= CHECK) == ([], True)
    done, modules = imported(site, "check", "--url", closed_port_url(), "--timeout", "1")
    assert done.returncode == 3, done.stderr[-2000:]
    assert (heavy(modules), ours(modules) <= CHECK) == ([], True)


@pytest.mark.parametrize("args", [["check", "--file", "site/status.json"], ["check"]])
def test_a_check_of_a_file_loads_neither_the_http_stack_nor_pathlib(
    site: Path, args: list[str]
) -> None:
    done, modules = imported(site, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [m for m in modules if m.split(".")[0] in ("urllib", "http", "pathlib")] == []


def test_a_mutating_command_does_load_the_manifest_code(site: Path) -> None:
    """The counter-check: the listing does see heavy imports when a command makes them."""
    done, modules = imported(site, "validate")
    assert done.returncode == 1  # the manifest is no YAML mapping
    assert "yaml" in [m.split(".")[0] for m in modules]
    assert {"manifest", "models"} <= ours(modules)
