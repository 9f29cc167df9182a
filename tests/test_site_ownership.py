"""A build replaces only what it made: the folder it builds into carries its mark, its scratch
folders carry names no one else picks, and the site holds exactly the files it writes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Workspace, run_tool, small_manifest

from valhalla_status.publishing.sitefolder import SITE_MARK
from valhalla_status.site import list_files

Entry = bytes | str


def tree(folder: Path) -> dict[str, Entry]:
    """Everything under ``folder``: files by bytes, folders and links by what they are."""
    found: dict[str, Entry] = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root, name)
            key = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = path.read_bytes()
    return found


def initialised(ws: Workspace) -> None:
    result = ws.run("init")
    assert result.exit_code == 0, result.output


def refused(ws: Workspace, *args: str) -> str:
    """Run ``ARGS``; it must exit 1 with one line and leave the workspace exactly as it was."""
    before = tree(ws.root)
    result = ws.run(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert tree(ws.root) == before
    return result.stderr


# --- the folder built into -----------------------------------------------------------------


@pytest.mark.slow
def test_the_reported_data_loss_cannot_happen_in_a_real_process(ws: Workspace) -> None:
    assert run_tool(ws.root, "init").returncode == 0
    (ws.root / "status.json").write_text("{}\n")
    (ws.root / "important.py").write_text("x\n")
    before = tree(ws.root)
    result = run_tool(ws.root, "--site", ".", "build")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: refusing to replace .: it is the current folder; choose a folder of its own\n"
    )
    assert tree(ws.root) == before
    shutil.copy(ws.root / "site" / "status.json", ws.root / "manifest" / "status.json")
    before = tree(ws.root)
    result = run_tool(ws.root, "--site", "manifest", "build")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: refusing to replace manifest: it holds the manifest manifest/valhalla.yaml\n"
    )
    assert tree(ws.root) == before


def test_a_build_never_replaces_the_current_folder_even_when_it_holds_a_status_json(
    ws: Workspace,
) -> None:
    initialised(ws)
    (ws.root / "status.json").write_text("{}\n")
    (ws.root / "important.py").write_text("x\n")
    message = refused(ws, "--site", ".", "build")
    assert "the current folder" in message
    assert (ws.root / "important.py").read_text() == "x\n"
    assert (ws.root / "manifest" / "valhalla.yaml").is_file()


def test_a_build_never_replaces_the_folder_that_holds_the_manifest(ws: Workspace) -> None:
    initialised(ws)
    shutil.copy(ws.root / "site" / "status.json", ws.root / "manifest" / "status.json")
    message = refused(ws, "--site", "manifest", "build")
    assert message.startswith("error: refusing to replace manifest: ")
    assert (ws.root / "manifest" / "valhalla.yaml").is_file()


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda f: (f / "status.json").write_text("{}\n"), id="a-status-json"),
        pytest.param(lambda f: (f / "notes.txt").write_text("mine\n"), id="a-user-file"),
        pytest.param(lambda f: (f / "sub").mkdir(), id="an-empty-subfolder"),
        pytest.param(lambda f: (f / SITE_MARK).write_text(""), id="an-empty-mark"),
        pytest.param(lambda f: (f / SITE_MARK).write_text("mine\n"), id="a-mark-of-other-text"),
        pytest.param(lambda f: (f / SITE_MARK).mkdir(), id="a-mark-that-is-a-folder"),
    ],
)
def test_a_build_never_replaces_a_non_empty_folder_it_did_not_mark(
    ws: Workspace, plant: Callable[[Path], object]
) -> None:
    ws.write(small_manifest())
    folder = ws.root / "public"
    folder.mkdir()
    plant(folder)
    message = refused(ws, "--site", "public", "build")
    assert message.startswith("error: refusing to replace public: ")
    assert "valhalla-status" in message


def test_a_mark_that_is_a_link_to_a_real_mark_does_not_count(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    folder = ws.root / "public"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    (folder / SITE_MARK).symlink_to(ws.root / "site" / SITE_MARK)
    refused(ws, "--site", "public", "build")


@pytest.mark.parametrize(
    ("site", "reason"),
    [
        (".", "the current folder"),
        ("..", "holds the current folder"),
        ("../..", "holds the current folder"),
        ("/", "root"),
    ],
)
def test_a_build_never_replaces_the_current_folder_or_a_folder_above_it(
    ws: Workspace, site: str, reason: str
) -> None:
    ws.write(small_manifest())
    before = tree(ws.root)
    result = ws.run("--site", site, "build")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert reason in result.stderr
    assert tree(ws.root) == before


def test_a_marked_site_that_holds_the_manifest_or_the_templates_is_refused(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    shutil.copy(ws.manifest, site / "valhalla.yaml")
    message = refused(ws, "--manifest", "site/valhalla.yaml", "build")
    assert "it holds the manifest" in message
    (site / "valhalla.yaml").unlink()
    (site / "templates").mkdir()
    (site / "templates" / "404.html").write_text("<!doctype html><title>gone</title>\n")
    message = refused(ws, "build", "--templates", "site/templates")
    assert "it holds the templates" in message


@pytest.mark.parametrize("existing", ["missing", "empty"])
def test_a_missing_or_empty_folder_is_built_into_and_marked(ws: Workspace, existing: str) -> None:
    ws.write(small_manifest())
    folder = ws.root / "out" / "site"
    if existing == "empty":
        folder.mkdir(parents=True)
    result = ws.run("--site", "out/site", "build")
    assert result.exit_code == 0, result.output
    assert (folder / SITE_MARK).is_file()
    assert (folder / "status.json").is_file()
    assert ws.run("--site", "out/site", "build", "--check").exit_code == 0


def test_a_site_without_its_mark_is_stale_and_refused(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    (ws.root / "site" / SITE_MARK).unlink()
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    assert f"missing: {SITE_MARK}" in result.stderr
    refused(ws, "build")


# --- the folders beside the site -----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "site.old-2024",
        "site.old-keep",
        "site.staging-1-deadbeef",
        ".site.valhalla-old-0123456789abcdef",  # the build's naming, but not its mark
        ".site.valhalla-staging-0123456789abcdef",
        "site.bak",
    ],
)
def test_a_build_never_touches_a_folder_beside_the_site(ws: Workspace, name: str) -> None:
    ws.write(small_manifest())
    beside = ws.root / name
    beside.mkdir()
    (beside / "b.txt").write_text("keep\n")
    # The first build (no site yet), a rebuild with changes, and an up-to-date build.
    assert ws.run("build").exit_code == 0
    assert tree(beside) == {"b.txt": b"keep\n"}
    assert (ws.root / "site" / SITE_MARK).is_file()
    assert "b.txt" not in list_files(ws.root / "site")
    assert ws.run("pack", "set", "I", "--status", "installed", "--by", "bob").exit_code == 0
    assert ws.run("build").exit_code == 0
    assert tree(beside) == {"b.txt": b"keep\n"}
    assert ws.run("build", "--check").exit_code == 0


def test_folders_beside_the_site_do_not_make_an_up_to_date_site_rebuild(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    for name in ("site.old-2024", ".site.valhalla-old-0123456789abcdef", "site.staging-1-2"):
        (ws.root / name).mkdir()
        (ws.root / name / "b.txt").write_text("keep\n")
    result = ws.run("build")
    assert result.stderr.startswith("site: already up to date")
    for name in ("site.old-2024", ".site.valhalla-old-0123456789abcdef", "site.staging-1-2"):
        assert tree(ws.root / name) == {"b.txt": b"keep\n"}


def test_scratch_folders_are_hidden_and_gone_after_the_build(ws: Workspace) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    assert ws.run("pack", "set", "I", "--status", "installed", "--by", "bob").exit_code == 0
    assert sorted(p.name for p in ws.root.iterdir()) == [".site.lock", "manifest", "site"]


def test_a_killed_builds_marked_leftovers_are_cleared_and_a_half_swapped_site_restored(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    before = tree(site)
    # Killed between the two renames of the fallback swap: the old site waits beside.
    site.rename(ws.root / ".site.valhalla-old-00112233aabbccdd")
    staging = ws.root / ".site.valhalla-staging-44556677eeff0011"
    staging.mkdir()
    (staging / SITE_MARK).write_bytes(before[SITE_MARK])  # type: ignore[arg-type]
    (staging / "status.json").write_text("{")
    empty = ws.root / ".site.valhalla-staging-8899aabbccddeeff"  # killed right after mkdir
    empty.mkdir()
    result = ws.run("build")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("site: already up to date")
    assert tree(site) == before
    assert sorted(p.name for p in ws.root.iterdir()) == [".site.lock", "manifest", "site"]


# --- what is inside the site ---------------------------------------------------------------


def _outside(ws: Workspace) -> Path:
    outside = ws.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "passwd").write_text("secret\n")
    return outside


def _folder_link(site: Path, outside: Path) -> str:
    (site / "packs" / "etc").symlink_to(outside)
    return "packs/etc"


def _file_link(site: Path, outside: Path) -> str:
    (site / "passwd.json").symlink_to(outside / "passwd")
    return "passwd.json"


def _dangling_link(site: Path, outside: Path) -> str:
    (site / "gone").symlink_to(outside / "nothing")
    return "gone"


def _empty_folder(site: Path, outside: Path) -> str:
    (site / "empty").mkdir()
    return "empty/"


def _nested_empty_folder(site: Path, outside: Path) -> str:
    (site / "packs" / "x" / "y").mkdir(parents=True)
    return "packs/x/y/"


def _stray_dotfile(site: Path, outside: Path) -> str:
    (site / ".env").write_text("TOKEN=1\n")
    return ".env"


def _fifo(site: Path, outside: Path) -> str:
    os.mkfifo(site / "packs" / "pipe")
    return "packs/pipe"


PLANTS: dict[str, Callable[[Path, Path], str]] = {
    "a-folder-link": _folder_link,
    "a-file-link": _file_link,
    "a-dangling-link": _dangling_link,
    "an-empty-folder": _empty_folder,
    "a-nested-empty-folder": _nested_empty_folder,
    "a-stray-dotfile": _stray_dotfile,
    "a-fifo": _fifo,
}


@pytest.mark.parametrize("plant", PLANTS.values(), ids=PLANTS.keys())
def test_nothing_planted_in_the_site_survives_a_build_and_check_reports_it(
    ws: Workspace, plant: Callable[[Path, Path], str]
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    built = tree(site)
    outside = _outside(ws)
    path = plant(site, outside)
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    assert f"  extra: {path}\n" in result.stderr
    result = ws.run("build")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("site: built")
    assert tree(site) == built
    assert tree(outside) == {"passwd": b"secret\n"}
    assert ws.run("build", "--check").exit_code == 0


@pytest.mark.parametrize("path", ["status.json", "packs/H.json", "api/v2/status.json"])
def test_a_link_in_place_of_a_site_file_is_replaced_even_to_the_same_bytes(
    ws: Workspace, path: str
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    built = tree(site)
    copy = ws.root.parent / "copy"
    copy.write_bytes((site / path).read_bytes())
    (site / path).unlink()
    (site / path).symlink_to(copy)
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    assert f"  changed: {path}\n" in result.stderr
    assert ws.run("build").exit_code == 0
    assert tree(site) == built
    assert copy.read_bytes() == built[path]


def test_a_folder_link_in_place_of_a_site_folder_is_replaced_and_not_followed(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    built = tree(site)
    outside = ws.root.parent / "packs-elsewhere"
    shutil.copytree(site / "packs", outside)
    shutil.rmtree(site / "packs")
    (site / "packs").symlink_to(outside)
    copied = tree(outside)
    result = ws.run("build", "--check")
    assert result.exit_code == 1
    assert "  extra: packs\n" in result.stderr
    assert "  missing: packs/H.json\n" in result.stderr
    assert ws.run("build").exit_code == 0
    assert tree(site) == built
    assert tree(outside) == copied


def test_list_files_names_links_and_empty_folders_without_following_them(
    ws: Workspace,
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    site = ws.root / "site"
    (site / "link").symlink_to(_outside(ws))
    (site / "empty").mkdir()
    listed = list_files(site)
    assert "link" in listed
    assert "empty/" in listed
    assert not any(p.startswith("link/") for p in listed)
    assert SITE_MARK not in listed


@pytest.mark.parametrize(
    ("mark", "cleared"),
    [
        (b"valhalla-status site: each build replaces this whole folder\n", True),
        (b"valhalla-st", True),  # the write of the mark cut short by the kill
        (b"", True),
        (None, False),  # no mark: someone else's folder, whatever its name
        (b"not ours\n", False),
    ],
)
def test_only_leftovers_carrying_the_builds_mark_are_cleared(
    ws: Workspace, mark: bytes | None, cleared: bool
) -> None:
    ws.write(small_manifest())
    assert ws.run("build").exit_code == 0
    leftover = ws.root / ".site.valhalla-old-fedcba9876543210"
    (leftover / "packs").mkdir(parents=True)
    (leftover / "packs" / "H.json").write_text("{}\n")
    if mark is not None:
        (leftover / SITE_MARK).write_bytes(mark)
    assert ws.run("build").exit_code == 0
    assert leftover.exists() is not cleared
    assert ws.run("build", "--check").exit_code == 0
