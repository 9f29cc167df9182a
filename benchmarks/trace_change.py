"""What one change does to the files: `pack set K --status pending` with its rebuild, traced.

    python benchmarks/trace_change.py
    python benchmarks/trace_change.py --no-build          # the change alone, in a git repository
    PYTHONPATH=../old python benchmarks/trace_change.py   # another checkout's code

Counts, from Python's audit events (``open``, ``os.listdir``/``os.scandir``, ``fcntl.flock``)
and by wrapping ``Manifest.model_validate`` and ``hashlib.sha256``: how often the main file is
opened, the history folder listed, an exclusive lock taken, a lock file opened, a SHA-256
started and a whole manifest validated. The change runs in process, on a fresh ``init``; with
``--no-build``, in a git repository where the ``init`` is committed and ``validate`` ran over two
seconds before (so that what the tool keeps of the history says it was checked, and no folder
is recent enough to be listed again; see ``valhalla_status/storage/snapshot.py``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

COUNTS: collections.Counter[str] = collections.Counter()
SHOWN = (
    "main file opened",
    "history folder listed",
    "exclusive locks taken",
    "lock files opened",
    "sha256",
    "whole-manifest validations",
)


def count_calls() -> None:
    from valhalla_status.models import Manifest

    validate = Manifest.model_validate.__func__  # type: ignore[attr-defined]
    sha256 = hashlib.sha256

    def validated(cls: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["whole-manifest validations"] += 1
        return validate(cls, *args, **kwargs)

    def hashed(*args: Any, **kwargs: Any) -> Any:
        COUNTS["sha256"] += 1
        return sha256(*args, **kwargs)

    Manifest.model_validate = classmethod(validated)  # type: ignore[method-assign,assignment]
    hashlib.sha256 = hashed  # type: ignore[assignment]


def audit(main: str, history: str) -> None:
    def seen(event: str, args: tuple[Any, ...]) -> None:
        path = args[0] if args and isinstance(args[0], (str, bytes, os.PathLike)) else None
        where = os.path.realpath(os.fsdecode(path)) if path is not None else None
        if event == "open" and where == main:
            COUNTS["main file opened"] += 1
        elif event == "open" and where is not None and where.endswith(".lock"):
            COUNTS["lock files opened"] += 1
        elif event in ("os.listdir", "os.scandir") and where == history:
            COUNTS["history folder listed"] += 1
        elif event == "fcntl.flock" and args[1] & fcntl.LOCK_EX:
            COUNTS["exclusive locks taken"] += 1

    def hook(event: str, args: tuple[Any, ...]) -> None:
        with contextlib.suppress(Exception):  # a trace never breaks what it traces
            seen(event, args)

    sys.addaudithook(hook)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="trace the change alone")
    options = parser.parse_args()
    os.chdir(tempfile.mkdtemp())
    made = {**os.environ, "SOURCE_DATE_EPOCH": "1758326400"}
    tool = [sys.executable, "-m", "valhalla_status"]
    subprocess.run([*tool, "init"], env=made, check=True, stdout=subprocess.DEVNULL)
    extra = []
    if options.no_build:
        extra = ["--no-build"]
        git = ["git", "-c", "user.name=trace", "-c", "user.email=t@example.org"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
            subprocess.run([*git, *args], env=made, check=True)
        subprocess.run([*tool, "validate"], env=made, check=True, stdout=subprocess.DEVNULL)
        time.sleep(2.1)  # folders changed in the last two seconds are listed again (racy rule)
    os.environ["SOURCE_DATE_EPOCH"] = "1758330000"
    count_calls()
    audit(os.path.realpath("manifest/valhalla.yaml"), os.path.realpath("manifest/valhalla.history"))
    from valhalla_status.cli import main as cli

    with contextlib.suppress(SystemExit):
        cli(["pack", "set", "K", "--status", "pending", "--by", "trace", *extra])
    for key in SHOWN:
        print(f"{key}: {COUNTS[key]}")


if __name__ == "__main__":
    main()
