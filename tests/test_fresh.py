"""An up-to-date site is confirmed from the build record, and anything that changes the output
or touches the site means a real build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Workspace, clean_env, small_manifest

# Runs `valhalla-status build` in a fresh interpreter and reports what it imported.
_PROBE = (
    "import sys\n"
    "from valhalla_status.cli import main\n"
    "try:\n"
    "    main(['build'], standalone_mode=False)\n"
    "finally:\n"
    "    print(' '.join(m for m in ('pydantic', 'jinja2', 'yaml') if m in sys.modules))\n"
)


def _build_in_process(root: Path) -> tuple[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip(), result.stderr.strip()


def test_unchanged_site_is_confirmed_without_pydantic_or_jinja(ws: Workspace) -> None:
    ws.write(small_manifest())
    imported, message = _build_in_process(ws.root)
    assert message == "site: built (41 files)"
    assert imported == "pydantic jinja2 yaml"
    imported, message = _build_in_process(ws.root)
    assert message == "site: already up to date (41 files)"
    assert imported == ""


def test_a_tampered_or_missing_file_is_rebuilt(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    page = (ws.root / "site" / "index.html").read_bytes()
    (ws.root / "site" / "index.html").write_bytes(page.replace(b"Valhalla", b"Hacked!!"))
    (ws.root / "site" / "packs" / "h.json").unlink()
    (ws.root / "site" / "extra.txt").write_text("stray")
    result = ws.run("build")
    assert result.stderr == "site: built (41 files)\n"
    assert (ws.root / "site" / "index.html").read_bytes() == page
    assert (ws.root / "site" / "packs" / "h.json").is_file()
    assert not (ws.root / "site" / "extra.txt").exists()
    assert ws.run("build").stderr == "site: already up to date (41 files)\n"


def test_other_inputs_mean_a_real_build(ws: Workspace, tmp_path: Path) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    result = ws.run("build", "--base-url", "https://status.example.com/")
    assert result.stderr == "site: built (41 files)\n"
    assert "https://status.example.com/feed.xml" in (ws.root / "site" / "feed.xml").read_text()

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "404.html").write_text("<!doctype html><title>gone</title>\n")
    assert ws.run("build", "--templates", str(templates)).stderr == "site: built (41 files)\n"
    assert ws.run("build", "--templates", str(templates)).stderr == (
        "site: already up to date (41 files)\n"
    )
    (templates / "404.html").write_text("<!doctype html><title>moved</title>\n")
    assert ws.run("build", "--templates", str(templates)).stderr == "site: built (41 files)\n"
    assert (ws.root / "site" / "404.html").read_text() == "<!doctype html><title>moved</title>\n"


def test_a_hand_edit_of_the_manifest_is_built(ws: Workspace) -> None:
    data = small_manifest()
    ws.write(data)
    assert ws.run("build").exit_code == 0
    data["system"]["version"] = "2.0.0"
    ws.write(data)
    assert ws.run("build").stderr == "site: built (41 files)\n"
    assert '"version": "2.0.0"' in (ws.root / "site" / "status.json").read_text()


def test_without_the_cache_every_build_renders(ws: Workspace) -> None:
    ws.write(small_manifest())
    env = {"VALHALLA_NO_CACHE": "1"}
    assert ws.run("build", env=env).stderr == "site: built (41 files)\n"
    (ws.root / "site" / "summary.json").write_text("{}\n")
    assert ws.run("build", env=env).stderr == "site: built (41 files)\n"
    assert ws.run("build", env=env).stderr == "site: already up to date (41 files)\n"


def test_leftovers_of_a_killed_build_are_cleared_even_when_the_site_is_current(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    staging = ws.root / ".site.valhalla-staging-00000000abcdef01"
    (staging / "packs").mkdir(parents=True)
    (staging / ".valhalla-site").write_bytes((ws.root / "site" / ".valhalla-site").read_bytes())
    (staging / "packs" / "H.json").write_text("{}\n")
    assert ws.run("build").stderr == "site: already up to date (41 files)\n"
    assert not staging.exists()


def test_without_a_home_directory_nothing_is_cached_in_the_working_folder(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VALHALLA_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # as without HOME or passwd
    ws.write(small_manifest())
    assert ws.run("show", "--json").exit_code == 0
    assert ws.run("build").stderr == "site: built (41 files)\n"
    assert sorted(p.name for p in ws.root.iterdir()) == [".site.lock", "manifest", "site"]
