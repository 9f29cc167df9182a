"""The library API: read the status and change it. The CLI is a thin layer over this.

Read functions take a manifest path or a loaded :class:`Manifest`. Mutations take either too:
given a path they lock, re-read, apply, validate and write the file; given a Manifest they
return the changed copy. Every real change appends one history entry; a change that changes
nothing writes nothing and returns ``changed=False``.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ManifestError, NotFoundError, RefusedError, ValhallaError
from .manifest import (
    decode_manifest_bytes,
    load_manifest,
    manifest_lock,
    parse_history,
    parse_manifest,
    parse_state,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from .models import (
    SCHEMA_VERSION,
    HistoryEntry,
    Manifest,
    Pack,
    SystemMetadata,
)
from .publishing.documents import (
    history_document,
    status_document,
    summary_counts,
    summary_document,
)
from .rules.changes import compute_changes, items, message, pack_record
from .rules.defaults import DEFAULT_PACKS
from .rules.formats import (
    MAX_VERSION_LENGTH,
    STATUSES,
    clip,
    format_timestamp,
    is_pack_id,
    is_semver,
    not_pack_id,
    not_semver,
    pack_key,
    quoted,
    semver_key,
    split_pack_change_key,
)
from .rules.history import differences, entry_id, entry_label, pack_since
from .storage.canonical import recorded
from .storage.files import os_reason
from .storage.layout import (
    history_dir,
    history_shown,
    move_flat_entries,
    recorded_names,
    refuse_shared_folder,
    same_stem_manifest,
)
from .storage.recent import Recent, read_recent
from .storage.transaction import Past, SiteOptions, Transaction, bring_site, transaction
from .storage.validation import error_message
from .storage.yamlstrict import format_loc

if TYPE_CHECKING:
    from .site import BuildResult

Source = Manifest | str | os.PathLike[str]

_UNSET: Any = object()
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Outcome:
    """What a mutation did: the manifest after it, and the history entry (None: no change).

    A mutation that builds no site may have read only the newest history entries (see
    :mod:`.storage.snapshot`): its ``manifest`` then holds those and the new one, not the whole
    history (``load_manifest`` reads all of it). Given site options, a mutation also brings the
    site up to date under the same lock:
    ``build`` is that build (None: the site already showed the manifest, or none was asked
    for), ``site_error`` why it failed (the change stands all the same).
    """

    manifest: Manifest
    entry: HistoryEntry | None
    message: str
    build: BuildResult | None = None
    site_error: Exception | None = None

    @property
    def changed(self) -> bool:
        return self.entry is not None


# --- inputs --------------------------------------------------------------------------------


# SOURCE_DATE_EPOCH's range: the timestamps a manifest holds, 1970-01-01 to 9999-12-31.
MAX_EPOCH = 253_402_300_799


def current_time() -> datetime:
    """Now in UTC (whole seconds), or ``SOURCE_DATE_EPOCH`` when that is set."""
    return _now()[0]


def _now() -> tuple[datetime, str]:
    """The time of a change and where it came from (for messages)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        shown = repr(epoch) if len(epoch) <= 40 else repr(epoch[:40]) + "…"
        if not re.fullmatch(r"-?[0-9]+", epoch):
            raise ValhallaError(f"SOURCE_DATE_EPOCH={shown} is not a whole number of seconds")
        if epoch.startswith("-") or len(epoch.lstrip("0")) > 12 or int(epoch) > MAX_EPOCH:
            raise ValhallaError(
                f"SOURCE_DATE_EPOCH={shown} is out of range: it must be 0 to {MAX_EPOCH} "
                "seconds (1970-01-01 to 9999-12-31)"
            )
        return datetime.fromtimestamp(int(epoch), timezone.utc), f"SOURCE_DATE_EPOCH={epoch}"
    return datetime.now(timezone.utc).replace(microsecond=0), "the system clock"


