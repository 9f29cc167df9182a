"""The canonical text of a manifest's files: what every write writes, byte for byte.

Always PyYAML's own emitter: the canonical text must not depend on whether libyaml is there
(libyaml's escapes characters beyond U+FFFF, e.g. emoji, and adds '...' after a '|+' scalar).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ..models import HistoryEntry, LandedEntry, Manifest
from ..rules.history import landed_entry
from .layout import ENTRY_NAME, digest, read_entry_file, recorded_places
from .yamlstrict import TAG

HEADER = (
    "# Valhalla status manifest: the source of truth for the platform's status.\n"
    "# Change it with `valhalla-status` (see README.md);\n"
    "# after a hand edit, run `valhalla-status fmt`.\n"
)
_ENTRY_TIME = "%Y%m%dT%H%M%SZ"


class _FlowList(list[Any]):
    """A list the dumper writes in flow style: ``[old, new]``."""


class _CanonicalDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    if "\x85" in value:  # PyYAML writes NEL raw in other styles and reads it back as a break
        style = '"'
    return dumper.represent_scalar(TAG + "str", value, style=style)


def _represent_flow(dumper: Any, value: list[Any]) -> Any:
    return dumper.represent_sequence(TAG + "seq", value, flow_style=True)


_CanonicalDumper.add_representer(str, _represent_str)
_CanonicalDumper.add_representer(_FlowList, _represent_flow)


def manifest_data(manifest: Manifest) -> dict[str, Any]:
    """The manifest as plain JSON-compatible data in canonical key order (schema_version 1)."""
    data = manifest.model_dump(mode="json")
    if data["system"]["base_url"] is None:
        del data["system"]["base_url"]
    for pack in data["packs"]:
        if pack["notes"] is None:
            del pack["notes"]
    return data


# The order of schema_version 2: fields that change independently never sit on touching lines
# (see docs/LAYOUT.md).
SYSTEM_ORDER = (
    "name",
    "version",
    "description",
    "base_url",
    "backend_complete",
    "completed_at",
    "extra",
    "notes",
)
PACK_ORDER = ("id", "status", "name", "notes", "group")


def main_data(manifest: Manifest) -> dict[str, Any]:
    """The main file of a schema_version 2 manifest as plain data, in canonical order."""
    system = manifest.system.model_dump(mode="json")
    packs = []
    for pack in manifest.packs:
        values = pack.model_dump(mode="json")
        packs.append({k: values[k] for k in PACK_ORDER if values[k] is not None})
    return {
        "schema_version": 2,
        "system": {k: system[k] for k in SYSTEM_ORDER if k != "base_url" or system[k] is not None},
        "packs": packs,
    }


def _yaml(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_CanonicalDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        indent=2,
        width=2**30,
    )


def dump_entry(entry: HistoryEntry) -> str:
    """The canonical text of one history entry file."""
    dumped = entry.model_dump(mode="json")  # a read entry also has its id and landing time
    data = {name: dumped[name] for name in HistoryEntry.model_fields}
    data["changes"] = {k: _FlowList(v) for k, v in data["changes"].items()}
    return _yaml(data)


def name_time(at: datetime) -> str:
    """The time an entry file's name starts with: when its change was made, to the second."""
    return at.astimezone(timezone.utc).strftime(_ENTRY_TIME)


def entry_file_name(entry: HistoryEntry, seq: int, text: str | None = None) -> str:
    """``<at>-<seq>-<hash>.yaml``: identical entries at the same place get the same name."""
    text = dump_entry(entry) if text is None else text
    return f"{name_time(entry.at)}-{seq:06d}-{digest(text.encode())[:8]}.yaml"


def recorded(entry: HistoryEntry, seq: int) -> LandedEntry:
    """A new entry as it reads back once written at ``seq``: with its id (its file's name),
    landed at its own time (it is not committed yet)."""
    return landed_entry(entry, entry_file_name(entry, seq).removesuffix(".yaml"))


def with_ids(manifest: Manifest) -> Manifest:
    """``manifest`` with every history entry as read back: one built in memory gets the id
    and landing time it would have once written (an entry read keeps its own)."""
    if all(isinstance(entry, LandedEntry) for entry in manifest.history):
        return manifest
    history = [
        entry if isinstance(entry, LandedEntry) else recorded(entry, seq)
        for seq, entry in enumerate(manifest.history)
    ]
    return manifest.model_copy(update={"history": history})


def _main_file_data(manifest: Manifest) -> dict[str, Any]:
    """What the main file holds: schema_version 1 everything; schema_version 2 no history and
    no updated_at."""
    if manifest.schema_version == 2:
        return main_data(manifest)
    data = manifest_data(manifest)
    for entry in data["history"]:
        entry["changes"] = {k: _FlowList(v) for k, v in entry["changes"].items()}
    return data


def dump_manifest(manifest: Manifest) -> str:
    """The canonical text of a manifest's main file, header comment included."""
    return HEADER + _yaml(_main_file_data(manifest))


def existing_entries(folder: Path, places: dict[str, str] | None = None) -> dict[str, bytes]:
    """The entry files in ``folder`` (at ``places``, as :func:`recorded_places` gives them):
    name -> bytes."""
    where = recorded_places(folder) if places is None else places
    found = {n: read_entry_file(folder / place) for n, place in where.items()}
    return {n: raw for n, raw in found.items() if raw is not None}


def _entry_is_named_right(name: str, text: str) -> bool:
    match = ENTRY_NAME.fullmatch(name)
    assert match is not None
    return digest(text.encode())[:8] == match.group(3)


def plan_history(
    manifest: Manifest, existing: dict[str, bytes], *, on_disk: int = 0
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The history files to write (name, bytes) and to remove, for ``manifest``'s history.

    An entry read from a file keeps its name (its id), rewritten in canonical form in place if
    it is not and the canonical text fits the name;
    of the others, a file already there in canonical form, under a name that fits its content,
    is kept, and the entries with none are written, named after their place in the history.
    The first ``on_disk`` entries are left as they are on disk (a change only appends), so a
    change costs the same however long the history is.
    """
    kept: dict[bytes, list[str]] = {}
    for name, raw in sorted(existing.items()):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        match = ENTRY_NAME.fullmatch(name)
        assert match is not None
        if _entry_is_named_right(name, text):
            kept.setdefault(raw, []).append(name)
    keep: set[str] = set()
    write: list[tuple[str, bytes]] = []
    for seq, entry in enumerate(manifest.history[on_disk:], start=on_disk):
        text = dump_entry(entry)
        raw = text.encode()
        known = getattr(entry, "id", None)
        if known:  # a recorded entry keeps its name (its id) for good
            name = f"{known}.yaml"
            # Canonical already, or named after the text it was recorded in (which the
            # canonical text would no longer fit): left as it is.
            if existing.get(name) == raw or (
                name in existing and not _entry_is_named_right(name, text)
            ):
                keep.add(name)
            else:
                write.append((name, raw))
            continue
        at = name_time(entry.at)
        same = [n for n in kept.get(raw, []) if n.startswith(at) and n not in keep]
        if same:
            keep.add(same[0])
            continue
        write.append((entry_file_name(entry, seq, text), raw))
    if on_disk:
        return write, []
    written = {name for name, _ in write}
    remove = [name for name in existing if name not in keep and name not in written]
    return write, remove
