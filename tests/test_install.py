"""The wheel installs on a fresh machine: a new virtualenv (no system site-packages, so the
dependency list must be complete), ``pip install`` of the built wheel (not editable), then
``valhalla-status init``, ``show`` and ``build`` work there.

Slow (it builds a wheel and downloads the dependencies), so marked ``slow``; CI still runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import EPOCH, EPOCH_TEXT

ROOT = Path(__file__).resolve().parent.parent
# What the wheel is built from (a copy, so a build never touches the checkout).
SOURCES = ("pyproject.toml", "README.md", "valhalla_status", "templates")


def run(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_virtualenv_and_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VALHALLA_", "PYTHON", "PIP_")) and k != "VIRTUAL_ENV"
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    wheels = tmp_path / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source],
        tmp_path,
        env,
    )
    (wheel,) = wheels.glob("valhalla_status-*.whl")

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(fresh)
    python = fresh / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", wheel], tmp_path, env)

    # The package comes from the fresh venv's site-packages, not from this checkout.
    located = run(
        [python, "-c", "import valhalla_status, sys; print(valhalla_status.__file__)"],
        tmp_path,
        env,
    ).stdout.strip()
    assert Path(located).is_relative_to(fresh), located
    assert not Path(located).is_relative_to(ROOT)

    workdir = tmp_path / "ops"
    workdir.mkdir()
    env["SOURCE_DATE_EPOCH"] = str(EPOCH)
    script = fresh / "bin" / "valhalla-status"
    done = run([script, "init", "--no-build", "--by", "newcomer"], workdir, env)
    assert done.stderr == (
        "Created manifest/valhalla.yaml with 16 packs\n"
        ".gitignore: added the site folder, lock files and scratch files (7 patterns)\n"
    )
    done = run([script, "show"], workdir, env)
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "Valhalla 1.0.0: backend in development",
        "Valhalla professional capital markets system",
        "updated 2025-09-20 00:00 UTC",
        "16 packs: 16 installed, 0 pending, 0 deprecated, 0 experimental",
    ]
    assert lines[6].split() == ["H", "Analyst", "Essentials", "Professional", "installed"]
    assert len(lines) == 6 + 16
    done = run([python, "-m", "valhalla_status", "history"], workdir, env)
    folder = workdir / "manifest" / "valhalla.history"
    [entry] = (path for path in folder.rglob("*") if path.is_file())
    assert entry.relative_to(folder).as_posix() == f"{entry.name.split('-')[2][:2]}/{entry.name}"
    ident = entry.name.removesuffix(".yaml")  # the entry's id
    assert done.stdout == f"2025-09-20 00:00 UTC  {ident}  newcomer  init\n"
    assert f"at: '{EPOCH_TEXT}'" in entry.read_text(encoding="utf-8")

    # The README's first command ends with `build`: the templates ship inside the wheel.
    run([script, "build"], workdir, env)
    status = (workdir / "site" / "status.json").read_text(encoding="utf-8")
    assert status == run([script, "show", "--json"], workdir, env).stdout
    assert (workdir / "site" / "index.html").read_text(encoding="utf-8").endswith("</html>\n")