def default_actor() -> str:
    """git's ``user.name`` if set, else the login name."""
    try:
        result = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=5
        )
        name = result.stdout.strip()
        if result.returncode == 0 and name:
            return name
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def normalise_pack_id(pack_id: str) -> str:
    """A pack id typed in any case, as the manifest holds it (:func:`formats.pack_key`);
    refuse one that is not a valid id."""
    wanted = pack_key(pack_id)
    if not is_pack_id(wanted):
        raise ValhallaError(not_pack_id(pack_id))
    return wanted


def check_version(version: str) -> str:
    """``version`` itself if it is SemVer 2.0.0 no longer than a status document carries;
    ValhallaError otherwise."""
    if not is_semver(version):
        raise ValhallaError(not_semver(version))
    if len(version) > MAX_VERSION_LENGTH:
        raise ValhallaError(
            f"{quoted(version)} is over {MAX_VERSION_LENGTH} characters, the longest version "
            "a status document carries"
        )
    return version


def _build(model: type[ModelT], what: str, **fields: Any) -> ModelT:
    """Construct a model from user input; a bad value becomes one clear ValhallaError."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(f"{what} {format_loc(loc)}: {error_message(error, loc, model)}")
        raise ValhallaError("; ".join(problems)) from None


def _load(source: Source) -> Manifest:
    return source if isinstance(source, Manifest) else load_manifest(source)


def _read(source: Source | Recent, newest: int = 1) -> Recent:
    """What the read functions show: given a path, the main file and only the ``newest``
    history entries (see :mod:`.storage.recent`)."""
    if isinstance(source, Recent):
        return source
    if isinstance(source, Manifest):
        return Recent(source, len(source.history), pack_since(source))
    return read_recent(source, newest)


# --- reading -------------------------------------------------------------------------------


def get_system_metadata(source: Source | Recent) -> SystemMetadata:
    """The system-wide fields: name, version, readiness, notes."""
    return _read(source).manifest.system


def get_packs(
    source: Source | Recent, status: str | None = None, group: str | None = None
) -> list[Pack]:
    """Packs in manifest order, optionally only those of a status and/or group (any case)."""
    packs = _read(source).manifest.packs
    if status is not None:
        packs = [p for p in packs if p.status == status]
    if group is not None:
        wanted = group.casefold()
        packs = [p for p in packs if p.group.casefold() == wanted]
    return packs


def get_pack_by_id(source: Source | Recent, pack_id: str) -> Pack | None:
    """The pack with this id (any case), or None."""
    return _read(source).manifest.pack(pack_id)


def count_packs_by_status(source: Source | Recent) -> dict[str, int]:
    """``{status: number of packs}``, every status present."""
    counts = dict.fromkeys(STATUSES, 0)
    for pack in _read(source).manifest.packs:
        counts[pack.status] += 1
    return counts


def get_system_summary(source: Source | Recent) -> dict[str, Any]:
    """The summary document (``summary.json``)."""
    return summary_document(_read(source).manifest)


def get_system_status(source: Source | Recent) -> dict[str, Any]:
    """The full status document (``status.json``)."""
    read = _read(source)
    return status_document(read.manifest, read.since)


def get_history(source: Source | Recent, limit: int | None = None) -> dict[str, Any]:
    """The ``limit`` newest history entries (None: all), newest first, as ``history.json``."""
    read = _read(source, newest=limit if limit is not None else 2**62)
    return history_document(read.manifest, limit, total=read.total)


# --- changing ------------------------------------------------------------------------------


class _Clock:
    """The time of a change, read once, when first asked (inside the lock), then fixed."""

    def __init__(self, now: datetime | None) -> None:
        self.fixed = now
        self.source = "the time given"

    def __call__(self) -> datetime:
        if self.fixed is None:
            self.fixed, self.source = _now()
        return self.fixed

    def refuse_before(
        self, moment: datetime, newest: datetime, where: Callable[[], str] = lambda: ""
    ) -> None:
        """Refuse a change stamped before the newest recorded one: history never goes back.

        ``where`` names the file holding that entry (as `` (file)``), so a mistyped or
        future-dated entry can be found."""
        if moment >= newest:
            return
        if self.source.startswith("SOURCE_DATE_EPOCH="):
            advice = "unset SOURCE_DATE_EPOCH or give a later time"
        elif self.source == "the system clock":
            advice = "check the system clock"
        else:
            advice = "give a later time"
        place = where()
        if place and self.source == "the system clock":
            advice += ", or the time in that file"
        raise RefusedError(
            f"the time of this change, {format_timestamp(moment)} (from {self.source}), is "
            f"before the newest history entry, {format_timestamp(newest)}{place}; {advice}"
        )


def _mutate(
    source: Source,
    action: str,
    edit: Callable[[Manifest], Manifest],
    unchanged: str,
    *,
    by: str | None,
    now: datetime | _Clock | None,
    notes: str | Callable[[], str | None] | None = None,
    changes_of: Callable[[Manifest, Manifest], dict[str, list[Any]]] = compute_changes,
    explained: bool = True,
    site: SiteOptions | None = None,
    reverted: Callable[[], str] = lambda: "",
) -> Outcome:
    actor = by if by is not None else default_actor()
    clock = now if isinstance(now, _Clock) else _Clock(now)
    result: dict[str, Any] = {}

    def change(old: Manifest, past: Past) -> Manifest | None:
        moment = clock()  # stamped under the lock, so history and updated_at never go back
        new = edit(old)
        changes = changes_of(old, new)
        if not changes:
            return None
        clock.refuse_before(moment, past.newest, past.where)
        entry = recorded(
            _build(
                HistoryEntry,
                "history",
                at=moment,
                by=actor,
                action=action,
                changes=changes,
                notes=notes() if callable(notes) else notes,
            ),
            past.length,
        )
        system = new.system.model_copy(update={"updated_at": max(moment, old.system.updated_at)})
        if system.completed_at is not None and system.completed_at > moment:
            raise RefusedError(
                f"the time of this change, {format_timestamp(moment)}, is before completed_at "
                f"{format_timestamp(system.completed_at)}; check the clock or SOURCE_DATE_EPOCH"
            )
        result["entry"] = entry
        result["message"] = message(action, items(changes), reverted=reverted())
        return new.model_copy(update={"system": system, "history": [*old.history, entry]})

    if isinstance(source, Manifest):
        changed = change(source, Past.of(source))
        if changed is not None:
            validate_manifest(changed)  # the copy keeps its entries' ids
        if changed is None:
            return Outcome(source, None, unchanged)
        return Outcome(changed, result["entry"], result["message"])
    with transaction(source, explained=explained, whole=site is not None) as txn:
        changed = txn.apply(change)
        build, error = bring_site(txn, site)
    if changed is None:
        return Outcome(txn.read, None, unchanged, build, error)
    return Outcome(changed, result["entry"], result["message"], build, error)


def _with_system(manifest: Manifest, **update: Any) -> Manifest:
    return manifest.model_copy(update={"system": manifest.system.model_copy(update=update)})


def _checked_notes(notes: str | None) -> str | None:
    if notes is None:
        return None
    return _build(SystemMetadata, "system", **_DUMMY_SYSTEM, notes=notes).notes


def _checked_pack_notes(notes: str | None) -> str | None:
    if notes is None:
        return None
    return _build(Pack, "pack", id="A", name="x", group="x", status="pending", notes=notes).notes


_DUMMY_SYSTEM: dict[str, Any] = {
    "name": "x",
    "description": "x",
    "version": "1.0.0",
    "backend_complete": False,
    "updated_at": "2000-01-01T00:00:00Z",
    "completed_at": None,
}


def set_backend_complete(
    source: Source,
    complete: bool,
    *,
    notes: str | None = _UNSET,
    force: bool = False,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Mark the backend complete or not.

    Completing is refused while any pack is pending (a complete backend with a pending pack is
    an invalid manifest); ``force`` is accepted for existing callers and overrides nothing.
    """
    moment = _Clock(now)
    new_notes = _checked_notes(notes) if notes is not _UNSET else _UNSET

    def edit(manifest: Manifest) -> Manifest:
        update: dict[str, Any] = {} if new_notes is _UNSET else {"notes": new_notes}
        if complete and not manifest.system.backend_complete:
            pending = [p for p in manifest.packs if p.status == "pending"]
            if pending:
                listed = ", ".join(f"{p.id} {p.name}" for p in pending)
                raise RefusedError(
                    f"not marking the backend complete: {len(pending)} pack"
                    f"{'s are' if len(pending) != 1 else ' is'} pending ({listed}); "
                    f"set {'their' if len(pending) != 1 else 'its'} status first "
                    f"(valhalla-status pack set {pending[0].id} --status installed)"
                )
            update.update(backend_complete=True, completed_at=moment())
        elif not complete:
            update.update(backend_complete=False, completed_at=None)
        return _with_system(manifest, **update)

    state = "complete" if complete else "in development"
    return _mutate(
        source,
        "complete" if complete else "incomplete",
        edit,
        f"No change: the backend is already {state}",
        by=by,
        now=moment,
        notes=None if new_notes is _UNSET else new_notes,
        site=site,
    )


