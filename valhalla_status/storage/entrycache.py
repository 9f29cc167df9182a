"""What each history entry file was read as, kept so that bytes read before are not parsed again.

Reading an entry strictly (YAML events, every problem located) and validating it costs about
a third of a millisecond: at 100,000 entries, most of ``validate`` and ``build``. An entry's
meaning depends only on its bytes and on this tool's code, so the fields of each valid entry
are kept in the repository's git folder (``entries-<key>.json``, beside the landings) under
the SHA-256 of its bytes, with a digest of the tool's code: a file whose bytes were read before
is not parsed again, and any other version of the tool reads everything again. The file is
rewritten only when the entries read differ from those kept, and then holds exactly the
entries just read, so it never holds more than the history does. Files with problems are never
kept. Outside git, in a git folder that cannot be written, or when the file is damaged
(its own digest is checked), every entry is parsed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..models import Action
from .landing import GitState, keep_bytes, read_kept, store_path

FORMAT = 1
# An entry's fields: when it was made (microseconds since the epoch), by whom, its action,
# its changes and its notes.
Fields = tuple[int, str, Action, dict[str, Any], "str | None"]


def code_digest() -> str:
    """The SHA-256 of this tool's code (every module of the package, by its place)."""
    package = Path(__file__).resolve().parent.parent
    summed = hashlib.sha256()
    for module in sorted(package.rglob("*.py")):
        summed.update(module.relative_to(package).as_posix().encode() + b"\0")
        summed.update(module.read_bytes() + b"\0")
    return summed.hexdigest()


class EntryCache:
    """The entries of the history folder ``folder`` read before, by the SHA-256 of their
    bytes: :meth:`get` one, :meth:`put` one just read, and :meth:`keep` what was used."""

    def __init__(self, folder: Path, state: GitState | None) -> None:
        kind, _, git_dir = state or ("none", "", None)
        self.store = store_path(git_dir, folder, "entries") if kind != "none" and git_dir else None
        self._code = ""
        self._known: dict[str, list[Any]] | None = None
        self._used: dict[str, Fields] = {}

    def get(self, key: str) -> Fields | None:
        """The fields of the entry whose bytes have the SHA-256 ``key``, if read before."""
        if self._known is None:
            self._known = self._read()
        found = self._known.get(key)
        if found is None:
            return None
        at, by, action, changes, notes = found
        fields: Fields = (at, by, action, changes, notes)
        self._used[key] = fields
        return fields

    def put(self, key: str, fields: Fields) -> None:
        """Keep the fields of a valid entry just read (its bytes' SHA-256: ``key``)."""
        self._used[key] = fields

    def keep(self) -> None:
        """Replace the file with the entries used since it was read, when they differ."""
        if self.store is None or self._known is None or self._known.keys() == self._used.keys():
            return
        body = json.dumps({key: list(self._used[key]) for key in sorted(self._used)}).encode()
        head = {"format": FORMAT, "code": self._code, "sha256": hashlib.sha256(body).hexdigest()}
        keep_bytes(self.store, json.dumps(head).encode() + b"\n" + body)

    def _read(self) -> dict[str, list[Any]]:
        if self.store is None:
            return {}
        self._code = code_digest()
        try:
            head, _, body = read_kept(self.store).partition(b"\n")
            said = json.loads(head)
            if (
                said["format"] != FORMAT
                or said["code"] != self._code
                or said["sha256"] != hashlib.sha256(body).hexdigest()
            ):
                return {}
            known = json.loads(body)
        except (OSError, ValueError, TypeError, KeyError):
            return {}
        return known if isinstance(known, dict) else {}
