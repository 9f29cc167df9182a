"""Is the site already what a build would write? Answered without pydantic or Jinja2.

After each build, a record of its inputs (the manifest's bytes, the templates, the base URL and
the tool's code, hashed together) and of the files it left (size, modification time and inode
of each) is kept in the cache folder. A later ``build`` whose inputs hash the same, over a site
whose files still have exactly those stats, has nothing to do. Anything else (no record, other
inputs, a file touched, added or removed) means a full build. ``build --check`` never relies on
the record: it always renders and compares bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .cache import cache_dir, code_stamp
from .errors import ValhallaError
from .files import MAX_TEMPLATE_BYTES, NotRegularFileError, read_regular_file


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_site` did: the site folder, its file count, whether it changed."""

    path: str
    files: int
    changed: bool


def builtin_templates() -> Path:
    """The shipped templates: inside the package in a wheel, top-level in a source checkout."""
    here = Path(__file__).parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def build_key(manifest_bytes: bytes, templates_dir: str | None, base_url: str | None) -> str:
    """The hash of everything a build's output depends on."""
    digest = hashlib.sha256(code_stamp())
    digest.update(b"\0base_url\0" + (base_url or "").encode() + b"\0manifest\0")
    digest.update(manifest_bytes)
    for folder in ([templates_dir] if templates_dir else []) + [str(builtin_templates())]:
        digest.update(b"\0templates\0" + os.fsencode(folder))
        for name, data in sorted(_files(folder).items()):
            digest.update(b"\0" + name.encode() + b"\0" + data)
    return digest.hexdigest()


def _files(folder: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                data = read_regular_file(path, MAX_TEMPLATE_BYTES)  # never waits on a FIFO
            except NotRegularFileError as exc:
                raise ValhallaError(f"{path}: is {exc.kind}, not a template file") from None
            if len(data) > MAX_TEMPLATE_BYTES:
                raise ValhallaError(f"{path}: is over the {MAX_TEMPLATE_BYTES // 2**20} MiB limit")
            found[os.path.relpath(path, folder)] = data
    return found


def _record_path(site_dir: str | os.PathLike[str]) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    name = hashlib.sha256(os.fsencode(os.path.realpath(site_dir))).hexdigest()
    return folder / "sites" / f"{name}.json"


def _stats(site_dir: str | os.PathLike[str]) -> dict[str, list[int]] | None:
    """``{path: [size, mtime_ns, inode]}`` of every file; None if anything is not a plain file."""
    stats: dict[str, list[int]] = {}
    pending = [(os.fspath(site_dir), "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_symlink():
                    return None
                if entry.is_dir():
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
                else:
                    info = entry.stat()
                    stats[prefix + entry.name] = [info.st_size, info.st_mtime_ns, info.st_ino]
    return stats


def site_is_current(site_dir: str | os.PathLike[str], key: str) -> int | None:
    """The number of files, if the last build recorded for this site had inputs ``key`` and
    its files are untouched since; else None."""
    record_path = _record_path(site_dir)
    if record_path is None:
        return None
    try:
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
        if record.get("key") != key:
            return None
        stats = _stats(site_dir)
    except (OSError, ValueError, AttributeError):
        return None
    if stats is None or stats != record.get("files") or _leftovers(site_dir):
        return None
    return len(stats)


def _leftovers(site_dir: str | os.PathLike[str]) -> bool:
    """Whether a killed build left a staging or old folder beside the site (a full build
    clears them)."""
    target = Path(os.path.realpath(site_dir))
    prefixes = (f"{target.name}.staging-", f"{target.name}.old-")
    try:
        return any(name.startswith(prefixes) for name in os.listdir(target.parent))
    except OSError:
        return True


def record_build(site_dir: str | os.PathLike[str], key: str) -> None:
    """Remember that the site now holds the output of inputs ``key`` (best effort)."""
    record_path = _record_path(site_dir)
    if record_path is None:
        return
    temp = record_path.with_name(f".{record_path.name}.{os.getpid()}.tmp")
    try:
        stats = _stats(site_dir)
        if stats is None:
            return
        record_path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps({"key": key, "files": stats}), encoding="utf-8")
        os.replace(temp, record_path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