def update_version(
    source: Source,
    version: str,
    *,
    notes: str | None = _UNSET,
    force: bool = False,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Set a new SemVer version; a lower one is refused unless ``force``."""
    check_version(version)
    new_notes = _checked_notes(notes) if notes is not _UNSET else _UNSET

    def edit(manifest: Manifest) -> Manifest:
        current = manifest.system.version
        if semver_key(version) < semver_key(current) and not force:
            raise RefusedError(
                f"not lowering the version from {current} to {version}; use --force to do so"
            )
        update: dict[str, Any] = {"version": version}
        if new_notes is not _UNSET:
            update["notes"] = new_notes
        return _with_system(manifest, **update)

    return _mutate(
        source,
        "set-version",
        edit,
        f"No change: the version is already {version}",
        by=by,
        now=now,
        notes=None if new_notes is _UNSET else new_notes,
        site=site,
    )


def set_notes(
    source: Source,
    notes: str | None,
    *,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Set (or, with None, clear) the system notes."""
    checked = _checked_notes(notes)
    return _mutate(
        source,
        "set-notes",
        lambda manifest: _with_system(manifest, notes=checked),
        "No change: the notes are already " + ("empty" if checked is None else "that"),
        by=by,
        now=now,
        notes=checked,
        site=site,
    )


def add_pack(
    source: Source,
    pack_id: str,
    name: str,
    group: str,
    status: str = "pending",
    *,
    notes: str | None = None,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Add a pack at the end of the list; ``notes``: why (kept as the pack's note too)."""
    pack = _build(
        Pack,
        "pack",
        id=normalise_pack_id(pack_id),
        name=name,
        group=group,
        status=status,
        notes=notes,
    )

    def edit(manifest: Manifest) -> Manifest:
        if manifest.pack(pack.id) is not None:
            raise RefusedError(f"pack {pack.id} already exists; use `pack set` to change it")
        if pack.status == "pending":
            _refuse_pending(
                manifest,
                f"not adding pack {pack.id} as pending",
                "choose another status (--status; pending is the default)",
            )
        return manifest.model_copy(update={"packs": [*manifest.packs, pack]})

    return _mutate(
        source,
        "pack-add",
        edit,
        "",
        by=by,
        now=now,
        notes=pack.notes,
        site=site,
    )


def set_pack(
    source: Source,
    pack_id: str,
    *,
    status: str | None = None,
    name: str | None = None,
    group: str | None = None,
    notes: str | None = _UNSET,
    keep_notes: bool = False,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Change a pack's status, name, group and/or note (``notes=None`` clears the note).

    A note given is recorded as the history entry's notes too: why the change was made. A
    status change given no note clears the pack's old one (the reason for the old status is
    not the reason for the new), unless ``keep_notes``; a change of name or group keeps it.
    """
    wanted = normalise_pack_id(pack_id)
    update: dict[str, Any] = {
        k: v for k, v in (("status", status), ("name", name), ("group", group)) if v is not None
    }
    if notes is not _UNSET:
        if keep_notes:
            raise ValhallaError("give a new note or keep the old one, not both")
        update["notes"] = _checked_pack_notes(notes)
    if not update:
        raise ValhallaError("nothing to change: give --status, --name, --group or --notes")

    def edit(manifest: Manifest) -> Manifest:
        packs = list(manifest.packs)
        for index, pack in enumerate(packs):
            if pack.id == wanted:
                if update.get("status") == "pending":
                    _refuse_pending(
                        manifest, f"not setting pack {wanted} pending", "choose another status"
                    )
                packs[index] = _changed_pack(pack, update, keep_notes)
                return manifest.model_copy(update={"packs": packs})
        raise NotFoundError(no_pack(wanted))

    return _mutate(
        source,
        "pack-set",
        edit,
        f"No change: pack {wanted} is already like that",
        by=by,
        now=now,
        notes=update.get("notes"),
        site=site,
    )


def _changed_pack(pack: Pack, update: dict[str, Any], keep_notes: bool) -> Pack:
    """``pack`` with ``update``; a new status without a new note clears the old note, unless
    ``keep_notes``."""
    values = {**pack.model_dump(), **update}
    if values["status"] != pack.status and "notes" not in update and not keep_notes:
        values["notes"] = None
    return _build(Pack, "pack", **values)


def remove_pack(
    source: Source,
    pack_id: str,
    *,
    notes: str | None = None,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Remove a pack; ``notes``: why (recorded in the history entry)."""
    wanted = normalise_pack_id(pack_id)
    checked = _checked_pack_notes(notes)

    def edit(manifest: Manifest) -> Manifest:
        packs = [p for p in manifest.packs if p.id != wanted]
        if len(packs) == len(manifest.packs):
            raise NotFoundError(no_pack(wanted))
        return manifest.model_copy(update={"packs": packs})

    return _mutate(
        source,
        "pack-remove",
        edit,
        "",
        by=by,
        now=now,
        notes=checked,
        site=site,
    )


def record_edit(
    source: Source,
    *,
    notes: str,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Record what the history does not explain (a hand edit, a conflict resolved by hand)
    as one change: each such field ``[what the history says, what the files hold]``."""
    checked = _checked_notes(notes)

    def unexplained(old: Manifest, new: Manifest) -> dict[str, list[Any]]:
        return {d.key: [d.said, d.actual] for d in differences(old)}

    return _mutate(
        source,
        "record",
        lambda manifest: manifest,
        "No change: the history already explains the manifest",
        by=by,
        now=now,
        notes=checked,
        changes_of=unexplained,
        explained=False,
        site=site,
    )


def find_entry(manifest: Manifest, ref: str) -> HistoryEntry:
    """The history entry ``ref`` names: its whole id, the hash that ends it, or a prefix that
    only one id has."""
    wanted = ref.strip()
    matches = [e for e in manifest.history if entry_id(e) == wanted]
    if not matches and wanted:
        matches = [
            e
            for e in manifest.history
            if entry_id(e).startswith(wanted) or entry_id(e).endswith(f"-{wanted}")
        ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(
            f"no history entry {quoted(ref)}; `valhalla-status history` shows each entry's id"
        )
    listed = ", ".join(entry_id(e) for e in matches[:5])
    raise ValhallaError(f"{ref!r} names {len(matches)} history entries ({listed}); give more of it")


def _overlap(first: str, second: str) -> bool:
    """Whether two history keys name the same field (a whole pack covers its fields)."""
    return first == second or first.startswith(f"{second}.") or second.startswith(f"{first}.")


def current_value(manifest: Manifest, key: str) -> Any:
    """The value of a field the history names (``version``, ``packs.K.status``, ``packs.K``),
    as the history records it; None for a pack that is not there."""
    about = split_pack_change_key(key)
    if about is None:
        return manifest.system.model_dump(mode="json").get(key)
    pack_id, name = about
    pack = next((p for p in manifest.packs if p.id == pack_id), None)
    if pack is None:
        return None
    return getattr(pack, name, None) if name else pack_record(pack)


def apply_values(manifest: Manifest, values: dict[str, Any]) -> Manifest:
    """``manifest`` with each field the history names (``version``, ``packs.K.status``,
    ``packs.K``) set to its value (a whole pack: None removes it, a record adds it)."""
    system = manifest.system.model_dump(mode="json")
    packs = {p.id: p.model_dump(mode="json") for p in manifest.packs}
    for key, value in values.items():
        about = split_pack_change_key(key)
        if about is None:
            system[key] = value
            continue
        pack_id, name = about
        if not name and value is None:
            packs.pop(pack_id, None)
        elif not name:
            packs[pack_id] = {"notes": None, **value, "id": pack_id}
        elif pack_id in packs:
            packs[pack_id][name] = value
    return manifest.model_copy(
        update={
            "system": _build(SystemMetadata, "system", **system),
            "packs": [_build(Pack, "pack", **pack) for pack in packs.values()],
        }
    )


def revert_entry(
    source: Source,
    ref: str,
    *,
    notes: str | None = None,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Undo a recorded change as a new change: put back the values it changed.

    Refused where a later change touched the same field (revert that one first), and for an
    entry that changed nothing (``init``, ``migrate``). Files already put back by git (``git
    revert`` of the change's commit, then its history file restored) are recorded as they are.
    """
    said: dict[str, Any] = {}

    def edit(manifest: Manifest) -> Manifest:
        entry = said["entry"] = find_entry(manifest, ref)
        ident = said["id"] = entry_id(entry)
        _refuse_unexplained_but(manifest, entry, ident)
        if not entry.changes or entry.action == "init":
            raise RefusedError(
                f"not reverting {ident}: the {entry.action} entry records no change to undo"
            )
        later = manifest.history[manifest.history.index(entry) + 1 :]
        for key, (_, new) in entry.changes.items():
            touched = [e for e in later if any(_overlap(key, k) for k in e.changes)]
            if touched and current_value(manifest, key) != new:
                again = touched[-1]
                raise RefusedError(
                    f"not reverting {ident}: {key} was changed again later "
                    f"({entry_label(again)}); revert that change first, or make the change "
                    "you mean directly"
                )
        return apply_values(manifest, {key: old for key, (old, _) in entry.changes.items()})

    checked = _checked_notes(notes)

    def why() -> str | None:
        return f"Revert of {said['id']}" + (f": {checked}" if checked else "")

    def undone(old: Manifest, new: Manifest) -> dict[str, list[Any]]:
        return {key: [after, before] for key, (before, after) in said["entry"].changes.items()}

    return _mutate(
        source,
        "revert",
        edit,
        "No change: the values are already back",
        by=by,
        now=now,
        notes=why,
        changes_of=undone,
        explained=False,
        site=site,
        reverted=lambda: str(said["id"]),
    )


def _refuse_unexplained_but(manifest: Manifest, entry: HistoryEntry, ident: str) -> None:
    """Refuse a manifest its history does not explain, unless what differs is exactly fields
    of ``entry`` already holding the values from before it (put back by git)."""
    other = [
        d
        for d in differences(manifest)
        if d.key not in entry.changes or d.actual != entry.changes[d.key][0]
    ]
    if other:
        raise RefusedError(
            f"not reverting {ident}: the manifest is not what its history says "
            f"({', '.join(d.key for d in other)}); `valhalla-status validate` says where"
        )


def _refuse_pending(manifest: Manifest, refused: str, otherwise: str) -> None:
    """A pack may go pending only while the backend is in development."""
    if manifest.system.backend_complete:
        raise RefusedError(
            f"{refused}: the backend is complete; run `valhalla-status incomplete` first, "
            f"or {otherwise}"
        )


def no_pack(pack_id: str) -> str:
    """What a command says of a pack id the manifest does not hold."""
    return f"no pack {clip(pack_id)}; `valhalla-status pack list` shows the packs"


def default_manifest(*, by: str | None = None, now: datetime | None = None) -> Manifest:
    """The manifest ``init`` writes: the 16 default packs, all installed, version 1.0.0."""
    moment = now or current_time()
    checked = validate_manifest(
        Manifest.model_validate(
            {
                "schema_version": SCHEMA_VERSION,
                "system": {
                    "name": "Valhalla",
                    "description": "Valhalla professional capital markets system",
                    "version": "1.0.0",
                    "backend_complete": False,
                    "notes": None,
                    "updated_at": moment,
                    "completed_at": None,
                    "extra": {},
                },
                "packs": [
                    {"id": i, "name": n, "group": g, "status": "installed"}
                    for i, n, g in DEFAULT_PACKS
                ],
                "history": [
                    {
                        "at": moment,
                        "by": by if by is not None else default_actor(),
                        "action": "init",
                        "changes": {},
                        "notes": None,
                    }
                ],
            }
        )
    )
    return checked.model_copy(update={"history": [recorded(checked.history[0], 0)]})


def ensure_system_metadata(
    path: Source,
    *,
    force: bool = False,
    by: str | None = None,
    now: datetime | None = None,
    site: SiteOptions | None = None,
) -> Outcome:
    """Write the default manifest unless one exists (``force``: replace it).

    Given a loaded manifest, nothing is written: it already has its metadata, and ``force``
    gives the default manifest in its place.
    """
    if isinstance(path, Manifest):
        if not force:
            return Outcome(path, None, "No change: the manifest already has its metadata")
        manifest = default_manifest(by=by, now=now)
        return Outcome(manifest, manifest.history[-1], "Replaced by the default manifest")
    target = Path(path)
    refuse_shared_folder(target)
    _refuse_orphaned_history(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValhallaError(f"cannot create {target.parent}: {os_reason(exc)}") from None
    with manifest_lock(target):
        if target.exists() and not force:
            try:
                existing = load_manifest(target)
            except ManifestError:
                raise ValhallaError(
                    f"{target} exists but is not valid; fix it, or replace it with `init --force`"
                ) from None
            build, error = bring_site(Transaction(target, existing, None), site)
            return Outcome(existing, None, f"No change: {target} already exists", build, error)
        _refuse_orphaned_history(target, force)
        replaced = len(recorded_names(target))
        manifest = default_manifest(by=by, now=now)
        write_manifest(target, manifest)
        build, error = bring_site(Transaction(target, manifest, None), site)
    said = f"Created {target} with {len(manifest.packs)} packs"
    if replaced:  # only with --force; recorded changes are never removed unsaid
        changes = "change" if replaced == 1 else "changes"
        said += f"; it replaces the {replaced} recorded {changes} in {history_shown(str(target))}/"
    return Outcome(manifest, manifest.history[-1], said, build, error)


def _refuse_orphaned_history(target: Path, force: bool) -> None:
    """Refuse to write a new manifest over the recorded changes of a missing one (``force``
    replaces them; the outcome says how many)."""
    if force or os.path.lexists(target):
        return
    count = len(recorded_names(target))
    if not count:
        return
    folder = history_shown(str(target))
    held = f"{folder}/ holds {count} recorded {'change' if count == 1 else 'changes'}"
    other = same_stem_manifest(target)
    if other is not None:
        raise RefusedError(
            f"{held} of {target.with_name(other.name)}, beside it (a history folder is named "
            f"after its manifest without the suffix); give {target} another name"
        )
    raise RefusedError(
        f"{held} but the main file is missing; restore it from git (`git checkout -- "
        f"{target}`), or move the folder away (`init --force` replaces them)"
    )


def _manifest_and_folder(path: str | os.PathLike[str]) -> tuple[Manifest, list[HistoryEntry]]:
    """The manifest, and when its main file is schema_version 1 beside a history folder of
    schema_version 2 (a branch of each layout merged), the folder's entries too."""
    main, history = read_manifest(path)
    try:
        manifest = parse_state(path, main, history)
    except ManifestError:
        alone = _schema_version_1_alone(path, main)
        if alone is None or not history.entries:
            raise
        manifest = alone
    if manifest.schema_version == 2 or not (history.entries or history.unknown):
        return manifest, []
    # The folder's files are a migrated branch's entries, or no history entries: named here.
    entries, problems = parse_history(history, history_shown(os.fspath(path)))
    if problems:
        raise ManifestError(problems)
    return manifest, list(entries)


def _schema_version_1_alone(path: str | os.PathLike[str], main: bytes) -> Manifest | None:
    """The main file read without its history folder, if it is a valid schema_version 1."""
    try:
        alone = parse_manifest(decode_manifest_bytes(main, os.fspath(path)), path)
    except ManifestError:
        return None
    return alone if alone.schema_version == 1 else None


def _place_entries(path: str | os.PathLike[str]) -> tuple[bool, str]:
    """Move a schema_version 2 manifest's flat entry files into their subfolders."""
    shown = os.fspath(path)
    try:
        moved = move_flat_entries(history_dir(path))
    except OSError as exc:
        raise ValhallaError(f"cannot write {history_dir(path)}: {os_reason(exc)}") from None
    if not moved:
        return False, f"No change: {shown} is already schema_version 2"
    entries = "entry" if moved == 1 else "entries"
    return True, (
        f"Moved {moved} history {entries} of {history_shown(shown)}/ into the subfolders "
        "named after their hash"
    )


def migrate_manifest(path: str | os.PathLike[str], *, by: str | None = None) -> tuple[bool, str]:
    """Move a schema_version 1 manifest to schema_version 2, losing nothing.

    Every field and every history entry moves as it is; when ``updated_at`` is newer than the
    newest entry (or there is none), a ``migrate`` entry at that time keeps it. Returns
    ``(changed, message)``; a schema_version 2 manifest is left as it is.
    """
    shown = os.fspath(path)

    def load_and_check() -> tuple[Manifest, list[HistoryEntry]]:
        folder = history_dir(path)
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            raise RefusedError(
                f"{history_shown(shown)} exists and is not a folder; move it away, then run "
                "`valhalla-status migrate` again"
            )
        return _manifest_and_folder(path)

    _refuse_orphaned_history(Path(path), force=False)
    if not os.path.lexists(path):
        read_manifest(path)  # raises the "run `valhalla-status init`" error
    with manifest_lock(path):
        old, beside = load_and_check()
        if old.schema_version == 2:
            return _place_entries(path)
        # Entries already in the folder (a migrated branch merged in) are kept: one per id.
        merged = {entry_id(entry): entry for entry in [*old.history, *beside]}
        old = old.model_copy(update={"history": list(merged.values())})
        history = list(old.history)
        newest = max((entry.at for entry in history), default=None)
        # What the history does not explain (schema_version 1 never checked it) is recorded
        # by the migrate entry, so the migrated manifest is what its history says.
        moved = old.model_copy(update={"schema_version": 2})
        unexplained = {d.key: [d.said, d.actual] for d in differences(moved)}
        if newest is None or old.system.updated_at > newest or unexplained:
            history.append(
                _build(
                    HistoryEntry,
                    "history",
                    at=max(old.system.updated_at, newest or old.system.updated_at),
                    by=by if by is not None else default_actor(),
                    action="migrate",
                    changes=unexplained,
                    notes=None,
                )
            )
        history_dir(path).mkdir(exist_ok=True)
        write_manifest(path, old.model_copy(update={"schema_version": 2, "history": history}))
    count = len(history)
    said = [
        f"Migrated {shown} to schema_version 2: {count} history "
        f"{'entry' if count == 1 else 'entries'} in {history_shown(shown)}/"
    ]
    # What schema_version 2 cannot keep as it was is said, never changed silently.
    if newest is not None and old.system.updated_at < newest:
        said.append(
            f"updated_at was {format_timestamp(old.system.updated_at)}, before the newest "
            f"history entry; it is now that entry's time, {format_timestamp(newest)}"
        )
    if [entry.at for entry in old.history] != sorted(entry.at for entry in old.history):
        said.append("the history entries were out of time order; they are now read in time order")
    return True, "; ".join(said)


__all__ = [
    "Outcome",
    "add_pack",
    "compute_changes",
    "count_packs_by_status",
    "current_time",
    "default_actor",
    "default_manifest",
    "ensure_system_metadata",
    "get_history",
    "get_pack_by_id",
    "get_packs",
    "get_system_metadata",
    "get_system_status",
    "get_system_summary",
    "migrate_manifest",
    "record_edit",
    "remove_pack",
    "revert_entry",
    "set_backend_complete",
    "set_notes",
    "set_pack",
    "summary_counts",
    "update_version",
]
